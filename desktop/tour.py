"""Help › Walk through the article: a panel under the tabs that sets the app up, stop by stop.

The stops are data (:data:`engine.tour.STOPS`); this module only applies one to the tabs,
through their public methods, and shows its text with Back and Next. Before the first stop
changes anything, each tab's :meth:`snapshot` keeps what the user had (image, kernels,
settings, model, architecture, the tab shown); at the end the panel offers to put it back.

The panel (objectName ``tourPanel``) is a dock at the bottom of the window, so it takes room
from the tabs instead of covering them. Alt+← / Alt+→ and Esc work wherever the focus is in
the window while it shows. Signals: ``stop_shown(index)`` once a stop is set up,
``ended(restored)`` when the user leaves the tour.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

import resources
from desktop.widgets.tone import set_tone
from engine import tour
from engine.errors import EngineError
from engine.modelfile import load_model

FEATURE_IMAGES = 2000  # MNIST test images the "What it learned" stop searches


@dataclass(frozen=True)
class UserSetup:
    """What the user had before the tour: each tab's snapshot and the tab shown."""

    filters: object
    train: object
    classify: object
    tab: int


class _StopText(QScrollArea):
    """A stop's words: the panel asks for their whole height at its width, and in a window
    too small to give it they scroll instead of being cut off."""

    def __init__(self, content: QWidget) -> None:
        super().__init__(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(content)
        self.viewport().setAutoFillBackground(False)
        content.setAutoFillBackground(False)

    def sizeHint(self) -> QSize:
        content = self.widget()
        hint = content.sizeHint()
        height = content.heightForWidth(max(self.viewport().width(), 200))
        return QSize(hint.width(), height if height > 0 else hint.height())  # -1: not laid out

    def minimumSizeHint(self) -> QSize:
        return QSize(100, 2 * self.fontMetrics().lineSpacing())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()  # wider or narrower: the words take fewer or more lines


PANEL = "#e8f0fe"  # the panel's background (a dark shade of its hue on a dark desktop)


class TourPanel(QDockWidget):
    stop_shown = Signal(int)
    ended = Signal(bool)

    def __init__(self, window) -> None:
        super().__init__("Walk through the article", window)
        self.setObjectName("tourPanel")
        self.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        no_title = QWidget()  # the stop's title is the heading: no dock title
        QHBoxLayout(no_title).setContentsMargins(0, 0, 0, 0)  # 0 high (a bare QWidget: -1)
        self.setTitleBarWidget(no_title)
        set_tone(self, f"#tourPanel > QStackedWidget {{ background: {PANEL}; }}")
        self._window = window
        self.index = -1
        self.saved: UserSetup | None = None
        self._digit_model = None  # the shipped LeNet for the "What it learned" stop
        self._build()

    # ----- building ---------------------------------------------------------------------
    def _build(self) -> None:
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_stop_page())
        self.pages.addWidget(self._build_end_page())
        self.setWidget(self.pages)

    def _build_stop_page(self) -> QWidget:
        page = QWidget()
        self.where_label = QLabel(objectName="tourWhere")
        set_tone(self.where_label, "color: #5f6368;", on=PANEL)
        self.title_label = QLabel(objectName="tourTitle")
        self.title_label.setStyleSheet("font-weight: 600; font-size: 11pt;")
        self.text_label = QLabel(objectName="tourText", wordWrap=True)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label = QLabel(objectName="tourProblem", wordWrap=True)
        set_tone(self.problem_label, "color: #b00020;", on=PANEL)
        self.problem_label.hide()
        heading = QHBoxLayout()
        heading.addWidget(self.title_label)
        heading.addSpacing(10)
        heading.addWidget(self.where_label)
        heading.addStretch(1)
        text = QWidget()
        lines = QVBoxLayout(text)
        lines.setContentsMargins(0, 0, 0, 0)
        lines.setSpacing(2)
        lines.addWidget(self.text_label)
        lines.addWidget(self.problem_label)
        lines.addStretch(1)
        self.text_area = _StopText(text)
        words = QVBoxLayout()
        words.setSpacing(2)
        words.addLayout(heading)
        words.addWidget(self.text_area, 1)
        self.back_button = QPushButton("◀ Back", objectName="tourBack")
        self.next_button = QPushButton("Next ▶", objectName="tourNext")
        self.end_button = QPushButton("End tour", objectName="tourEnd")
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.end_button.clicked.connect(self.finish)
        self.next_button.setDefault(True)
        self._add_keys()
        row = QHBoxLayout(page)
        row.setContentsMargins(10, 6, 10, 6)
        row.addLayout(words, 1)
        row.addSpacing(12)
        for button in (self.back_button, self.next_button, self.end_button):
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)
        return page

    def _add_keys(self) -> None:
        """Keys that work wherever the focus is in the window (a stop puts it in its tab),
        while the panel shows; Enter clicks the panel's focused button."""
        keys = (
            (self.back_button, "Alt+Left", "Alt+←", self.back),
            (self.next_button, "Alt+Right", "Alt+→", self.next),
            (self.end_button, "Esc", "Esc", self.finish),
        )
        for button, key, shown, slot in keys:
            action = QAction(button.text(), self, shortcut=QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            button.setAutoDefault(True)  # Enter clicks the focused one
            button.setToolTip(f"{button.text().strip(' ◀▶')} ({shown})")

    def _build_end_page(self) -> QWidget:
        page = QWidget()
        self.end_label = QLabel(objectName="tourEndText", wordWrap=True)
        self.restore_button = QPushButton("Restore my setup", objectName="tourRestore")
        self.restore_button.setToolTip(
            "Your image, kernels, settings, model and architecture as before the tour"
        )
        self.keep_button = QPushButton("Keep the tour's setup", objectName="tourKeep")
        self.end_back_button = QPushButton("◀ Back to the tour", objectName="tourEndBack")
        self.restore_button.clicked.connect(lambda: self._leave(restore=True))
        self.keep_button.clicked.connect(lambda: self._leave(restore=False))
        self.end_back_button.clicked.connect(lambda: self.show_stop(self.index))
        row = QHBoxLayout(page)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(self.end_label, 1)
        for button in (self.end_back_button, self.keep_button, self.restore_button):
            button.setAutoDefault(True)  # Enter clicks the focused one
            row.addWidget(button)
        return page

    # ----- moving through the tour ------------------------------------------------------
    def start(self) -> None:
        """Keep the user's setup (unless a tour is under way) and show the first stop."""
        if self.saved is None:
            w = self._window
            self.saved = UserSetup(
                w.filters_tab.snapshot(),
                w.train_tab.snapshot(),
                w.classify_tab.snapshot(),
                w.tabs.currentIndex(),
            )
        self.show()
        self.show_stop(0)

    def next(self) -> None:
        if self.pages.currentIndex() != 0:  # the offer at the end: answered by its buttons
            return
        if self.index + 1 < len(tour.STOPS):
            self.show_stop(self.index + 1)
        else:
            self.finish()

    def back(self) -> None:
        if self.index > 0 and self.pages.currentIndex() == 0:
            self.show_stop(self.index - 1)

    def show_stop(self, index: int) -> None:
        """Set the app up for stop ``index`` and say what to look at."""
        stop = tour.STOPS[index]
        leaving = tour.STOPS[self.index] if self.index >= 0 else None
        self.index = index
        if leaving is not None and isinstance(leaving.setup, tour.TrainSetup):
            self._window.train_tab.close_learned()
        self.pages.setCurrentIndex(0)
        where = f"Stop {index + 1} of {len(tour.STOPS)}"
        self.where_label.setText(f"{where} · {stop.where}")
        self.title_label.setText(stop.title)
        self.text_label.setText(stop.text)
        self.text_area.verticalScrollBar().setValue(0)
        self.back_button.setEnabled(index > 0)
        last = index + 1 == len(tour.STOPS)
        self.next_button.setText("Finish" if last else "Next ▶")
        self.next_button.setToolTip(f"{'Finish' if last else 'Next'} (Alt+→)")
        self.problem_label.hide()
        self._fit_words()  # the tabs get their size for this stop before it sets them up
        try:
            self._apply(stop)
        except (EngineError, OSError) as exc:
            self.problem_label.setText(f"This stop could not be set up: {exc}")
            self.problem_label.show()
            self.text_area.updateGeometry()
        self.stop_shown.emit(index)

    def _fit_words(self) -> None:
        """The panel as tall as this stop's words now, not after the layouts' next round:
        a stop scrolls its tab to what it shows, which a late change of height would cut."""
        self.text_area.updateGeometry()
        page = self.pages.currentWidget()
        page.layout().activate()  # recomputes its inner layouts (the words) too
        widget = page
        while widget is not None and widget is not self._window:
            widget.updateGeometry()  # each parent's layout drops its cached size hint
            widget = widget.parentWidget()
        self._window.layout().activate()

    def finish(self) -> None:
        """The end: offer to put the user's setup back."""
        self._window.train_tab.close_learned()
        self.end_label.setText(
            "That was the tour. Your own image, kernels, settings and model were kept when it "
            "began: restore them, or keep what the tour set up to explore from here."
        )
        self.pages.setCurrentIndex(1)
        self.restore_button.setFocus()

    def _leave(self, *, restore: bool) -> None:
        saved, self.saved = self.saved, None
        if restore and saved is not None:
            self.restore(saved)
        self.index = -1
        self.hide()
        self.ended.emit(restore)

    def restore(self, saved: UserSetup) -> None:
        """Put back the user's setup, every tab as it was, and the tab they were on."""
        w = self._window
        w.filters_tab.restore(saved.filters)
        w.train_tab.restore(saved.train)
        w.classify_tab.restore(saved.classify)
        w.tabs.setCurrentIndex(saved.tab)

    # ----- applying a stop --------------------------------------------------------------
    def _apply(self, stop: tour.Stop) -> None:
        w = self._window
        tab = {"Filters": w.filters_tab, "Train": w.train_tab, "Classify": w.classify_tab}
        w.tabs.setCurrentWidget(tab[stop.tab])
        setup = stop.setup
        if isinstance(setup, tour.FiltersSetup):
            self._apply_filters(setup)
        elif isinstance(setup, tour.ClassifySetup):
            self._apply_classify(setup)
        else:
            self._apply_train(setup)

    def _image(self, source: str):
        return tour.tour_image(
            source, mnist_dir=resources.mnist_dir(), samples_dir=resources.resource_path("samples")
        )

    def _apply_filters(self, setup: tour.FiltersSetup) -> None:
        filters = self._window.filters_tab
        if setup.example() is not None:  # the article's example: image, kernel, settings
            filters.open_figure(setup.image)
        else:
            image, name = self._image(setup.image)
            filters.set_kernels(tour.kernel_specs(setup))
            filters.set_filter_settings(setup.settings())
            filters.set_display_mode(setup.display)
            filters.set_image(tour.as_rgb(image), name)
        if setup.page == "step":
            filters.show_step_through("figure5" if setup.image == "figure5" else "crop")
        elif setup.page == "relu":
            filters.show_relu_figure(setup.hover)
        else:
            filters.show_page(setup.page)
        if setup.zoom is not None and setup.centre is not None:
            filters.zoom_to(setup.zoom, setup.centre)
        filters.inspect_result_pixel(setup.hover)

    def _apply_classify(self, setup: tour.ClassifySetup) -> None:
        classify = self._window.classify_tab
        image, name = self._image(setup.image)
        classify.use_shipped_model(setup.model)  # the photo model loads off-thread once
        classify.show_image(image, name)
        classify.show_network_view(setup.hover)

    def _apply_train(self, setup: tour.TrainSetup) -> None:
        train = self._window.train_tab
        if setup.view == "diagram" and setup.architecture:
            if not train.show_architecture(setup.architecture):
                raise EngineError(
                    f"the Network box keeps {train.setup.architecture_name()} while a run goes "
                    "or Continue model is ticked; Stop the run or untick Continue model to "
                    "choose another network"
                )
        elif setup.view == "features":
            if self._digit_model is None:
                self._digit_model = load_model(resources.shipped_model_path())
            images = tour.mnist_test_images(resources.mnist_dir(), FEATURE_IMAGES)
            tabs = self._window.tabs  # over the tabs, not over this panel
            within = QRect(tabs.mapToGlobal(QPoint(0, 0)), tabs.size())
            train.show_learned(
                self._digit_model, images, "the MNIST test set", start=True, within=within
            )
        else:
            train.show_step()

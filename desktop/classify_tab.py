"""The Classify tab: drop, paste, open or draw; see what the network sees and why.

Left: where images arrive (the drop area with the drawing canvas or the image and its reading
boxes). Middle: the original next to what the network sees (a 28x28 digit, or a photo in
colour), the occlusion map, the prediction, the probability bars and the model chooser. Right:
the network view, or the table of a batch of files.

The model decides everything digit-or-photo (:func:`engine.inference.preparation_for`): a digit
model gets the digit switches, the drawing canvas and the reading of numbers; a photo model
gets the photo preparation and none of those. A slot reads the UI, calls one engine function
and updates the UI. Decoding a large image and preparing it, opening a model file, the
occlusion map, the reading of a number and a batch of files run off the GUI thread
(:class:`desktop.workers.OneAtATime`; the newest request wins); a small image or a stroke is
classified on the GUI thread in a few milliseconds, unless the network is a heavy one
(:func:`engine.modelsize.heavy_forward`): its forward pass runs off the GUI thread too, the
prediction saying "Working…" meanwhile.

Size: one short slot per way an image arrives (drop, paste, open, draw, batch) and per
model change, all updating the same views; the widgets it composes live in ``desktop/widgets/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QIODevice, QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.app_state import AppState
from desktop.widgets import FitContent, scrolled
from desktop.widgets.batch_table import BatchPage
from desktop.widgets.draw_canvas import DrawPanel
from desktop.widgets.drop_area import DropArea, ImagePreview, parse_mime
from desktop.widgets.focus_ring import focus_ring
from desktop.widgets.model_panel import ModelPanel
from desktop.widgets.network_view import NetworkView, view_layers
from desktop.widgets.probability_chart import ProbabilityChart
from desktop.widgets.seen_box import SeenBox
from desktop.widgets.tone import set_tone
from desktop.workers import OneAtATime, hold_collection_while
from engine.atomic import atomic_write
from engine.errors import EngineError
from engine.inference import (
    ClassifiedImage,
    Prepared,
    ViewStep,
    classify_prepared,
    image_pixels,
    most_probable,
    preparation_for,
    prepare_input,
    view_steps,
)
from engine.modelsize import heavy_forward
from engine.reading import Reading, read_digits

DROP_HINT = (
    "Drop an image here (a digit, a number or a photo)\n\nor paste it with Ctrl+V, "
    "use File › Open,\nor drop several files or a folder"
)
#: Images with more pixels than this are decoded and prepared off the GUI thread.
BACKGROUND_PIXELS = 1_500_000
HOVER_HINT = "Hover a cell to see where it comes from"
WORKING = "Working…"
WORKING_NOTE = "A big network: this takes a moment"
STALE_VIEW = "Working out the new input: the maps above are still the previous one's"

Classification = ClassifiedImage  # what ``classified`` carries


@dataclass(frozen=True, eq=False)  # holds an array
class ClassifySnapshot:
    """What :meth:`ClassifyTab.snapshot` keeps."""

    model: object | None
    model_label: str
    image: np.ndarray | None
    preview: np.ndarray | None  # the image as the drop area shows it
    name: str
    mode: int  # 0 Draw, 1 Image
    view: int  # the right-hand tab


@dataclass(frozen=True)
class _Shown:
    """A step of loading an image; ``request`` tells stale results apart."""

    request: int
    name: str
    step: ViewStep


@dataclass(frozen=True)
class _Forward:
    """A forward pass's result and its network view rows; ``request`` tells stale ones apart,
    ``digit`` the digit of a number read it is (None: the whole input). No result: ``error``
    says why (the network's outputs are not finite numbers: a damaged model file)."""

    request: int
    result: ClassifiedImage | None
    rows: list
    digit: int | None
    error: str = ""


def _forward(request: int, model, prepared: Prepared, digit: int | None) -> _Forward:
    try:
        result = classify_prepared(model, prepared)
    except EngineError as exc:
        return _Forward(request, None, [], digit, str(exc))
    return _Forward(request, result, view_layers(model, result.activations), digit)


class ClassifyTab(QWidget):
    title = "Classify"
    classified = Signal(object)  # ClassifiedImage, after the bars are updated
    number_read = Signal(object)  # Reading of a dropped/opened image
    occlusion_finished = Signal(object)
    batch_classified = Signal(object)  # list[FileResult], once the batch table is filled
    model_load_finished = Signal(bool)  # a model file opened (True) or refused (False)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        hold_collection_while(self)  # garbage collected on the GUI thread (desktop.workers)
        self._state = state
        self.model = None
        self.model_name = ""  # the label of the model in use
        self._image: np.ndarray | None = None  # the last opened/dropped/pasted image
        self._preview_image: np.ndarray | None = None
        self._image_name = ""
        self.result: ClassifiedImage | None = None
        self.reading: Reading | None = None
        # (decoding ended, bars set, network view set) of the last image opened: for benchmarks
        self.last_timing: tuple[float, float, float] | None = None
        self._bars_at = 0.0
        self._request = 0  # the newest image request; older results are dropped
        self._timed_request = -1  # the request whose first bars last_timing measured
        self._opening = -1  # the request whose "Opening …" the status bar shows
        self._heavy = False  # the model's forward pass runs off the GUI thread
        # the digit model whose drawing a photo model set aside ('' none): it comes back with
        # a digit model unless an image was opened meanwhile
        self._drawing_waits = ""
        self._forward = 0  # the newest forward pass asked for; older results are dropped
        self._forward_jobs = OneAtATime(self, self._on_forward_failed)
        self._image_jobs = OneAtATime(self, self._show_message)
        self._reading_jobs = OneAtATime(self, self._show_message)
        self._build()
        state.model_changed.connect(self._on_state_model_changed)
        state.model_offered.connect(self.model_panel.offer_model)
        if state.current_model is not None:
            self._on_state_model_changed(state.current_model, state.current_model_label)
        else:
            self._load_shipped_model()

    # ----- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self._build_sources()
        middle = self._build_middle()
        self._build_views()

        # In a scroll area: a small window scrolls the tab instead of growing to fit it.
        content = FitContent()
        columns = QHBoxLayout(content)
        columns.addWidget(self.drop_area, 3)
        columns.addLayout(middle, 3)
        columns.addWidget(self.right_tabs, 5)
        self._scroll = QScrollArea(
            widgetResizable=True, frameShape=QFrame.Shape.NoFrame, objectName="classifyScroll"
        )
        self._scroll.setWidget(content)
        self._scroll.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Tab: to its controls, in sight
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.addWidget(self._scroll)
        paste = QShortcut(QKeySequence.StandardKey.Paste, self)
        paste.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        paste.activated.connect(self._on_paste_activated)

    def _build_sources(self) -> None:
        """The left column: the drop area with the Draw/Image switch, the reading and options."""
        self.drop_area = DropArea(self)
        self.drop_area.mime_dropped.connect(self.handle_drop)
        self.draw_panel = DrawPanel()
        self.canvas = self.draw_panel.canvas
        self.canvas.drawing_changed.connect(self._on_canvas_drawing_changed)
        self.canvas.cleared.connect(self._on_canvas_cleared)
        self.preview = ImagePreview(DROP_HINT)
        self.preview.box_clicked.connect(self.show_reading_digit)
        self.sources = QStackedWidget()
        self.sources.addWidget(self.draw_panel)
        self.sources.addWidget(self.preview)
        self.mode_group = QButtonGroup(self)
        self.mode_bar = QWidget()
        modes = QHBoxLayout(self.mode_bar)
        modes.setContentsMargins(0, 0, 0, 0)
        for i, text in enumerate(("Draw", "Image")):
            button = QToolButton(text=text, checkable=True, objectName=f"{text.lower()}Mode")
            button.setChecked(i == 0)
            self.mode_group.addButton(button, i)
            modes.addWidget(button)
        modes.addStretch(1)
        self.mode_group.idClicked.connect(self._on_mode_clicked)
        self.reading_label = QLabel(objectName="readingLabel", wordWrap=True)
        self.message_label = QLabel(objectName="messageLabel", wordWrap=True)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)  # file names are not markup
        set_tone(self.message_label, "color: #c0392b;")
        self.invert_box = QCheckBox("Auto-invert dark ink", checked=True)
        self.invert_box.setToolTip("Dark ink on light paper becomes white on black, as in MNIST")
        self.center_box = QCheckBox("Crop and centre (MNIST)", checked=True)
        self.center_box.setToolTip(
            "Crop to the ink, fit into 20×20 and centre by mass in 28×28, as MNIST was made; "
            "off: the whole picture is scaled to 28×28"
        )
        for box in (self.invert_box, self.center_box):
            box.toggled.connect(self._on_option_toggled)
        left = QVBoxLayout(self.drop_area)
        left.addWidget(self.mode_bar)
        left.addWidget(self.sources, 1)
        left.addWidget(self.reading_label)
        left.addWidget(self.message_label)
        left.addWidget(self.invert_box)
        left.addWidget(self.center_box)

    def _build_middle(self) -> QVBoxLayout:
        """The middle column: what the network sees, the prediction and the model chooser."""
        self.seen_box = SeenBox()
        self.seen_box.occlusion_finished.connect(self.occlusion_finished)
        self.seen_box.problem.connect(self._show_message)
        self.original_view = self.seen_box.original_view
        self.preprocessed_view = self.seen_box.preprocessed_view
        self.occlusion_view = self.seen_box.occlusion_view
        self.occlusion_label = self.seen_box.occlusion_label
        self.prediction_label = QLabel("–", objectName="predictionLabel")
        font = QFont(self.prediction_label.font())
        font.setPointSizeF(font.pointSizeF() * 2.4)
        font.setBold(True)
        self.prediction_label.setFont(font)
        self.top3_label = QLabel(objectName="top3Label", wordWrap=True)
        for label in (self.prediction_label, self.top3_label):  # class names are not markup
            label.setTextFormat(Qt.TextFormat.PlainText)
        self.chart = ProbabilityChart()
        self.model_panel = ModelPanel()
        self.model_panel.model_chosen.connect(self._on_model_panel_model_chosen)
        self.model_panel.load_finished.connect(self.model_load_finished)
        self.model_panel.problem.connect(self._show_message)
        self.model_box = self.model_panel.model_box
        self.model_label = self.model_panel.model_label
        middle = QVBoxLayout()
        middle.addWidget(self.seen_box)
        middle.addWidget(self.prediction_label)
        middle.addWidget(self.top3_label)
        middle.addWidget(
            QLabel("Probability of each class (softmax: they sum to 100%)", wordWrap=True)
        )
        middle.addWidget(self.chart, 1)
        middle.addWidget(self.model_panel)
        return middle

    def _build_views(self) -> None:
        """The right column: the network view and the batch results, as tabs."""
        self.network_view = NetworkView()
        self.batch_page = BatchPage()
        self.batch_page.file_opened.connect(self._on_batch_page_file_opened)
        self.batch_page.message.connect(self._show_message)
        self.batch_page.batch_classified.connect(self.batch_classified)
        self.batch_table, self.batch_status = self.batch_page.table, self.batch_page.status
        self.right_tabs = QTabWidget(objectName="classifyViews")
        self.network_scroll = focus_ring(scrolled(self.network_view))  # keys scroll it
        self.network_hover = QLabel(HOVER_HINT, objectName="networkHover", wordWrap=True)
        self.network_hover.setFixedHeight(3 * self.fontMetrics().height() + 6)
        self.network_hover.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.network_view.cell_hovered.connect(self._on_network_view_cell_hovered)
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.network_scroll, 1)
        column.addWidget(self.network_hover)
        self.right_tabs.addTab(page, "Inside the network")
        self.right_tabs.addTab(self.batch_page, "Batch results")

    def _on_network_view_cell_hovered(self, text: str) -> None:
        """Under the view, in sight wherever the (tall) view is scrolled."""
        self.network_hover.setText(text or HOVER_HINT)

    # ----- the model ----------------------------------------------------------------------
    def _load_shipped_model(self) -> None:
        model, label, problem = self.model_panel.load_shipped()
        self.set_model(model, label)
        if problem:
            self._show_message(problem)

    def set_model(self, model, label: str) -> None:
        """Classify with ``model`` from now on (None: no model loaded)."""
        previous = self.model_name
        self.model = model
        self.model_name = label
        self._request += 1  # a pending image was prepared for the previous model
        self._forward += 1  # and a pending forward pass was the previous model's
        self._heavy = model is not None and heavy_forward(model.architecture, len(model.classes))
        self.model_panel.show_model(model, label)
        if model is None:
            self.prediction_label.setText("No model loaded")
        self._apply_model_kind(previous)
        self._rerun()
        if self._drawing_waits and self._kind() != "digit" and self._image is None:
            self._show_message(
                f"{label} classifies photos, not drawings: drop, paste or open a photo (your "
                f"drawing waits for a digit model: choose '{self._drawing_waits}' in the "
                "Model box)"
            )
        if model is not None:  # the batch table shows this model's verdicts too
            self.batch_page.reclassify(model, label, **self._options())

    def _kind(self) -> str:
        return "digit" if self.model is None else preparation_for(self.model)

    def _apply_model_kind(self, previous: str = "") -> None:
        """Offer only what fits the model: the canvas and the digit switches for digits; a
        drawing a photo model set aside (``previous`` drew it) comes back with a digit model."""
        digits = self._kind() == "digit"
        for widget in (self.mode_bar, self.invert_box, self.center_box):
            widget.setVisible(digits)
        if not digits and self.mode_group.checkedId() == 0:
            if not self.canvas.is_empty():
                self._drawing_waits = previous
            self.mode_group.button(1).setChecked(True)
            self.sources.setCurrentIndex(1)
        elif digits and self._drawing_waits:
            self._drawing_waits = ""
            if not self.canvas.is_empty():
                self.mode_group.button(0).setChecked(True)
                self.sources.setCurrentIndex(0)
        self.reading_label.setVisible(digits)
        self.preview.set_boxes([])

    def _on_state_model_changed(self, model, label: str) -> None:
        self.model_panel.add_model(model, label)
        self.set_model(model, label)
        self._state.status_posted.emit(f"Classify tab: now using {label}")

    def _on_model_panel_model_chosen(self, model, label: str) -> None:
        self.set_model(model, label)
        self._state.status_posted.emit(f"Classify tab: now using {label}")

    def use_shipped_model(self, kind: str) -> bool:
        """Classify with the shipped "digits" or "photos" model; a model file not loaded yet
        loads off the GUI thread (``model_load_finished``). False when it does not ship."""
        if not self.model_panel.choose_shipped(kind):
            self._show_message(f"The shipped {kind} model is not installed")
            return False
        return True

    def show_network_view(self, cell: tuple[str, int] | None = None) -> None:
        """Show "Inside the network" on the right; ``cell`` (layer name, index) is scrolled
        into view and shown as hovered; None: the view from its top row, no cell hovered."""
        self.right_tabs.setCurrentIndex(0)
        if cell is not None and self.network_view.hover_cell(*cell):
            self._scroll_to_cell(cell)
            # again once the layouts settle: a tab just shown (or a window whose panels
            # change height) gives the view its final size only then
            QTimer.singleShot(0, self, lambda: self._scroll_to_cell(cell))
        elif cell is None:
            self.network_view.unhover()
            self.network_scroll.verticalScrollBar().setValue(0)

    def _scroll_to_cell(self, cell: tuple[str, int]) -> None:
        """Cell (layer name, index) of the network view in sight, in the view's scroll area
        and in the tab's (a small window scrolls the whole tab)."""
        if not any(layer.name == cell[0] for layer in self.network_view.layers()):
            return  # another network or a folded block since
        centre = self.network_view.cell_center(*cell)
        self.network_scroll.ensureVisible(centre.x(), centre.y(), 40, 160)
        here = self.network_view.mapTo(self._scroll.widget(), centre)
        self._scroll.ensureVisible(here.x(), here.y(), 40, 60)

    def snapshot(self) -> ClassifySnapshot:
        """What the user set up: the model, the image, Draw or Image, the right-hand view."""
        return ClassifySnapshot(
            self.model,
            self.model_name,
            self._image,
            self._preview_image,
            self._image_name,
            self.mode_group.checkedId(),
            self.right_tabs.currentIndex(),
        )

    def restore(self, snap: ClassifySnapshot) -> None:
        """Put back what :meth:`snapshot` saw (the drawing on the canvas was never touched)."""
        if snap.model is not None:
            self.model_panel.add_model(snap.model, snap.model_label)
        self.set_model(snap.model, snap.model_label)
        self.right_tabs.setCurrentIndex(snap.view)
        if snap.mode == 1 and snap.image is not None:
            self.show_image(snap.image, snap.name)  # large: decoded off the GUI thread
            return
        self._request += 1  # nothing older lands after this
        self._image, self._preview_image, self._image_name = snap.image, snap.preview, snap.name
        self.preview.set_image(snap.preview)
        self.mode_group.button(snap.mode).setChecked(True)
        self.sources.setCurrentIndex(snap.mode)
        self._rerun()

    def open_model_file(self, path: Path) -> bool:
        """Open a model file off the GUI thread; ``model_load_finished`` tells how it went."""
        self._show_message("", status=f"Opening model {Path(path).name}…")
        self.model_panel.open_file(Path(path))
        return True

    # ----- input --------------------------------------------------------------------------
    def open_image_file(self, path: Path) -> bool:
        """File > Open, recent files, a single dropped file. A large image is decoded off the
        GUI thread (accepted at once: True); a small one at once (False if it failed)."""
        self._drawing_waits = ""  # the user moved on from the drawing
        return self._open(Path(path), Path(path).name, announce=True)

    def show_image(self, image: np.ndarray, name: str) -> bool:
        """Classify ``image`` (uint8, upright) and read the number in it."""
        self._drawing_waits = ""
        return self._open(image, name, announce=True)

    def _open(self, source: Path | np.ndarray, name: str, announce: bool = False) -> bool:
        """Show and classify ``source``; with ``announce`` (the user opened it, not a new
        model's rerun) the status bar says 'Opened NAME' once it is shown, so the previous
        file's 'Opened' or error never stands beside this one's answer."""
        self._request += 1
        request = self._request
        if announce:
            self._opening = request
        model, options = self.model, self._options()
        if isinstance(source, Path):
            pixels = image_pixels(source)
        else:
            pixels = int(source.shape[0]) * int(source.shape[1])

        def job():
            for step in view_steps(source, model, name=name, **options):
                yield _Shown(request, name, step)

        if pixels is not None and pixels > BACKGROUND_PIXELS:
            self._show_message("", status=f"Opening {name}…")
            self._opening = request  # its end replaces that status (_on_image_shown)
            self._image_jobs.submit(job, self._on_image_shown)
            return True
        for shown in job():
            self._on_image_shown(shown)
        return shown.step.image is not None and shown.step.prepared is not None

    def _options(self) -> dict:
        return {
            "kind": self._kind(),
            "auto_invert": self.invert_box.isChecked(),
            "center": self.center_box.isChecked(),
        }

    def _on_image_shown(self, shown: _Shown) -> None:
        step = shown.step
        if shown.request != self._request:
            return  # stale: a newer image (or model) was asked for meanwhile
        if step.image is None and step.prepared is not None:  # a photo's quick first step
            self._show_input(step.prepared, None)
            self.last_timing = (step.decoded_at, self._bars_at, time.perf_counter())
            self._timed_request = shown.request
            return
        if step.image is None:  # not an image at all: nothing stale stays on screen
            self._image, self._preview_image = None, None
            self.preview.set_image(None)
            self._clear_result("–")
            self._show_message(step.error)
            return
        if self._opening == shown.request and not step.error:  # "Opening …" is over
            self._state.status_posted.emit(f"Opened {shown.name}")
        self._opening = -1
        self._image, self._preview_image, self._image_name = step.image, step.preview, shown.name
        self.mode_group.button(1).setChecked(True)
        self.sources.setCurrentIndex(1)
        self.preview.set_image(step.preview)
        self._show_message(step.error or self._model_hint())
        self.reading_label.clear()
        if step.prepared is None:  # a digit model and no ink: the image, no prediction
            self._clear_result("–")
            self.original_view.set_array(step.preview)
            return
        self._show_input(step.prepared, step.preview)
        if self._timed_request != shown.request:  # the first bars of this image
            self.last_timing = (step.decoded_at, self._bars_at, time.perf_counter())
        if self._kind() == "digit":
            self._start_reading()  # off the GUI thread: a big photo takes a moment

    def _model_hint(self) -> str:
        """A photo read by a digit model while a photo model of the user's waits in the Model
        box (trained, then Classify, then a photo dropped): which to choose; else ''."""
        mine = self.model_panel.other_photo_model() if self._kind() == "digit" else ""
        if not mine:
            return ""
        return (
            f"{self.model_name} reads digits; to classify this photo with your model, choose "
            f"'{mine}' in the Model box"
        )

    def handle_drop(self, mime: QMimeData) -> bool:
        """Files, a folder, image data or a URL dropped on the window or the drop area."""
        payload = parse_mime(mime)
        if payload.decode_failed:  # a failed open: nothing stale stays beside the message
            self._request += 1
            self._on_image_shown(
                _Shown(self._request, "", ViewStep(None, None, None, payload.error, 0))
            )
            return False
        if payload.error:
            self._show_message(payload.error)
            return False
        if payload.batch:
            return self.classify_batch(payload.paths, payload.root)
        if payload.paths and payload.paths[0].suffix.lower() == ".npz":
            return self.open_model_file(payload.paths[0])  # a model file: classify with it
        if payload.paths:
            return self.open_image_file(payload.paths[0])
        return self.show_image(payload.image, payload.name)

    def _on_paste_activated(self) -> None:
        self.handle_drop(QApplication.clipboard().mimeData())

    def classify_batch(self, paths: list[Path], root: Path | None = None) -> bool:
        """Classify ``paths`` off the GUI thread into the batch table."""
        if self.model is None:
            self._show_message("No model loaded: train one or open a model file first")
            return False
        self.batch_page.classify(self.model, paths, root, self.model_name, **self._options())
        self.right_tabs.setCurrentIndex(1)
        return True

    def _on_batch_page_file_opened(self, path: Path) -> None:
        if self.open_image_file(path):
            self.right_tabs.setCurrentIndex(0)

    def _on_canvas_drawing_changed(self, pixels: np.ndarray) -> None:
        self.mode_group.button(0).setChecked(True)
        self._classify_drawing(pixels)

    def _on_canvas_cleared(self) -> None:
        self._clear_result("Draw a digit")

    def _on_mode_clicked(self, index: int) -> None:
        self.sources.setCurrentIndex(index)
        self._rerun()

    def _on_option_toggled(self, _checked: bool) -> None:
        self._rerun()

    def _rerun(self) -> None:
        if self.mode_group.checkedId() == 1 and self._image is not None:
            self._open(self._image, self._image_name)
        elif self.mode_group.checkedId() == 0 and not self.canvas.is_empty():
            self._classify_drawing(self.canvas.pixels())
        else:
            self._clear_result("Draw a digit" if self.mode_group.checkedId() == 0 else "–")

    # ----- classifying --------------------------------------------------------------------
    def _classify_drawing(self, pixels: np.ndarray) -> None:
        try:
            prepared = prepare_input(self.model, pixels, **self._options())
        except EngineError:  # a few dots on the canvas: not a digit yet
            self._clear_result("Draw a digit")
            return
        self._show_message("")
        self._show_input(prepared, pixels)

    def _show_input(
        self, prepared: Prepared, original: np.ndarray | None, digit: int | None = None
    ) -> None:
        """One forward pass of ``prepared``: bars, prediction, network view, occlusion; a heavy
        network's off the GUI thread (the newest input wins; the model is never trained, and
        only that one worker runs its forward pass meanwhile)."""
        self.seen_box.show_input(original, prepared.display)
        self._state.classify_image_changed.emit(prepared.network)
        self._forward += 1
        if self.model is None:
            self.network_view.clear("No model loaded")
            return
        request, model = self._forward, self.model
        if not self._heavy:
            self._on_forward_done(_forward(request, model, prepared, digit))
            return
        self.result = None
        self.chart.clear()  # the previous input's bars are not this one's
        self.prediction_label.setText(WORKING)
        self.top3_label.setText(WORKING_NOTE)
        if self.network_view.layers():
            self.network_hover.setText(STALE_VIEW)
        self.seen_box.await_result()
        self._forward_jobs.submit(
            lambda: [_forward(request, model, prepared, digit)], self._on_forward_done
        )

    def _on_forward_failed(self, message: str) -> None:
        if self.prediction_label.text() == WORKING:
            self.prediction_label.setText("–")
            self.top3_label.clear()
        self._show_message(message)

    def forward_busy(self) -> bool:
        """Whether a heavy network's forward pass runs or waits."""
        return self._forward_jobs.busy()

    def _on_forward_done(self, done: _Forward) -> None:
        if done.request != self._forward:
            return  # stale: a newer input (or model) was asked for meanwhile
        if done.result is None:  # no bars, maps or occlusion for outputs that are not numbers
            self._clear_result("–", keep_input=True)  # the user's own image stays in sight
            self._show_message(done.error)
            return
        self._forget_stale_view()
        self.result = result = done.result
        probs, classes = result.probabilities, result.classes
        self.chart.set_probabilities(probs, classes)
        self._bars_at = time.perf_counter()
        self.prediction_label.setText(f"{result.prediction} {result.confidence:.1%}")
        self.top3_label.setText(
            "Top 3: "
            + ",  ".join(f"{classes[i]} ({probs[i]:.1%})" for i in most_probable(probs, 3))
        )
        if done.digit is not None and self.reading is not None:
            self.prediction_label.setText(self.reading.text)
            self.top3_label.setText(
                f"Digit {done.digit + 1} of {len(self.reading.digits)}: " + self.top3_label.text()
            )
        self.network_view.set_layers(done.rows)
        self.classified.emit(result)
        self.seen_box.schedule_occlusion(self.model, result)

    def _forget_stale_view(self) -> None:
        if self.network_hover.text() == STALE_VIEW:
            self.network_hover.setText(HOVER_HINT)

    def _clear_result(self, text: str, keep_input: bool = False) -> None:
        self._forward += 1  # a forward pass on its way is not shown
        self._forget_stale_view()
        self.result = None
        self.chart.clear()
        self.prediction_label.setText(text if self.model is not None else "No model loaded")
        self.top3_label.clear()
        self.seen_box.clear(keep_input)
        self.network_view.clear()

    def _start_reading(self) -> None:
        if self.model is None or self._image is None:
            return
        model, image = self.model, self._image  # the worker reads with its own copy
        self._reading_jobs.submit(
            lambda: [(image, read_digits(model.clone(), image))], self._on_reading_yielded
        )

    def _on_reading_yielded(self, event) -> None:
        image, reading = event
        if image is not self._image or self.mode_group.checkedId() != 1:
            return  # stale: another image (or the canvas) is shown now
        if self._kind() != "digit":
            return  # the model changed to a photo model meanwhile
        self.reading = reading
        digits = reading.digits
        if reading.looks_like_a_number():  # not the blobs of a photo
            scale = self._preview_scale()
            self.preview.set_boxes(
                [
                    (*(round(v * scale) for v in d.box), f"{d.prediction} {d.confidence:.0%}")
                    for d in digits
                ]
            )
            self.reading_label.setText(
                f"Reads as <b>{reading.text}</b> ({len(digits)} digits, left to right). "
                "Click a box to look inside the network for that digit."
            )
            self.show_reading_digit(0)
        else:
            self.preview.set_boxes([])
            self.reading_label.setText("One digit in this image" if len(digits) == 1 else "")
        self.number_read.emit(reading)

    def _preview_scale(self) -> float:
        """Preview pixels per image pixel (large images are previewed smaller)."""
        if self._image is None or self._preview_image is None:
            return 1.0
        return self._preview_image.shape[1] / self._image.shape[1]

    def show_reading_digit(self, index: int) -> None:
        """Show digit ``index`` of the number read: its input, bars and feature maps."""
        if self.reading is None or not 0 <= index < len(self.reading.digits):
            return
        digit = self.reading.digits[index]
        x0, y0, x1, y1 = digit.box
        crop = self._image[y0:y1, x0:x1]
        self.preview.set_selected(index)
        self._show_input(
            Prepared(digit.image, digit.image, "digit", False, digit.box), crop, digit=index
        )

    def background_busy(self) -> bool:
        """Whether an image, a forward pass, a model, an occlusion map, a reading or a batch
        is being made."""
        parts = (
            self._image_jobs,
            self._forward_jobs,
            self._reading_jobs,
            self.seen_box,
            self.model_panel,
        )
        return self.batch_page.busy() or any(part.busy() for part in parts)

    # ----- output -------------------------------------------------------------------------
    def export_csv(self, path: Path) -> bool:
        """The batch table as CSV, written atomically (a full disk keeps the old file)."""
        return self.batch_page.export_csv(path)

    def save_result(self) -> None:
        """File > Save result: the batch table as CSV, or a picture of the tab."""
        if self.right_tabs.currentIndex() == 1 and self.batch_table.rowCount():
            self.batch_page.export_button.click()
            return
        name, _ = QFileDialog.getSaveFileName(self, "Save picture", "classify.png", "PNG (*.png)")
        if name:
            self.save_picture(Path(name))

    def save_picture(self, path: Path) -> bool:
        """A PNG of the tab as shown, written atomically (a full disk keeps the old file)."""
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not self.grab().save(buffer, "PNG"):
            self._show_message(f"Could not make the picture for {path}")
            return False
        data = bytes(buffer.data().data())
        try:
            atomic_write(path, lambda f: f.write(data))
        except OSError as exc:
            self._show_message(f"Could not write {path}: {exc.strerror or exc}")
            return False
        self._show_message("", status=f"Saved {path}")
        return True

    def _show_message(self, text: str, status: str = "") -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))
        if text or status:
            self._state.status_posted.emit(text or status)

"""The main window: composes the tabs, the menus and the status bar. No maths, no file parsing.

A tab is a QWidget with a ``title`` attribute and any of these optional methods, which the
window calls when they exist:

- ``open_image_file(path: Path) -> bool``: File > Open, samples, recent files, a dropped file;
  returns False (after telling the user why) when the file could not be used.
- ``handle_drop(mime: QMimeData) -> bool``: a drop onto the window while this tab is current;
  when missing, the first dropped file goes to ``open_image_file``.
- ``save_result() -> None``: File > Save result (the Train tab saves its model).
- ``is_busy() -> bool`` and ``stop_work() -> None``: long work that closing must stop first; the
  tab emits ``work_stopped`` once it is idle again.

Closing asks first when work runs or a trained model (one batch at least) is in no file yet
(``TrainTab.has_unsaved_model``): Save (after stopping the run) asks where to keep it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QTabWidget, QWidget

import desktop.qt_compat  # noqa: F401  (binding work-arounds, before any widget)
import resources
from desktop.app_state import AppState
from desktop.classify_tab import ClassifyTab
from desktop.filters_tab import FiltersTab
from desktop.tour import TourPanel
from desktop.train_tab import TrainTab
from desktop.workers import hold_collection_while
from engine import __version__
from engine.atomic import home_folder
from engine.filters import FIGURE_SAMPLES

IMAGE_FILTER = (
    "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm);;All files (*)"
)
MAX_RECENT = 8
FIRST_SIZE = (1280, 820)  # the window's size on a first start, on a screen large enough
FRAME_ROOM = 40  # the title bar and frame the window manager adds outside that size

ABOUT_HTML = f"""
<h3>ConvScope {__version__}</h3>
<p>See and feel how a convolutional neural network works: convolve your own images with
editable kernels, train LeNet on handwritten digits and watch it learn, and classify what you
draw or drop. Companion to <i>An Intuitive Explanation of Convolutional Neural Networks</i>.</p>
<p><b>MNIST</b> handwritten digits by Yann LeCun, Corinna Cortes and Christopher J.C. Burges,
derived from NIST data; licensed CC BY-SA 3.0.</p>
<p><b>Photos of birds, cats, dogs and ships</b> from CIFAR-10: Alex Krizhevsky, <i>Learning
Multiple Layers of Features from Tiny Images</i>, University of Toronto, 2009.</p>
<p><b>Sample photos</b> (from scikit-image's sample data):
astronaut.png, Eileen Collins, NASA (public domain);
camera.png, Lav Varshney (CC0); chelsea.png, Stefan van der Walt (CC0);
coffee.png, Rachel Michetti, courtesy of Pikolo Espresso Bar (CC0);
rocket.jpg, SpaceX (public domain); eagle.png, Dayane Machado (CC0).</p>
"""


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("ConvScope")
        self.setAcceptDrops(True)
        self._settings = settings if settings is not None else QSettings()
        self._closing = False
        self._save_on_close = False  # "Save" was the answer to the question before quitting
        # garbage collected on the GUI thread until closed, or destroyed never closed
        self._release_collection = hold_collection_while(self)
        self.tour: TourPanel | None = None
        self.state = AppState()
        self.state.status_posted.connect(self._on_state_status_posted)

        self.tabs = QTabWidget(objectName="mainTabs")
        self.tabs.setDocumentMode(True)
        self.filters_tab = FiltersTab(self.state)
        self.train_tab = TrainTab(self.state)
        self.classify_tab = ClassifyTab(self.state)
        for tab in (self.filters_tab, self.train_tab, self.classify_tab):
            self.tabs.addTab(tab, tab.title)
            stopped = getattr(tab, "work_stopped", None)
            if stopped is not None:
                stopped.connect(self._on_tab_work_stopped)
        self.setCentralWidget(self.tabs)
        # A learned filter clicked in the Train tab opens in the Filters tab's kernel editor.
        self.state.kernel_requested.connect(self._on_state_kernel_requested)
        self._build_menus()
        self.statusBar().showMessage("Ready", 3000)
        self._restore_settings()

    # ----- menus --------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open image…", self, shortcut=QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._on_open_triggered)
        file_menu.addAction(self.open_action)
        samples = file_menu.addMenu("Open sa&mple image")
        for path in resources.sample_images():
            action = samples.addAction(path.name)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        samples.addSeparator()  # the article's small examples, in the Filters tab
        for sample in FIGURE_SAMPLES.values():
            action = samples.addAction(sample.label)
            action.setObjectName(f"open_{sample.key}")
            action.triggered.connect(lambda _c=False, k=sample.key: self._on_figure_triggered(k))
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._refresh_recent_menu()
        file_menu.addSeparator()
        self.save_action = QAction("&Save result…", self, shortcut=QKeySequence.StandardKey.Save)
        self.save_action.triggered.connect(self._on_save_triggered)
        file_menu.addAction(self.save_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.tour_action = help_menu.addAction("&Walk through the article")
        self.tour_action.triggered.connect(self.start_tour)
        about = help_menu.addAction("&About ConvScope")
        about.triggered.connect(self._on_about_triggered)

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for name in recent:
            action = self.recent_menu.addAction(name)
            action.triggered.connect(lambda _checked=False, p=name: self.open_path(Path(p)))
        self.recent_menu.setEnabled(bool(recent))

    # ----- opening files ------------------------------------------------------------------
    def current_tab(self) -> QWidget:
        return self.tabs.currentWidget()

    def open_path(self, path: Path) -> bool:
        """Open ``path`` in the current tab (or the Filters tab when it takes no images)."""
        tab = self.current_tab()
        if not hasattr(tab, "open_image_file"):
            tab = self.filters_tab
            self.tabs.setCurrentWidget(tab)
        ok = bool(tab.open_image_file(Path(path)))
        if ok:
            self._remember_file(Path(path))
        return ok

    def _on_figure_triggered(self, key: str) -> None:
        self.tabs.setCurrentWidget(self.filters_tab)
        self.filters_tab.open_figure(key)

    def _on_open_triggered(self) -> None:
        start = self._settings.value("last_folder")
        if not isinstance(start, str) or not start:  # none yet, or not a folder name
            start = str(home_folder() or "")  # no home (a container): the dialog's own start
        name, _ = QFileDialog.getOpenFileName(self, "Open image", start, IMAGE_FILTER)
        if name:
            self.open_path(Path(name))

    def _on_save_triggered(self) -> None:
        tab = self.current_tab()
        if hasattr(tab, "save_result"):
            tab.save_result()
        else:
            self.statusBar().showMessage("This tab has nothing to save", 4000)

    def _remember_file(self, path: Path) -> None:
        path = path.resolve()
        self._settings.setValue("last_folder", str(path.parent))
        recent = [p for p in self.recent_files() if p != str(path)]
        self._settings.setValue("recent_files", [str(path), *recent][:MAX_RECENT])
        self._refresh_recent_menu()

    def recent_files(self) -> list[str]:
        value = self._settings.value("recent_files", [])
        if isinstance(value, str):  # QSettings gives a lone string for a one-item list
            value = [value]
        if not isinstance(value, list):  # a settings file of another version, or edited
            return []
        return [v for v in value if isinstance(v, str) and v]

    # ----- drag and drop anywhere on the window -------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        raw_image = any(
            f.startswith("image/") or f == "application/octet-stream" for f in mime.formats()
        )
        if mime.hasUrls() or mime.hasImage() or raw_image:
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        tab = self.current_tab()
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        if hasattr(tab, "handle_drop"):
            handled = tab.handle_drop(mime)
        elif hasattr(tab, "open_dropped") and tab.open_dropped(paths):
            handled = True  # the Train tab's dataset folder or model file
        else:
            handled = bool(paths) and self.open_path(paths[0])
            if not paths:
                self.statusBar().showMessage("Drop an image file to open it", 4000)
        if handled:
            event.acceptProposedAction()

    # ----- status, about, settings, closing -----------------------------------------------
    def _on_state_status_posted(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def _on_state_kernel_requested(self, _kernel: object, _description: str) -> None:
        self.tabs.setCurrentWidget(self.filters_tab)

    def start_tour(self) -> TourPanel:
        """Help › Walk through the article: the tour panel under the tabs, at its first stop."""
        if self.tour is None:
            self.tour = TourPanel(self)
            self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.tour)
        self.tour.start()
        return self.tour

    def _on_about_triggered(self) -> None:
        QMessageBox.about(self, "About ConvScope", ABOUT_HTML)

    def _restore_settings(self) -> None:
        geometry = self._settings.value("geometry")  # anything, in an edited or old file
        if not isinstance(geometry, (QByteArray, bytes)) or not self.restoreGeometry(geometry):
            self._resize_to_first_size()
        if not self._settings.isWritable():  # a read-only file or folder: nothing kept
            self.statusBar().showMessage(
                f"Settings cannot be saved in {self._settings.fileName()}: the window size, "
                "tab and recent files will not be remembered",
                20000,
            )
        index = self._settings.value("tab_index", 0)
        try:
            self.tabs.setCurrentIndex(int(index))
        except (TypeError, ValueError):
            pass

    def _resize_to_first_size(self) -> None:
        """FIRST_SIZE, or less on a smaller screen (its title bar and frame included)."""
        width, height = FIRST_SIZE
        screen = self.screen()
        if screen is not None:
            room = screen.availableGeometry()
            width = min(width, room.width())
            height = min(height, room.height() - FRAME_ROOM)
        self.resize(width, height)

    def _busy_tabs(self) -> list[QWidget]:
        tabs = (self.tabs.widget(i) for i in range(self.tabs.count()))
        return [t for t in tabs if hasattr(t, "is_busy") and t.is_busy()]

    def closeEvent(self, event: QCloseEvent) -> None:
        busy = self._busy_tabs()
        trained = self.train_tab.has_unsaved_model()
        if not self._closing and (busy or trained):
            answer = self._ask_before_quitting(running=bool(busy), trained=trained)
            button = QMessageBox.StandardButton
            if answer not in (button.Save, button.Discard):
                event.ignore()
                return
            self._closing = True
            self._save_on_close = answer == button.Save
        if busy:
            for tab in busy:
                tab.stop_work()
            self.statusBar().showMessage("Stopping…")
            event.ignore()  # closed again from _on_tab_work_stopped once every tab is idle
            return
        if self._save_on_close:  # "Save" when asked: the trained model first
            self._save_on_close = False
            if not self.train_tab.save_model_as():
                self._closing = False  # not saved: the window stays, the model with it
                self.tabs.setCurrentWidget(self.train_tab)  # where a failed save says why
                self.statusBar().showMessage("Not saved: ConvScope stays open")
                event.ignore()
                return
        self._settings.setValue("geometry", self.saveGeometry())
        self._settings.setValue("tab_index", self.tabs.currentIndex())
        self.train_tab.close_learned()  # a window of ours: closing it stops its work
        self._release_collection()
        event.accept()

    def _ask_before_quitting(self, *, running: bool, trained: bool) -> QMessageBox.StandardButton:
        """The one question before quitting with a model that would be lost: Save (stop the
        run if one goes, then ask where to keep the model), Discard (quit without it) or
        Cancel (stay). A run that has not ``trained`` a batch yet: Discard (stop it and quit)
        or Cancel, nothing to save."""
        button = QMessageBox.StandardButton
        if running and not trained:
            text = (
                "Training is still running, but no batch has finished yet: there is no trained "
                "model to keep. Stop it and quit? Discard stops it and quits."
            )
            return QMessageBox.question(
                self, "Stop and quit?", text, button.Discard | button.Cancel, button.Cancel
            )
        if running:
            title, default = "Stop and quit?", button.Cancel
            text = (
                "Training is still running. Stop it and quit? Save stops it and asks where to "
                "keep the model trained so far; Discard quits without it."
            )
        else:
            title, default = "Save the trained model?", button.Save
            text = (
                "Save the trained model before quitting? It is not saved in a file yet; "
                "Discard quits without it."
            )
        buttons = button.Save | button.Discard | button.Cancel
        return QMessageBox.question(self, title, text, buttons, default)

    def _on_tab_work_stopped(self) -> None:
        if self._closing and not self._busy_tabs():
            self.close()  # saves first when "Save" was the answer

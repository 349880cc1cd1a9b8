"""The run setup panel of the Train tab: dataset, architecture and hyperparameters.

It reads the UI and calls engine functions: ``load_dataset`` and ``dataset_preview`` (together
in a worker thread: a 300-class folder never blocks the window), ``check_architecture`` then
``build_model`` for the live layer table (the size comes from arithmetic first, so a huge
network is refused before anything is built), and ``settings()`` gives the engine's
``RunSettings``. It emits ``loading_started()``, ``dataset_loaded(dataset)``,
``sample_clicked(image uint8, (H, W) or (C, H, W), label)`` (a preview image to pin for
the activation view) and ``loading_finished()``.

Size: one form (dataset, architecture, hyperparameters) whose fields all feed one
``settings()`` and one live layer table; a split would pass the form's widgets between modules.
The sample grid and the dataset loading are the pieces to move out if it grows.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QThread, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QMouseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.qt_image import array_to_pixmap
from desktop.widgets import plain_tip
from desktop.widgets.arch_text_edit import ArchTextEdit
from desktop.widgets.architecture_view import ArchitectureView, ArchitectureWindow
from desktop.widgets.tone import set_tone, text_colour
from desktop.workers import GeneratorWorker, start_worker
from engine import architectures
from engine.archtext import GRAMMAR, ArchTextError
from engine.atomic import home_folder
from engine.dataset_size import read_again, size_for
from engine.datasets import DEFAULT_DATASET, dataset_choices, load_dataset_iter, parse_classes
from engine.errors import EngineError, short_repr
from engine.graph_layout import describe_model
from engine.graphspec import spec_stats
from engine.losses import LOSSES
from engine.model import build_model
from engine.modelsize import check_architecture
from engine.optim import DEFAULT_LR, OPTIMIZERS
from engine.preview import DatasetPreview, dataset_preview
from engine.progress import CancelFlag, Progress
from engine.run import FIRST_RUN, RunSettings, architecture_for, family_name
from engine.training import TrainConfig

FOLDER = "folder"  # the source choice that asks for a folder
FOLDER_TEXT = "Folder… (IDX files, CIFAR-10 batches or one subfolder per class)"
AUGMENTATIONS = (
    ("none", "none"),
    ("auto", "auto (fits the data)"),
    ("digits", "digits: shift, rotate, scale, stroke"),
    ("photos", "photos: padded crop, mirror"),
)
SCHEDULES = (("constant", "constant"), ("cosine", "cosine decay"), ("onecycle", "one-cycle"))
LIMITS = (
    (2_000, "2,000 (a few seconds)"),
    (10_000, "10,000 (quick first run)"),
    (30_000, "30,000"),
    (None, "all of them"),  # MNIST: 60,000 (the tooltip); a folder: what it holds
)
ARCHITECTURES = (*architectures.names(), "custom", "text")  # the registry, then the two forms
IDEAS = {  # the paragraph under the Network box: the idea each member adds (the registry's)
    **{
        n: f"<b>{escape(architectures.get(n).title)}</b>: {escape(architectures.describe(n))}"
        for n in ARCHITECTURES[:-2]
    },
    "custom": "<b>Your own chain</b>: convolutions, then fully connected layers, as set below.",
    "text": "<b>Your own network</b> in the text form, as <tt>convscope train --arch</tt> takes "
    "it: layers separated by commas (hover the box for the grammar).",
}
# words for the engine's names (engine.optim.OPTIMIZERS, engine.losses.LOSSES); others show as named
OPTIMIZER_TEXT = {"momentum": "SGD + momentum", "sgd": "SGD", "adam": "Adam"}
LOSS_TEXT = {"cross_entropy": "cross-entropy", "total_error": "total error ½Σ(t−o)² (article)"}
PER_CLASS = 3
GRID_WIDTH = 300  # small images are zoomed (up to 3x) towards this width in the preview
MAX_PREVIEW_CLASSES = 10  # columns of the sample grid; more classes are counted, not shown
MAX_TICK_CLASSES = 20  # class names under the count bars up to this many classes
ARCH_DELAY_MS = 150  # the layer table follows typing after this pause


class _SourceCombo(QComboBox):
    """The dataset Source box: ``popup_requested`` comes before its list opens, so the list is
    brought up to date (a dataset downloaded with ``convscope download`` while the app runs)."""

    popup_requested = Signal()

    def showPopup(self) -> None:  # Qt's name
        self.popup_requested.emit()
        super().showPopup()


def _resized(dataset) -> str:
    """' (32x32 images resized to 28x28 for the network)' (``Dataset.resized_text``) for a
    dataset brought to the network's input size, else ''."""
    text = dataset.resized_text()
    return "" if text is None else f" ({text} for the network)"


def _skipped(dataset, named: int = 3) -> str:
    """', 2 unreadable files skipped: cat/notes.png, dog/cut.png' (the first ``named`` of them;
    the label's tooltip gives the reasons), or '' when every file read."""
    files = [file for file, _reason in dataset.skipped]
    if not files:
        return ""
    shown = ", ".join(escape(f) for f in files[:named]) + (", …" if len(files) > named else "")
    plural = "s" if len(files) > 1 else ""
    return f", {len(files)} unreadable file{plural} skipped: {shown}"


class FieldError(ValueError):
    """A field of the custom network's form that does not read (the message names it;
    ``field`` is its label, so that the form can mark it)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _parse_ints(text: str, field: str, example: str) -> list[int]:
    """Whole numbers separated by commas (or semicolons); FieldError names the bad one."""
    values = []
    for v in text.replace(";", ",").split(","):
        if not v.strip():
            continue
        # what int() reads ("²" is a digit, not a number), short enough for it to read
        if not v.strip().isdecimal() or len(v.strip()) > 9:
            raise FieldError(
                f"{field}: {short_repr(v.strip())} is not a whole number; write numbers "
                f"separated by commas, e.g. {example}",
                field,
            )
        values.append(int(v))
    return values


_BAD_FIELD = "QLineEdit { border: 1px solid #b00020; background: #fdecea; }"


def _combo(name: str, items: Iterable[tuple[object, str]], current: object) -> QComboBox:
    """A combo box of (data, text) items with the one whose data is ``current`` chosen."""
    combo = QComboBox(objectName=name)
    for key, text in items:
        combo.addItem(text, key)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo


class _SampleGrid(QLabel):
    """The preview grid: column = class, row = sample; a click reports the cell."""

    cell_clicked = Signal(int, int)

    def __init__(self) -> None:
        super().__init__(objectName="sampleGrid")
        self.cell = (28, 28)
        self.zoom = 1
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click an image to pin it as the sample of the activation view")
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        h, w = self.cell
        col = int(event.position().x() // ((w + 1) * self.zoom))
        row = int(event.position().y() // ((h + 1) * self.zoom))
        self.cell_clicked.emit(row, col)


class RunSetup(QWidget):
    loading_started = Signal()
    dataset_loaded = Signal(object)
    dataset_failed = Signal(str)
    sample_clicked = Signal(object, int)
    loading_finished = Signal()
    architecture_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dataset = None
        self._spec: str | Path = DEFAULT_DATASET
        self._thread: QThread | None = None
        self._worker: GeneratorWorker | None = None
        self._reload = False
        self._loaded_size: dict[int, tuple[int, int]] | None = None  # image folders were read at
        self._load_control = CancelFlag()
        self._classes_text = ""
        self._samples = np.zeros((0, 0), dtype=np.int64)
        self._arch_timer = QTimer(self, singleShot=True, interval=ARCH_DELAY_MS)
        self._arch_timer.timeout.connect(self._on_architecture_changed)
        self._kept = None  # the model Start trains while Continue model is ticked (show_kept_model)
        self._running = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._build_dataset_group())
        self.arch_group = self._build_architecture_group()
        self.hyper_group = self._build_hyper_group()
        layout.addWidget(self.arch_group)
        layout.addWidget(self.hyper_group)
        layout.addStretch(1)
        for combo in self.findChildren(QComboBox):  # let long item texts elide, not widen the panel
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(8)
        self._on_architecture_changed()

    # ----- dataset ----------------------------------------------------------------------
    def _show_source_tooltip(self, row: int) -> None:
        """The closed box may cut a long title: its tooltip says it whole, with the details."""
        combo = self.source_combo
        details = combo.itemData(row, Qt.ItemDataRole.ToolTipRole)
        combo.setToolTip(combo.itemText(row) + (f"\n{details}" if details else ""))

    def _build_dataset_group(self) -> QGroupBox:
        box = QGroupBox("1 · Dataset")
        column = QVBoxLayout(box)  # wrapped labels in a form's spanning rows were cut short
        form = QFormLayout()
        column.addLayout(form)
        self.source_combo = _SourceCombo(objectName="datasetSource")
        for choice in dataset_choices():
            self.source_combo.addItem(choice.title, choice.key)
        self.source_combo.addItem(FOLDER_TEXT, FOLDER)
        self._mark_downloads()
        self.source_combo.popup_requested.connect(self._mark_downloads)
        self.source_combo.activated.connect(self._on_source_combo_activated)
        self.source_combo.currentIndexChanged.connect(self._show_source_tooltip)
        self._show_source_tooltip(self.source_combo.currentIndex())
        form.addRow("Source", self.source_combo)
        self.classes_edit = QLineEdit(objectName="classesEdit")
        self.classes_edit.setPlaceholderText("all (or e.g. bird, cat, dog, ship)")
        self.classes_edit.setToolTip(
            "Keep only these classes, in this order (comma separated); empty = all"
        )
        self.classes_edit.editingFinished.connect(self._on_classes_edit_finished)
        form.addRow("Classes", self.classes_edit)
        self.limit_combo = QComboBox(objectName="trainLimit")
        for value, text in LIMITS:
            self.limit_combo.addItem(text, value)
        self.limit_combo.setCurrentIndex(self.limit_combo.findData(FIRST_RUN.limit))
        self.limit_combo.activated.connect(lambda _i: self.load())
        self.limit_combo.setToolTip(
            "How many training images to use. 10,000 train LeNet-5 to about 97% in a few "
            "seconds; all 60,000 take longer and reach about 99%."
        )
        form.addRow("Training images", self.limit_combo)
        hint = QLabel("Fewer images = a faster first run; use all for the best model.")
        hint.setWordWrap(True)
        set_tone(hint, "color: #666;")
        column.addWidget(hint)
        self.dataset_label = QLabel("Loading…", objectName="datasetInfo")
        self.dataset_label.setWordWrap(True)
        column.addWidget(self.dataset_label)
        self.counts_plot = pg.PlotWidget()
        self.counts_plot.setObjectName("classCountsPlot")
        self.counts_plot.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # no keys: not a Tab stop
        self.counts_plot.setBackground("w")
        self.counts_plot.setFixedHeight(90)
        self.counts_plot.setMenuEnabled(False)
        self.counts_plot.setMouseEnabled(False, False)
        self.counts_plot.getPlotItem().hideButtons()
        self.counts_plot.getPlotItem().setTitle(
            "<span style='color:#444;font-size:8pt'>training images per class</span>"
        )
        for side in ("left", "bottom"):  # no scale until there are counts: an empty 0-1
            self._axis(side).setStyle(showValues=False)  # scale crowds 6 labels into 40 px
        self._bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#1f77b4")
        self.counts_plot.addItem(self._bars)
        column.addWidget(self.counts_plot)
        self.sample_grid = _SampleGrid()
        self.sample_grid.cell_clicked.connect(self._on_sample_grid_cell_clicked)
        column.addWidget(self.sample_grid)
        return box

    def _mark_downloads(self) -> None:
        """Each named dataset's row: enabled, with its description, or (a download not made
        yet) disabled, with the command that makes it. Again each time the list opens."""
        combo = self.source_combo
        for choice in dataset_choices():
            row = combo.findData(choice.key)
            combo.model().item(row).setEnabled(choice.available)
            tip = choice.description
            if not choice.available:
                tip = f"Not downloaded yet: run 'convscope download {choice.key}'"
            combo.setItemData(row, tip, Qt.ItemDataRole.ToolTipRole)

    def _on_source_combo_activated(self, index: int) -> None:
        key = self.source_combo.itemData(index)
        if key != FOLDER:
            self._spec = key
        else:
            title = "Dataset folder (IDX files, CIFAR-10 batches or one subfolder per class)"
            folder = QFileDialog.getExistingDirectory(self, title, str(home_folder() or ""))
            if not folder:
                if isinstance(self._spec, str):  # back to the named dataset in use
                    self.source_combo.setCurrentIndex(self.source_combo.findData(self._spec))
                return
            self._spec = Path(folder)
        self.load()

    def _on_classes_edit_finished(self) -> None:
        if self.classes_edit.text().strip() != self._classes_text:
            self.load()

    def set_source(self, spec: str | Path, limit: int | None) -> None:
        """Programmatic choice (tests, benches): a spec for ``load_dataset`` and a limit."""
        self._spec = spec
        found = self.source_combo.findData(spec if isinstance(spec, str) else FOLDER)
        self.source_combo.setCurrentIndex(
            found if found >= 0 else self.source_combo.findData(FOLDER)
        )
        found = self.limit_combo.findData(limit)
        if found < 0:
            self.limit_combo.addItem(f"{limit:,}", limit)
            found = self.limit_combo.count() - 1
        self.limit_combo.setCurrentIndex(found)
        self.load()

    def limit(self) -> int | None:
        return self.limit_combo.currentData()

    def is_loading(self) -> bool:
        return self._thread is not None

    def load(self) -> None:
        """Load the chosen dataset in a worker thread (``dataset_loaded`` when done). A load
        asked for while one runs cancels it; the newest choice is loaded next."""
        if self._thread is not None:
            self._reload = True  # load again with the newest choice once this one is done
            self._load_control.cancel()
            return
        self._reload = False
        spec, limit = self._spec, self.limit()
        size = self._loaded_size = self._wanted_size()
        self._classes_text = self.classes_edit.text().strip()
        try:
            classes = parse_classes(self._classes_text) if self._classes_text else None
        except EngineError as exc:
            self._on_loader_errored(str(exc))
            return
        control = self._load_control = CancelFlag()
        self.dataset_label.setText(f"Loading {spec}…")
        self.dataset_label.setToolTip("")

        def job():
            dataset = None
            for item in load_dataset_iter(
                spec, limit=limit, image_size=size, classes=classes, control=control
            ):
                if isinstance(item, Progress):
                    yield item
                else:
                    dataset = item
            if dataset is None or control.cancelled:
                return
            images, labels = dataset.train_images, dataset.train_labels
            k = len(dataset.classes)
            yield dataset, dataset_preview(images, labels, k, PER_CLASS, MAX_PREVIEW_CLASSES)

        worker = GeneratorWorker(job, essential=lambda event: not isinstance(event, Progress))
        worker.yielded.connect(self._on_loader_yielded)
        worker.errored.connect(self._on_loader_errored)
        # workers.start_worker keeps the thread alive until it ends (a window closed during the
        # load never destroys it) and the quit waits for it.
        self._thread = start_worker(worker, on_finished=self._on_loader_thread_finished)
        self.loading_started.emit()

    def _on_loader_thread_finished(self) -> None:
        self._thread = None
        self._worker = None
        if self._reload:
            self.load()
            return
        self.loading_finished.emit()

    def _on_loader_errored(self, message: str) -> None:
        self.dataset = None  # Start must not train the previous dataset instead
        self.dataset_label.setToolTip("")
        red = text_colour(self.dataset_label, "#b00")
        self.dataset_label.setText(f"<span style='color:{red}'>Could not load: {message}</span>")
        self.dataset_failed.emit(message)

    def _on_loader_yielded(self, loaded: object) -> None:
        if isinstance(loaded, Progress):
            doing = "Resizing" if loaded.stage == "resize" else "Loading"
            self.dataset_label.setText(
                f"{doing} {self._spec}… {loaded.done:,} of {loaded.total:,} images"
            )
            return
        dataset, preview = loaded  # type: ignore[misc]
        self.dataset = dataset
        self._show_preview(dataset, preview)
        self._on_architecture_changed()
        self.dataset_loaded.emit(dataset)

    def _show_preview(self, dataset, preview: DatasetPreview) -> None:
        k = len(dataset.classes)
        shape = "×".join(str(s) for s in dataset.train_images.shape[1:])
        skipped = _skipped(dataset)
        self.dataset_label.setToolTip(plain_tip("\n".join(dataset.skipped_lines())))
        shown = "" if preview.shown_classes == k else f" (the first {preview.shown_classes} shown)"
        self.dataset_label.setText(
            f"<b>{escape(dataset.name)}</b>: {len(dataset.train_labels):,} training and "
            f"{len(dataset.test_labels):,} test images of {shape} pixels, "
            f"{k} classes{skipped}{shown}{_resized(dataset)}"
        )
        self._bars.setOpts(x=np.arange(k), height=preview.counts, width=0.7)
        for side in ("left", "bottom"):
            self._axis(side).setStyle(showValues=True)
        axis = self._axis("bottom")
        # every name under its bar, cut to its share of the axis (pyqtgraph dropped a long last
        # one whole: 'Oiseaux à la maison'); the tooltip gives them whole, with the counts
        slot = max(24, self.counts_plot.width() - 40) // max(k, 1) - 6
        metrics = QFontMetrics(axis.style["tickFont"] or self.counts_plot.font())
        names = [
            metrics.elidedText(str(c), Qt.TextElideMode.ElideRight, slot) for c in dataset.classes
        ]
        ticks = [(i, n) for i, n in enumerate(names) if n != "…"] if k <= MAX_TICK_CLASSES else []
        axis.setStyle(textFillLimits=[(0, 1.0)])
        axis.setTicks([ticks] if ticks else None)
        pairs = list(zip(dataset.classes, preview.counts, strict=True))
        more = f", … ({k:,} classes)" if k > MAX_TICK_CLASSES else ""
        tip = ", ".join(f"{c}: {int(n):,}" for c, n in pairs[:MAX_TICK_CLASSES]) + more
        self.counts_plot.setToolTip(plain_tip(tip))
        self._samples = preview.samples
        self.sample_grid.cell = preview.cell
        pixmap = array_to_pixmap(preview.grid)
        zoom = max(1, min(3, GRID_WIDTH // max(1, pixmap.width())))
        self.sample_grid.zoom = zoom
        self.sample_grid.setPixmap(pixmap.scaled(pixmap.size() * zoom))

    def _axis(self, side: str) -> pg.AxisItem:
        return self.counts_plot.getPlotItem().getAxis(side)

    def _show_arch_error(self, text: str) -> None:
        """The architecture's error line: shown with a message only (no empty band)."""
        self.arch_error.setText(text)
        self.arch_error.setVisible(bool(text))

    def _mark_field(self, field: str) -> None:
        """Frame the custom form's field that does not read in red (none: ``""``), as the
        text form underlines its bad token."""
        for label, edit in (("Conv filters", self.filters_edit), ("FC widths", self.fc_edit)):
            set_tone(edit, _BAD_FIELD if label == field else "")

    def _on_sample_grid_cell_clicked(self, row: int, col: int) -> None:
        if self.dataset is None or not (0 <= row < PER_CLASS and 0 <= col < self._samples.shape[0]):
            return
        index = int(self._samples[col, row])
        if index >= 0:
            image = np.asarray(self.dataset.train_images[index])
            self.sample_clicked.emit(image, int(self.dataset.train_labels[index]))

    # ----- architecture -----------------------------------------------------------------
    def _build_architecture_group(self) -> QGroupBox:
        box = QGroupBox("2 · Architecture")
        form = QFormLayout(box)
        form.addRow("Network", self._build_arch_combo())
        self.arch_idea = QLabel(objectName="architectureIdea")
        self.arch_idea.setWordWrap(True)
        set_tone(self.arch_idea, "color: #444;")
        form.addRow(self.arch_idea)
        self.arch_text = ArchTextEdit(
            "conv 16 3, relu, conv 16 3, relu, maxpool 2, conv 32 3, relu, maxpool 2, flatten, "
            "dense 64, relu, dropout 0.5"
        )
        self.arch_text.setToolTip(GRAMMAR)
        form.addRow(self.arch_text)
        self.custom_box = QWidget()
        custom = QFormLayout(self.custom_box)
        custom.setContentsMargins(0, 0, 0, 0)
        self.filters_edit = QLineEdit("6, 16", objectName="convFilters")
        self.filters_edit.setToolTip("Filters per conv layer, comma separated")
        self.kernel_spin = QSpinBox(minimum=1, maximum=11, value=5)
        self.padding_spin = QSpinBox(minimum=0, maximum=5, value=0)
        self.fc_edit = QLineEdit("120, 84", objectName="fcWidths")
        self.activation_combo = QComboBox()
        self.activation_combo.addItems(["relu", "tanh", "sigmoid"])
        self.pooling_combo = QComboBox()
        self.pooling_combo.addItems(["max", "avg", "none"])
        custom.addRow("Conv filters", self.filters_edit)
        custom.addRow("Kernel size", self.kernel_spin)
        custom.addRow("Padding", self.padding_spin)
        custom.addRow("FC widths", self.fc_edit)
        custom.addRow("Activation", self.activation_combo)
        custom.addRow("Pooling (2×2)", self.pooling_combo)
        form.addRow(self.custom_box)
        self.arch_error = QLabel(objectName="architectureError")
        self.arch_error.setWordWrap(True)
        set_tone(self.arch_error, "color: #b00020; font-weight: bold;")
        self.arch_error.hide()  # shown with a message only: no empty band under the text
        form.addRow(self.arch_error)
        self.layer_table = QTableWidget(0, 3, objectName="layerTable")
        self.layer_table.setHorizontalHeaderLabels(["layer", "output", "params"])
        self.layer_table.verticalHeader().setVisible(False)
        header = self.layer_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the rest to the names
        self.layer_table.setWordWrap(False)  # one line a layer,
        self.layer_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a branch's end shows
        self.layer_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.layer_table.setMinimumHeight(160)
        self.architecture_view = ArchitectureView()
        self.arch_tabs = QTabWidget(objectName="architectureTabs")
        self.arch_tabs.addTab(self.architecture_view, "Diagram")
        self.arch_tabs.addTab(self.layer_table, "Layers")
        self.arch_tabs.setMinimumHeight(320)
        self.larger_button = QPushButton("Larger view…", objectName="architectureLarger")
        self.larger_button.setToolTip("The diagram in a window of its own, as large as you like")
        self.larger_button.clicked.connect(self._on_larger_clicked)
        self.arch_tabs.setCornerWidget(self.larger_button)
        self.architecture_window: ArchitectureWindow | None = None  # made at the first click
        form.addRow(self.arch_tabs)
        self.params_label = QLabel(objectName="architectureSize")
        self.params_label.setWordWrap(True)  # never widens the panel
        form.addRow(self.params_label)
        for signal in (
            self.arch_combo.currentIndexChanged,
            self.kernel_spin.valueChanged,
            self.padding_spin.valueChanged,
            self.activation_combo.currentIndexChanged,
            self.pooling_combo.currentIndexChanged,
        ):
            signal.connect(self._on_architecture_changed)
        for edit in (self.filters_edit, self.fc_edit, self.arch_text):  # typing: on a pause
            edit.textChanged.connect(self._arch_timer.start)
        return box

    def _build_arch_combo(self) -> QComboBox:
        self.arch_combo = QComboBox(objectName="architecture")
        self.arch_combo.addItems(ARCHITECTURES)
        self.arch_combo.setCurrentText(str(FIRST_RUN.architecture))
        for i, name in enumerate(architectures.names()):
            self.arch_combo.setItemData(
                i, architectures.describe(name), Qt.ItemDataRole.ToolTipRole
            )
        self.arch_combo.setItemData(
            len(ARCHITECTURES) - 2,
            "your own filters, kernel, FC widths, activation and pooling",
            Qt.ItemDataRole.ToolTipRole,
        )
        self.arch_combo.setItemData(
            len(ARCHITECTURES) - 1,
            "a network in the text form, as convscope train --arch takes it",
            Qt.ItemDataRole.ToolTipRole,
        )
        return self.arch_combo

    def _on_larger_clicked(self) -> None:
        if self.architecture_window is None:
            self.architecture_window = ArchitectureWindow(self.architecture_view, self)
        self.architecture_window.show()
        self.architecture_window.raise_()

    def architecture_name(self) -> str:
        """The choice in the Network box: a registry name, "custom" or "text"."""
        return self.arch_combo.currentText()

    def choose_architecture(self, name: str) -> bool:
        """Choose ``name`` in the Network box (the diagram follows); unknown names are ignored.
        False, choosing nothing, while the box is frozen (:meth:`network_frozen`)."""
        if self.network_frozen():
            return False
        if name in ARCHITECTURES:
            self.arch_combo.setCurrentText(name)
        return True

    def network_frozen(self) -> bool:
        """The Network box is off: a run goes, or Continue model keeps a model (the diagram
        shows the network being trained)."""
        return self._running or self._kept is not None

    def architecture(self) -> dict | str:
        """What ``build_model`` takes; raises ValueError for unreadable number lists."""
        name = self.arch_combo.currentText()
        if name == "text":
            return self.arch_text.text()
        if name != "custom":
            return name
        shape = self.dataset.input_shape if self.dataset is not None else (1, 28, 28)
        return {
            "name": "custom",
            "input_shape": list(shape),
            "conv_filters": _parse_ints(self.filters_edit.text(), "Conv filters", "6, 16"),
            "kernel_size": self.kernel_spin.value(),
            "padding": self.padding_spin.value(),
            "fc_widths": _parse_ints(self.fc_edit.text(), "FC widths", "120, 84"),
            "activation": self.activation_combo.currentText(),
            "pooling": self.pooling_combo.currentText(),
        }

    def classes(self) -> list[str]:
        return (
            list(self.dataset.classes) if self.dataset is not None else [str(i) for i in range(10)]
        )

    def build(self, seed: int | None = None):
        """A fresh model of the chosen architecture (raises EngineError/ValueError)."""
        rng = np.random.default_rng(self.seed_spin.value() if seed is None else seed)
        return build_model(self._resolved(), rng, classes=self.classes())

    def _resolved(self) -> dict:
        """The chosen architecture for the dataset (``engine.run.architecture_for``, as a run
        builds it) or, before one is loaded, for 28×28 digits."""
        arch = self.architecture()
        if self.dataset is not None:
            return architecture_for(arch, self.dataset)
        if isinstance(arch, str):
            return architectures.choose(arch, 1).architecture(len(self.classes()))
        return arch

    def _wanted_size(self) -> dict[int, tuple[int, int]] | None:
        """The (H, W) to read the dataset at, per colour: the chosen network's, as ``convscope
        train --arch`` reads it (``engine.architectures.image_sizes``: LeNet-5 28x28, so photos
        and CIFAR-10 batches are read at 28x28; resnet8 28x28 grey, 32x32 colour; the text
        form likewise); None for the custom form's chain (the images' own size)."""
        name = self.arch_combo.currentText()
        if name == "custom":
            return None
        try:
            return architectures.image_sizes(self.arch_text.text() if name == "text" else name)
        except EngineError:  # a text naming a FILE.json that does not read: the check says so
            return None

    def _read_again(self) -> bool:
        """Read the dataset again when the chosen network wants another image size
        (``engine.dataset_size.read_again``; True: a load started; the check follows)."""
        data, wanted = self.dataset, self._wanted_size()
        if data is None or self.is_loading() or not read_again(data, self._loaded_size, wanted):
            return False
        self.load()
        return True

    def show_kept_model(self, model) -> None:
        """While Continue model is ticked Start trains ``model``, whatever the Network box says:
        the diagram, the layer table and the counts show it, and the Network box is off until
        it is unticked (``None``: the Network box's choice again)."""
        self._kept = model
        self.set_enabled_for_run(self._running)
        self._on_architecture_changed()

    def _on_architecture_changed(self, *_args) -> None:
        self._arch_timer.stop()
        if self._kept is not None:
            self.arch_idea.setText(
                f"<b>Continue model</b> is ticked: Start trains the model kept here "
                f"({escape(family_name(self._kept))}), drawn below. Untick it to choose a network."
            )
            self._show_arch_error("")
            self._show_network(self._kept)
            self.architecture_changed.emit()
            return
        self.custom_box.setVisible(self.arch_combo.currentText() == "custom")
        self.arch_text.setVisible(self.arch_combo.currentText() == "text")
        self.arch_idea.setText(IDEAS.get(self.arch_combo.currentText(), ""))
        if self._read_again():  # the check follows when the images are read
            size = size_for(self._loaded_size, self.dataset.input_shape[0])
            at = "their own size" if size is None else f"{size[0]}×{size[1]}"
            self.params_label.setText("")
            self.architecture_view.clear(f"Reading the images again at {at}…")
            self.architecture_changed.emit()
            return
        try:
            check_architecture(self._resolved(), len(self.classes()))  # arithmetic, before building
            model = self.build(seed=0)
            if self.dataset is not None:  # the dataset's images must fit its input
                model.input_spec.to_tensor(self.dataset.train_images[:1])
        except (EngineError, ValueError) as exc:
            in_text = isinstance(exc, ArchTextError)  # its bad token is underlined too
            self.arch_text.mark(*((exc.column, exc.length) if in_text else (0, 0)))
            in_form = isinstance(exc, FieldError)
            self._mark_field(exc.field if isinstance(exc, FieldError) else "")
            what = "In the text" if in_text else "This network does not fit"
            self._show_arch_error(str(exc) if in_form else f"{what}: {exc}")
            self.layer_table.setRowCount(0)
            what_now = "Fix the network's text to see its diagram"
            if in_form:
                what_now = "Fix the numbers of the form to see its diagram"
            elif not in_text or exc.shapes:  # it reads, but does not fit
                what_now = "This network does not fit"
            self.architecture_view.clear(what_now)
            self.params_label.setText("")
            self.architecture_changed.emit()
            return
        self._show_arch_error("")
        self.arch_text.mark(0, 0)
        self._mark_field("")
        self._show_network(model)
        self.architecture_changed.emit()

    def _show_network(self, model) -> None:
        """``model``'s diagram, layer table and counts."""
        self.architecture_view.set_facts(describe_model(model))
        rows = model.summary()
        self.layer_table.setRowCount(len(rows) + 1)
        input_shape = "×".join(str(s) for s in model.input_spec.shape)
        kinds = ["input"] + [i.kind for i in rows]
        for r, (name, shape, n) in enumerate(
            [("input", input_shape, "")]
            + [
                (
                    i.name,
                    "×".join(str(s) for s in i.output_shape),
                    f"{i.n_params:,}" if i.n_params else "",
                )
                for i in rows
            ]
        ):
            for c, text in enumerate((name, shape, n)):
                item = QTableWidgetItem(text)
                if c == 0:  # the whole name (the column may cut it) and the kind
                    item.setToolTip(plain_tip(f"{text} ({kinds[r]})"))
                self.layer_table.setItem(r, c, item)
        params, macs = spec_stats(model.graph_spec())
        self.params_label.setText(
            f"{params:,} trainable parameters · {macs:,} multiply-adds per image"
        )

    def architecture_ok(self) -> bool:
        """The network fits (as of the last check; typing re-checks after a short pause)."""
        return not self.arch_error.text() and not self._arch_timer.isActive()

    def architecture_problem(self) -> str:
        """Why the chosen network cannot be built, as the panel says it ("" when it can)."""
        return self.arch_error.text()

    # ----- hyperparameters --------------------------------------------------------------
    def _build_hyper_group(self) -> QGroupBox:
        """The fields start at the engine's ``FIRST_RUN`` (the CLI's defaults, three epochs)."""
        first = FIRST_RUN.config
        box = QGroupBox("3 · Hyperparameters")
        form = QFormLayout(box)
        self.optimizer_combo = _combo(
            "optimizer", ((k, OPTIMIZER_TEXT.get(k, k)) for k in OPTIMIZERS), first.optimizer
        )
        self.optimizer_combo.currentIndexChanged.connect(self._on_optimizer_changed)
        self.lr_spin = QDoubleSpinBox(
            objectName="learningRate",
            decimals=4,
            minimum=0.0001,
            maximum=100.0,
            value=first.lr,
            singleStep=0.001,
        )
        self.lr_spin.setToolTip("Step size of each update. Try 10 to see a run diverge.")
        self.batch_spin = QSpinBox(
            objectName="batchSize", minimum=1, maximum=4096, value=first.batch_size
        )
        self.epochs_spin = QSpinBox(objectName="epochs", minimum=1, maximum=200, value=first.epochs)
        self.decay_spin = QDoubleSpinBox(
            objectName="weightDecay", decimals=5, minimum=0.0, maximum=1.0,
            value=first.weight_decay, singleStep=0.0001,
        )  # fmt: skip
        self.decay_spin.setToolTip("L2 penalty: each step also pulls every weight towards 0")
        self.momentum_spin = QDoubleSpinBox(
            objectName="momentum", decimals=2, minimum=0.0, maximum=0.99, value=first.momentum,
            singleStep=0.05,
        )  # fmt: skip
        self.momentum_spin.setToolTip(
            "How much of the previous step each step keeps (SGD + momentum)"
        )
        self.nesterov_check = QCheckBox("Nesterov", objectName="nesterov", checked=first.nesterov)
        self.nesterov_check.setToolTip("Look ahead along the momentum before taking the gradient")
        self.augment_combo = _combo("augment", AUGMENTATIONS, "none")
        self.augment_combo.setToolTip(
            "Random changes to each training batch. Digits: shifts, rotations, scale and stroke "
            "width (to read real handwriting). Photos: a random crop of the padded photo and a "
            "mirror image. Auto: photos for colour data, digits for grey."
        )
        self.schedule_combo = _combo("lrSchedule", SCHEDULES, first.schedule)
        self.schedule_combo.setToolTip(
            "How the learning rate changes over the run: constant; cosine decay from the rate "
            "to 0; one-cycle (rises to the rate over the first 30%, then falls)"
        )
        self.seed_spin = QSpinBox(objectName="seed", minimum=0, maximum=2**31 - 1, value=first.seed)
        self.val_spin = QDoubleSpinBox(
            objectName="validationFraction",
            decimals=2,
            minimum=0.0,
            maximum=0.5,
            value=FIRST_RUN.val_fraction,
            singleStep=0.05,
        )
        self.val_spin.setToolTip("Part of the training images held out to check each epoch")
        self.loss_combo = _combo(
            "loss", ((k, LOSS_TEXT.get(k, k.replace("_", " "))) for k in LOSSES), first.loss
        )
        form.addRow("Optimiser", self.optimizer_combo)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("LR schedule", self.schedule_combo)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Momentum", self.momentum_spin)
        form.addRow("", self.nesterov_check)
        form.addRow("Weight decay", self.decay_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Validation part", self.val_spin)
        form.addRow("Loss", self.loss_combo)
        form.addRow("Augmentation", self.augment_combo)
        self._on_optimizer_changed(self.optimizer_combo.currentIndex())
        return box

    def _on_optimizer_changed(self, _index: int) -> None:
        if self.lr_spin.value() in DEFAULT_LR.values():
            self.lr_spin.setValue(DEFAULT_LR[self.optimizer_combo.currentData()])
        has_momentum = self.optimizer_combo.currentData() == "momentum"
        self.momentum_spin.setEnabled(has_momentum)
        self.nesterov_check.setEnabled(has_momentum)

    def config(self) -> TrainConfig:
        optimizer = self.optimizer_combo.currentData()
        return TrainConfig(
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=float(self.lr_spin.value()),
            optimizer=optimizer,
            momentum=float(self.momentum_spin.value()),
            nesterov=optimizer == "momentum" and self.nesterov_check.isChecked(),
            weight_decay=float(self.decay_spin.value()),
            loss=self.loss_combo.currentData(),
            seed=self.seed_spin.value(),
            schedule=self.schedule_combo.currentData(),
        )

    def settings(self) -> RunSettings:
        """The engine's settings of a run with what the panel shows (ValueError for unreadable
        number lists)."""
        augment, name = None, self.augment_combo.currentData()
        if name != "none" and self.dataset is not None:
            from engine.augment import augmenter

            augment = augmenter(name, self.dataset.train_images)
        else:
            name = ""
        return RunSettings(
            architecture=self.architecture(),
            config=self.config(),
            val_fraction=self.validation_fraction(),
            augment=augment,
            augment_name=name,
            limit=self.limit(),
        )

    def validation_fraction(self) -> float:
        return float(self.val_spin.value())

    def describe(self, network: str = "") -> str:
        """A short label for the run list, e.g. "lenet5 · momentum lr 0.01 · bs 64 · 10,000";
        ``network`` names the network instead of the Network box (a continued model's)."""
        arch = network or self.arch_combo.currentText()
        n = len(self.dataset.train_labels) if self.dataset is not None else 0
        data = f"{self.dataset.name} · " if self.dataset is not None else ""
        return (
            f"{arch} · {data}{self.optimizer_combo.currentData()} lr {self.lr_spin.value():g} · "
            f"bs {self.batch_spin.value()} · {n:,} images"
        )

    def set_enabled_for_run(self, running: bool) -> None:
        """Freeze the settings during a run (the dataset preview stays clickable, the
        diagram and the layer table stay readable: hover details, "Larger view…")."""
        self._running = running
        for widget in (self.source_combo, self.limit_combo, self.classes_edit, self.hyper_group):
            widget.setEnabled(not running)
        for widget in (self.arch_combo, self.arch_text, self.custom_box):  # the Network box
            widget.setEnabled(not self.network_frozen())

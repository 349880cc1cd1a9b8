"""The Filters tab: open an image, edit kernels, watch convolution, ReLU and pooling.

Layout: the controls on the left (kernel editor, convolution, next stages, display); on the
right the pages *Image* (input and result side by side with synchronised zoom/pan, and the pixel
inspector under them), *Feature maps* (the depth-N stack) and *Step through* (Figure 5).

Every change schedules one computation (a zero-delay timer coalesces bursts of signals). The
computation is :func:`engine.filters.iter_filter` plus the display mapping, run by a
:class:`desktop.workers.GeneratorWorker` off the GUI thread; when the user changes something
while it runs, the running job is cancelled and the latest settings run next. The GUI thread
only turns the finished arrays into pixmaps.

Signals: ``result_shown()`` after the views show a new result, ``activation_requested()`` when
another tab sent a kernel here (the main window should switch to this tab).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QGuiApplication,
    QImage,
    QKeySequence,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabBar,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import resources
from desktop.app_state import AppState
from desktop.qt_image import array_to_qimage
from desktop.widgets.conv_animation import ConvAnimation
from desktop.widgets.histogram import Histogram
from desktop.widgets.image_view import ImageView
from desktop.widgets.kernel_grid import KernelGrid
from desktop.widgets.pixel_inspector import PixelInspector, short
from desktop.workers import GeneratorWorker, OneAtATime, start_worker
from engine import filters as F
from engine.errors import EngineError
from engine.imageio import load_image, save_image

CUSTOM = "Custom kernel"
BORDER_LABELS = {
    "zero": "Zero padding",
    "extend": "Extend (repeat edge)",
    "reflect": "Reflect",
    "symmetric": "Symmetric (mirror)",
    "wrap": "Wrap around",
    "valid": "Valid (no padding)",
}
DISPLAY_LABELS = {
    "clip": "Clip to 0–255",
    "abs": "Absolute value",
    "normalize": "Stretch min..max",
    "diverging": "Diverging: − blue, + red",
}
# kernels offered, in order, when the user adds one to the stack
STACK_ORDER = (
    "Edge detection 3",
    "Sobel x",
    "Sobel y",
    "Sharpen",
    "Emboss",
    "Box blur",
    "Edge detection 2",
    "Edge detection 1",
)
CROP = 8  # side of the image crop in the step-through


@dataclass
class _Kernel:
    """One kernel of the stack as the editor holds it (texts may be invalid while typing)."""

    size: int
    texts: list[str]
    divisor: float = 1.0
    normalize: bool = False
    offset: float = 0.0
    name: str = ""

    def snapshot(self) -> tuple:
        return (self.size, list(self.texts), self.divisor, self.normalize, self.offset, self.name)

    @classmethod
    def from_spec(cls, spec: F.KernelSpec) -> _Kernel:
        return cls(
            spec.size,
            [F.format_number(v) for v in spec.kernel.ravel()],
            spec.divisor,
            spec.normalize,
            spec.offset,
            spec.name,
        )


@dataclass(frozen=True)
class _Rendered:
    """What the worker hands the GUI: the engine's result and its pictures."""

    result: F.FilterResult
    pictures: list[np.ndarray]
    mosaic: np.ndarray | None
    counts: np.ndarray
    edges: np.ndarray
    seconds: float
    token: int
    origin: object  # the tab's image this was computed from
    stats: tuple[float, float, float]  # min, max, mean of the current kernel's map
    current: int  # the kernel shown in the result view
    qimage: QImage  # its picture, made off the GUI thread (QImage is safe there)


@dataclass(frozen=True)
class _Preview:
    """A big photo's quick first picture: every ``step``-th result pixel, exact."""

    qimage: QImage
    step: int
    token: int


def _render(
    origin: np.ndarray,
    image: np.ndarray,
    settings: F.FilterSettings,
    display: str,
    current: int,
    cancel: threading.Event,
    token: int,
    preview_step: int = 1,
) -> Iterator[object]:
    """The worker's job: the pipeline, then the display mapping, histogram and mosaic.

    With ``preview_step`` > 1 a subsampled picture of the current map comes first."""
    start = time.perf_counter()
    if preview_step > 1 and settings.pool == "none":
        spec = settings.kernels[min(current, len(settings.kernels) - 1)]
        one = F.FilterSettings(
            (spec,), settings.border, settings.stride, settings.color, settings.relu
        )
        quick = F.subsampled_maps(image, one, preview_step)[0]
        if cancel.is_set():
            return
        yield _Preview(array_to_qimage(F.display(quick, display)), preview_step, token)
    result = None
    for event in F.iter_filter(image, settings, cancel=cancel):
        if isinstance(event, F.FilterResult):
            result = event
        else:
            yield event
    if result is None or cancel.is_set():
        return
    pictures = [F.display(m, display) for m in result.maps]
    mosaic = F.tile_maps(pictures) if len(pictures) > 1 else None
    shown = result.maps[min(current, len(pictures) - 1)]
    counts, edges = F.histogram(shown)
    stats = (float(shown.min()), float(shown.max()), float(shown.mean()))
    seconds = time.perf_counter() - start
    index = min(current, len(pictures) - 1)
    qimage = array_to_qimage(pictures[index])
    yield _Rendered(
        result, pictures, mosaic, counts, edges, seconds, token, origin, stats, index, qimage
    )


class _KernelEdit(QUndoCommand):
    """An edit of one kernel: before/after snapshots; typing in one cell merges."""

    def __init__(
        self,
        tab: FiltersTab,
        index: int,
        before: tuple,
        after: tuple,
        label: str,
        cell: int | None = None,
    ) -> None:
        super().__init__(label)
        self._tab, self.index, self.before, self.after, self.cell = tab, index, before, after, cell

    def id(self) -> int:
        return 1 if self.cell is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _KernelEdit) or (other.index, other.cell) != (
            self.index,
            self.cell,
        ):
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self._tab._apply_kernel(self.index, self.after)

    def undo(self) -> None:
        self._tab._apply_kernel(self.index, self.before)


def _group(title: str) -> tuple[QGroupBox, QVBoxLayout]:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(10, 8, 10, 10)
    layout.setSpacing(6)
    return box, layout


def _load(path: Path) -> tuple[np.ndarray | None, str]:
    """``(RGB image, file name)``, or ``(None, the reason)`` for a file that cannot be used."""
    try:
        return load_image(path, mode="RGB"), path.name
    except EngineError as exc:
        return None, str(exc)


class FiltersTab(QWidget):
    title = "Filters"
    result_shown = Signal()
    preview_shown = Signal()
    #: above this many pixels a subsampled preview is shown before the full result
    PREVIEW_PIXELS = 3_000_000
    # files larger than this are decoded off the GUI thread (a 12 MP photo takes 0.2-0.3 s)
    BACKGROUND_LOAD_BYTES = 2_000_000
    activation_requested = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._image: np.ndarray | None = None  # RGB uint8 as loaded
        self._gray: tuple[np.ndarray, np.ndarray] | None = None  # (image, its gray version)
        self._image_name = ""
        self._kernels = [_Kernel.from_spec(F.PRESETS["Edge detection 3"].spec())]
        self._current = 0
        self._updating = False
        self._undo = QUndoStack(self)
        self._rendered: _Rendered | None = None
        self._token = 0
        self._running: tuple[GeneratorWorker, object, threading.Event] | None = None
        self._pending = False
        self._shown_source: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None
        self._loads = OneAtATime(self, self._show_error)
        self._schedule_timer = QTimer(self, singleShot=True, interval=0)
        self._schedule_timer.timeout.connect(self._on_schedule_timer_timeout)

        self._build()
        self._load_kernel_into_editor()
        state.kernel_requested.connect(self._on_state_kernel_requested)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._on_app_about_to_quit)
        self._open_first_sample()

    # ===== building the UI ===================================================================
    def _build(self) -> None:
        controls = QWidget()
        controls.setObjectName("filterControls")
        col = QVBoxLayout(controls)
        col.setContentsMargins(0, 0, 6, 0)
        col.setSpacing(10)
        col.addWidget(self._build_kernel_group())
        col.addWidget(self._build_conv_group())
        col.addWidget(self._build_stages_group())
        tip = QLabel(
            "Tip: hover the result to see how one pixel is computed; <b>Step through</b> "
            "plays the article's Figure 5; + stacks kernels into feature maps."
        )
        tip.setWordWrap(True)
        tip.setStyleSheet("QLabel { color: #5f6368; }")
        col.addWidget(tip)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(320)
        scroll.setMaximumWidth(380)

        self.pages = QTabWidget(objectName="filterPages")
        self.pages.addTab(self._build_image_page(), "Image")
        self.pages.addTab(self._build_maps_page(), "Feature maps")
        self.animation = ConvAnimation()
        self.pages.addTab(self.animation, "Step through")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(6)
        self.banner = QLabel(objectName="filterMessage")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            "QLabel { background: #fce8e6; color: #a50e0e; border: 1px solid #f28b82;"
            " border-radius: 4px; padding: 6px 10px; }"
        )
        self.banner.hide()
        rl.addWidget(self.banner)
        rl.addWidget(self.pages, 1)
        rl.addLayout(self._build_action_row())

        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 8)
        layout.setSpacing(12)
        layout.addWidget(scroll)
        layout.addWidget(right, 1)

        self._undo_action = self._undo.createUndoAction(self, "Undo kernel edit")
        self._undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self._redo_action = self._undo.createRedoAction(self, "Redo kernel edit")
        self._redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (self._undo_action, self._redo_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        copy = QAction("Copy result", self, shortcut=QKeySequence("Ctrl+Shift+C"))
        copy.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        copy.triggered.connect(self.copy_result)
        self.addAction(copy)

    def _build_kernel_group(self) -> QGroupBox:
        box, v = _group("Kernel")
        top = QHBoxLayout()
        self.preset_box = QComboBox(objectName="presetBox")
        self.preset_box.addItem(CUSTOM)
        self.preset_box.addItems(list(F.PRESETS))
        self.preset_box.setToolTip("Presets: the article's table and a few classics")
        self.preset_box.currentIndexChanged.connect(self._on_preset_box_changed)
        self.size_box = QComboBox(objectName="kernelSizeBox")
        self.size_box.addItems([f"{n}×{n}" for n in F.KERNEL_SIZES])
        self.size_box.currentIndexChanged.connect(self._on_size_box_changed)
        top.addWidget(self.preset_box, 1)
        top.addWidget(self.size_box)
        v.addLayout(top)

        stack = QHBoxLayout()
        stack.setSpacing(4)
        self.kernel_tabs = QTabBar(objectName="kernelTabs")
        self.kernel_tabs.setExpanding(False)
        self.kernel_tabs.setDrawBase(False)
        self.kernel_tabs.addTab("1")
        self.kernel_tabs.currentChanged.connect(self._on_kernel_tabs_changed)
        self.add_kernel_button = QToolButton(objectName="addKernelButton", text="+")
        self.add_kernel_button.setToolTip("Add a kernel: several kernels make depth-N maps")
        self.add_kernel_button.clicked.connect(self.add_kernel)
        self.remove_kernel_button = QToolButton(objectName="removeKernelButton", text="−")
        self.remove_kernel_button.setToolTip("Remove this kernel")
        self.remove_kernel_button.clicked.connect(self.remove_kernel)
        stack.addWidget(QLabel("Kernels"))
        stack.addWidget(self.kernel_tabs, 1)
        stack.addWidget(self.add_kernel_button)
        stack.addWidget(self.remove_kernel_button)
        v.addLayout(stack)

        self.grid = KernelGrid()
        self.grid.texts_edited.connect(self._on_grid_texts_edited)
        self.grid.validity_changed.connect(self._on_grid_validity_changed)
        self.grid.input_refused.connect(self._on_grid_input_refused)
        self.grid.undo_requested.connect(self._undo.undo)
        self.grid.redo_requested.connect(self._undo.redo)
        v.addWidget(self.grid)
        self.hint = QLabel(objectName="kernelHint")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("QLabel { color: #c5221f; }")
        self.hint.hide()
        v.addWidget(self.hint)
        self.kernel_info = QLabel(objectName="kernelInfo")
        self.kernel_info.setWordWrap(True)
        self.kernel_info.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.kernel_info)
        self.preset_note = QLabel(objectName="presetNote")
        self.preset_note.setWordWrap(True)
        self.preset_note.setStyleSheet("QLabel { color: #5f6368; font-style: italic; }")
        v.addWidget(self.preset_note)

        row = QGridLayout()
        row.setHorizontalSpacing(8)
        self.divisor_spin = QDoubleSpinBox(objectName="divisorSpin")
        self.divisor_spin.setRange(-100000, 100000)
        self.divisor_spin.setDecimals(3)
        self.divisor_spin.setValue(1)
        self.divisor_spin.setToolTip("Every sum is divided by this (0 is not allowed)")
        self.divisor_spin.valueChanged.connect(self._on_scalar_changed)
        self.normalize_check = QCheckBox("Normalise", objectName="normalizeCheck")
        self.normalize_check.setToolTip("Divide by the kernel's sum when it is not 0")
        self.normalize_check.toggled.connect(self._on_scalar_changed)
        self.offset_spin = QDoubleSpinBox(objectName="offsetSpin")
        self.offset_spin.setRange(-1000, 1000)
        self.offset_spin.setDecimals(1)
        self.offset_spin.setToolTip("Added after dividing: 128 shows signed results as gray")
        self.offset_spin.valueChanged.connect(self._on_scalar_changed)
        row.addWidget(QLabel("Divisor"), 0, 0)
        row.addWidget(self.divisor_spin, 0, 1)
        row.addWidget(self.normalize_check, 0, 2)
        row.addWidget(QLabel("Offset"), 1, 0)
        row.addWidget(self.offset_spin, 1, 1)
        v.addLayout(row)

        files = QHBoxLayout()
        self.undo_button = QToolButton(objectName="undoButton", text="↶ Undo")
        self.undo_button.setToolTip("Undo kernel edit (Ctrl+Z)")
        self.undo_button.clicked.connect(self._undo.undo)
        self.undo_button.setEnabled(False)
        self._undo.canUndoChanged.connect(self.undo_button.setEnabled)
        self.redo_button = QToolButton(objectName="redoButton", text="↷ Redo")
        self.redo_button.setToolTip("Redo kernel edit (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(self._undo.redo)
        self.redo_button.setEnabled(False)
        self._undo.canRedoChanged.connect(self.redo_button.setEnabled)
        load = QPushButton("Load…", objectName="loadKernelButton")
        load.setToolTip("Load kernels from a JSON file")
        load.clicked.connect(self._on_load_kernels_clicked)
        save = QPushButton("Save…", objectName="saveKernelButton")
        save.setToolTip("Save the kernels as JSON")
        save.clicked.connect(self._on_save_kernels_clicked)
        files.addWidget(self.undo_button)
        files.addWidget(self.redo_button)
        files.addStretch(1)
        files.addWidget(load)
        files.addWidget(save)
        v.addLayout(files)
        return box

    def _build_conv_group(self) -> QGroupBox:
        box, v = _group("Convolution")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.border_box = QComboBox(objectName="borderBox")
        for key, label in BORDER_LABELS.items():
            self.border_box.addItem(label, key)
        self.border_box.setToolTip("What lies beyond the image's edge (np.pad modes)")
        self.border_box.currentIndexChanged.connect(self._on_settings_changed)
        self.stride_box = QSpinBox(objectName="strideBox")
        self.stride_box.setRange(1, F.MAX_STRIDE)
        self.stride_box.setToolTip("How many pixels the kernel moves per step")
        self.stride_box.valueChanged.connect(self._on_settings_changed)
        colour = QHBoxLayout()
        self.gray_radio = QRadioButton("Grayscale", objectName="grayRadio")
        self.rgb_radio = QRadioButton("RGB channels", objectName="rgbRadio")
        self.gray_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.gray_radio)
        group.addButton(self.rgb_radio)
        self.rgb_radio.toggled.connect(self._on_settings_changed)
        colour.addWidget(self.gray_radio)
        colour.addWidget(self.rgb_radio)
        colour.addStretch(1)
        form.addRow("Border", self.border_box)
        form.addRow("Stride", self.stride_box)
        form.addRow("Colour", colour)
        v.addLayout(form)
        self.formula = QLabel(objectName="sizeFormula")
        self.formula.setTextFormat(Qt.TextFormat.RichText)
        self.formula.setWordWrap(True)
        self.formula.setStyleSheet("QLabel { color: #3c4043; }")
        v.addWidget(self.formula)
        return box

    def _build_stages_group(self) -> QGroupBox:
        box, v = _group("Then, as in a CNN")
        self.relu_check = QCheckBox("ReLU: negative values become 0", objectName="reluCheck")
        self.relu_check.toggled.connect(self._on_settings_changed)
        v.addWidget(self.relu_check)
        row = QHBoxLayout()
        self.pool_box = QComboBox(objectName="poolBox")
        for label, key in (
            ("No pooling", "none"),
            ("Max pooling", "max"),
            ("Average pooling", "avg"),
            ("Sum pooling", "sum"),
        ):
            self.pool_box.addItem(label, key)
        self.pool_box.currentIndexChanged.connect(self._on_settings_changed)
        self.pool_size = QSpinBox(objectName="poolSize", prefix="size ")
        self.pool_size.setRange(1, 8)
        self.pool_size.setValue(2)
        self.pool_size.valueChanged.connect(self._on_settings_changed)
        self.pool_stride = QSpinBox(objectName="poolStride", prefix="stride ")
        self.pool_stride.setRange(1, 8)
        self.pool_stride.setValue(2)
        self.pool_stride.valueChanged.connect(self._on_settings_changed)
        row.addWidget(self.pool_box, 1)
        row.addWidget(self.pool_size)
        row.addWidget(self.pool_stride)
        v.addLayout(row)
        self.stages_label = QLabel(objectName="stageShapes")
        self.stages_label.setWordWrap(True)
        self.stages_label.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.stages_label)
        return box

    def _build_display_group(self) -> QWidget:
        box = QWidget(objectName="displayPanel")
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(4)
        title = QLabel("Show signed results as")
        title.setStyleSheet("QLabel { font-weight: 600; color: #3c4043; }")
        v.addWidget(title)
        self.display_box = QComboBox(objectName="displayBox")
        for key, label in DISPLAY_LABELS.items():
            self.display_box.addItem(label, key)
        self.display_box.currentIndexChanged.connect(self._on_settings_changed)
        v.addWidget(self.display_box)
        self.histogram = Histogram()
        v.addWidget(self.histogram)
        self.value_label = QLabel(objectName="valueRange")
        self.value_label.setStyleSheet("QLabel { color: #5f6368; }")
        v.addWidget(self.value_label)
        return box

    def _build_image_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(6, 6, 6, 6)
        v.setSpacing(6)
        self.source_view = ImageView(placeholder="Open an image (Ctrl+O) or drop one here")
        self.source_view.setObjectName("sourceView")
        self.result_view = ImageView(placeholder="The result appears here")
        self.result_view.setObjectName("resultView")
        self.source_view.link(self.result_view)
        self.source_caption = QLabel("Input", objectName="sourceCaption")
        self.result_caption = QLabel("Result", objectName="resultCaption")
        split = QSplitter(Qt.Orientation.Horizontal)
        for caption, view in (
            (self.source_caption, self.source_view),
            (self.result_caption, self.result_view),
        ):
            pane = QWidget()
            pl = QVBoxLayout(pane)
            pl.setContentsMargins(0, 0, 0, 0)
            pl.setSpacing(3)
            caption.setStyleSheet("QLabel { font-weight: 600; color: #3c4043; }")
            pl.addWidget(caption)
            pl.addWidget(view, 1)
            split.addWidget(pane)
        split.setChildrenCollapsible(False)
        v.addWidget(split, 1)
        self.hover_label = QLabel(objectName="hoverLabel")
        self.hover_label.setStyleSheet("QLabel { color: #3c4043; }")
        self.hover_label.setText(
            "Hover the images to read pixel values · wheel zooms · drag pans · double-click fits"
        )
        v.addWidget(self.hover_label)
        self.inspector = PixelInspector()
        self.inspector.setFixedHeight(150)
        self.channel_box = QComboBox(objectName="inspectorChannel")
        self.channel_box.addItems(["Red", "Green", "Blue"])
        self.channel_box.setToolTip("The channel the inspector shows (RGB mode)")
        self.channel_box.currentIndexChanged.connect(self._refresh_inspector)
        ins = QHBoxLayout()
        ins.setSpacing(10)
        self.inspector.setMinimumWidth(340)
        ins.addWidget(self.inspector, 3)
        ins.addWidget(self.channel_box, 0, Qt.AlignmentFlag.AlignTop)
        display = self._build_display_group()
        display.setMinimumWidth(200)
        display.setMaximumWidth(300)
        ins.addWidget(display, 1)
        v.addLayout(ins)
        self.source_view.pixel_hovered.connect(self._on_source_view_pixel_hovered)
        self.result_view.pixel_hovered.connect(self._on_result_view_pixel_hovered)
        self.result_view.hover_left.connect(self._on_result_view_hover_left)
        return page

    def _build_maps_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(6, 6, 6, 6)
        self.maps_caption = QLabel(objectName="mapsCaption")
        self.maps_caption.setWordWrap(True)
        v.addWidget(self.maps_caption)
        self.maps_view = ImageView(placeholder="")
        self.maps_view.setObjectName("mapsView")
        v.addWidget(self.maps_view, 1)
        return page

    def _build_action_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        fit = QPushButton("Fit", objectName="fitButton")
        fit.setToolTip("Show the whole image (double-click does it too)")
        fit.clicked.connect(self.source_view.fit)
        one = QPushButton("1:1", objectName="actualSizeButton")
        one.clicked.connect(lambda: self.source_view.set_zoom(1.0))
        self.progress = QProgressBar(objectName="filterProgress")
        self.progress.setMaximumWidth(200)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.timing = QLabel(objectName="timingLabel")
        self.timing.setStyleSheet("QLabel { color: #5f6368; }")
        copy = QPushButton("Copy", objectName="copyButton")
        copy.setToolTip("Copy the result picture to the clipboard")
        copy.clicked.connect(self.copy_result)
        save = QPushButton("Save result…", objectName="saveResultButton")
        save.setToolTip("Save the picture (PNG) or the float values (.npy)")
        save.clicked.connect(self.save_result)
        row.addWidget(fit)
        row.addWidget(one)
        row.addSpacing(10)
        row.addWidget(self.progress)
        row.addWidget(self.timing)
        row.addStretch(1)
        row.addWidget(copy)
        row.addWidget(save)
        return row

    # ===== opening images (the main window's tab protocol) =================================
    def _open_first_sample(self) -> None:
        samples = resources.sample_images()
        preferred = [p for p in samples if p.name == "camera.png"] or samples
        if preferred:
            self.open_image_file(preferred[0])

    def open_image_file(self, path: Path) -> bool:
        """Load ``path`` as the input; on a bad file say why and keep the previous image.

        A large file is decoded off the GUI thread (the window stays responsive); it is then
        accepted at once and any problem is shown when the decoding has finished."""
        path = Path(path)
        try:
            big = path.stat().st_size > self.BACKGROUND_LOAD_BYTES
        except OSError:
            big = False  # load_image says what is wrong
        if big:
            self._state.status_posted.emit(f"Opening {path.name}…")
            self._loads.submit(lambda: [_load(path)], self._on_load_finished)
            return True
        loaded = _load(path)
        self._on_load_finished(loaded)
        return isinstance(loaded[0], np.ndarray)

    def is_loading(self) -> bool:
        return self._loads.busy()

    def _on_load_finished(self, loaded: tuple[np.ndarray | None, str]) -> None:
        image, text = loaded
        if image is None:
            kept = f"; still showing {self._image_name}" if self._image is not None else ""
            self._show_error(f"Could not open {text}{kept}")
        else:
            self.set_image(image, text)

    def set_image(self, image: np.ndarray, name: str) -> None:
        """Use ``image`` (uint8 RGB) as the input."""
        self._image = image
        self._gray = None
        self._image_name = name
        self.banner.hide()
        self.source_view.fit()
        self._state.status_posted.emit(f"Opened {name} ({image.shape[1]}×{image.shape[0]})")
        self._schedule()

    def image(self) -> np.ndarray | None:
        return self._image

    def _show_error(self, text: str, kind: str = "file") -> None:
        self.banner.setProperty("kind", kind)
        self.banner.setText(text)
        self.banner.show()
        self._state.status_posted.emit(text)

    # ===== kernels: editing, presets, stack, undo ==========================================
    def kernel_specs(self) -> list[F.KernelSpec] | None:
        """The stack as engine specs, or None while some cell is not a number."""
        specs = []
        for k in self._kernels:
            try:
                matrix = np.array([F.parse_number(t) for t in k.texts]).reshape(k.size, k.size)
                specs.append(F.KernelSpec(matrix, k.divisor, k.normalize, k.offset, k.name))
            except EngineError:
                return None
        return specs

    def current_index(self) -> int:
        return self._current

    def add_kernel(self) -> None:
        if len(self._kernels) >= F.MAX_KERNELS:
            return
        used = {k.name for k in self._kernels}
        name = next((n for n in STACK_ORDER if n not in used), "Identity")
        self._kernels.append(_Kernel.from_spec(F.PRESETS[name].spec()))
        self.kernel_tabs.addTab(str(len(self._kernels)))
        self.kernel_tabs.setCurrentIndex(len(self._kernels) - 1)
        self._undo.clear()  # snapshots refer to kernels by position
        self._schedule()

    def remove_kernel(self) -> None:
        if len(self._kernels) <= 1:
            return
        del self._kernels[self._current]
        self._updating = True
        self.kernel_tabs.removeTab(self.kernel_tabs.count() - 1)
        self._updating = False
        self._current = min(self._current, len(self._kernels) - 1)
        self.kernel_tabs.setCurrentIndex(self._current)
        self._load_kernel_into_editor()
        self._undo.clear()
        self._schedule()

    def load_specs(self, specs: list[F.KernelSpec]) -> None:
        """Replace the stack (a kernel file, another tab's learned filter)."""
        self._kernels = [_Kernel.from_spec(s) for s in specs[: F.MAX_KERNELS]]
        self._updating = True
        while self.kernel_tabs.count() > len(self._kernels):
            self.kernel_tabs.removeTab(self.kernel_tabs.count() - 1)
        while self.kernel_tabs.count() < len(self._kernels):
            self.kernel_tabs.addTab(str(self.kernel_tabs.count() + 1))
        self.kernel_tabs.setCurrentIndex(0)
        self._updating = False
        self._current = 0
        self._undo.clear()
        self._load_kernel_into_editor()
        self._schedule()

    def _push_edit(self, after: _Kernel, label: str, cell: int | None = None) -> None:
        before = self._kernels[self._current].snapshot()
        self._undo.push(_KernelEdit(self, self._current, before, after.snapshot(), label, cell))

    def _apply_kernel(self, index: int, snap: tuple) -> None:
        """Undo/redo and edits land here: store the snapshot and show it."""
        size, texts, divisor, normalize, offset, name = snap
        self._kernels[index] = _Kernel(size, list(texts), divisor, normalize, offset, name)
        if index != self._current:
            self.kernel_tabs.setCurrentIndex(index)  # loads the editor
        else:
            self._load_kernel_into_editor()
        self._schedule()

    def _load_kernel_into_editor(self) -> None:
        k = self._kernels[self._current]
        self._updating = True
        try:
            self.grid.set_texts(k.size, k.texts)
            self.size_box.setCurrentIndex(F.KERNEL_SIZES.index(k.size))
            self.divisor_spin.setValue(k.divisor)
            self.normalize_check.setChecked(k.normalize)
            self.offset_spin.setValue(k.offset)
            self.preset_box.setCurrentText(k.name if k.name in F.PRESETS else CUSTOM)
            preset = F.PRESETS.get(k.name)
            self.preset_note.setText(preset.description if preset else k.name)
            self.preset_note.setVisible(bool(self.preset_note.text()))
        finally:
            self._updating = False
        self._refresh_kernel_info()

    def _on_grid_texts_edited(self, before: list, after: list) -> None:
        k = self._kernels[self._current]
        edited = _Kernel(k.size, list(after), k.divisor, k.normalize, k.offset, "")
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        cell = changed[0] if len(changed) == 1 else None
        self._push_edit(edited, "edit kernel cell", cell)

    def _on_grid_validity_changed(self, message: str) -> None:
        self.hint.setText(message + " — the result keeps the last valid kernel." if message else "")
        self.hint.setVisible(bool(message))
        if message:
            self._state.status_posted.emit(message)

    def _on_grid_input_refused(self) -> None:
        text = "Only numbers go in a kernel cell: 2, -0.5, 1e-3 or a fraction like 1/9."
        self.hint.setText(text)
        self.hint.show()
        self._state.status_posted.emit(text)

    def _on_preset_box_changed(self, index: int) -> None:
        name = self.preset_box.itemText(index)
        if self._updating or name not in F.PRESETS:
            return
        self._push_edit(_Kernel.from_spec(F.PRESETS[name].spec()), f"preset {name}")

    def _on_size_box_changed(self, index: int) -> None:
        if self._updating:
            return
        k = self._kernels[self._current]
        new = F.KERNEL_SIZES[index]
        old = np.array(k.texts, dtype=object).reshape(k.size, k.size)
        grid = np.full((new, new), "0", dtype=object)
        d = (new - k.size) // 2
        if d >= 0:
            grid[d : d + k.size, d : d + k.size] = old
        else:
            grid[:] = old[-d : -d + new, -d : -d + new]
        edited = _Kernel(new, [str(t) for t in grid.ravel()], k.divisor, k.normalize, k.offset, "")
        self._push_edit(edited, f"kernel size {new}×{new}")

    def _on_scalar_changed(self, *_args) -> None:
        if self._updating:
            return
        k = self._kernels[self._current]
        divisor = self.divisor_spin.value()
        if divisor == 0:
            self.divisor_spin.setStyleSheet("QDoubleSpinBox { border: 2px solid #d93025; }")
            self.divisor_spin.setToolTip("0 is not a divisor: a division by 0 has no value")
            return
        self.divisor_spin.setStyleSheet("")
        k.divisor = divisor
        k.normalize = self.normalize_check.isChecked()
        k.offset = self.offset_spin.value()
        self._refresh_kernel_info()
        self._schedule()

    def _on_kernel_tabs_changed(self, index: int) -> None:
        if self._updating or index < 0:
            return
        self._current = index
        self._load_kernel_into_editor()
        self._schedule()

    def _on_state_kernel_requested(self, kernel: object, description: str) -> None:
        k = np.asarray(kernel, dtype=np.float64)
        if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] not in F.KERNEL_SIZES:
            self._state.status_posted.emit(f"Cannot edit a kernel of shape {k.shape}")
            return
        self.load_specs([F.KernelSpec(k, name=description)])
        self.rgb_radio.setChecked(False)
        self.gray_radio.setChecked(True)
        self.display_box.setCurrentIndex(list(DISPLAY_LABELS).index("diverging"))
        self.pages.setCurrentIndex(0)
        self._state.status_posted.emit(f"Filters: {description}")
        self.activation_requested.emit()

    def _on_load_kernels_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Load kernels", "", "Kernels (*.json)")
        if name:
            self.load_kernel_file(Path(name))

    def load_kernel_file(self, path: Path) -> bool:
        try:
            self.load_specs(F.load_kernels(path))
        except EngineError as exc:
            self._show_error(str(exc))
            return False
        return True

    def _on_save_kernels_clicked(self) -> None:
        specs = self.kernel_specs()
        if specs is None:
            self._show_error("Fix the red kernel cell before saving.")
            return
        name, _ = QFileDialog.getSaveFileName(
            self, "Save kernels", "kernels.json", "Kernels (*.json)"
        )
        if name:
            F.save_kernels(name, specs)
            self._state.status_posted.emit(f"Saved {len(specs)} kernel(s) to {name}")

    # ===== settings and scheduling ==========================================================
    def _on_settings_changed(self, *_args) -> None:
        if not self._updating:
            self._schedule()

    def settings(self) -> F.FilterSettings | None:
        specs = self.kernel_specs()
        if specs is None:
            return None
        return F.FilterSettings(
            tuple(specs),
            border=self.border_box.currentData(),
            stride=self.stride_box.value(),
            color="rgb" if self.rgb_radio.isChecked() else "gray",
            relu=self.relu_check.isChecked(),
            pool=self.pool_box.currentData(),
            pool_size=self.pool_size.value(),
            pool_stride=self.pool_stride.value(),
        )

    def display_mode(self) -> str:
        return self.display_box.currentData()

    def _schedule(self) -> None:
        self._refresh_kernel_info()
        self._refresh_formula()
        self._schedule_timer.start()

    def is_computing(self) -> bool:
        """True while a result is being computed or waits to be."""
        return self._running is not None or self._schedule_timer.isActive() or self._pending

    def _on_schedule_timer_timeout(self) -> None:
        if self._running is not None:
            self._pending = True
            self._running[2].set()  # the latest settings win
            return
        self._pending = False
        try:
            settings = self.settings()
            if self._image is None or settings is None:
                return
            settings.check_fits(*self._image.shape[:2])
        except EngineError as exc:
            self._show_error(str(exc), "settings")
            return
        if self.banner.isVisible() and self.banner.property("kind") == "settings":
            self.banner.hide()
        self._token += 1
        cancel = threading.Event()
        # the gray version of the image is made once (by the first gray job) and reused
        gray = self._gray if self._gray is not None and self._gray[0] is self._image else None
        origin = self._image
        image, display, current, token = (
            gray[1] if gray is not None and settings.color == "gray" else self._image,
            self.display_mode(),
            self._current,
            self._token,
        )
        pixels = image.shape[0] * image.shape[1]
        step = 1
        if pixels > self.PREVIEW_PIXELS:  # about 1.5 MP in the preview, fast enough to type
            step = max(2, math.ceil(math.sqrt(pixels / 1_500_000)))
        worker = GeneratorWorker(
            lambda: _render(origin, image, settings, display, current, cancel, token, step),
            essential=lambda e: isinstance(e, (_Rendered, _Preview)),
        )
        worker.yielded.connect(self._on_worker_yielded)
        worker.errored.connect(self._on_worker_errored)
        worker.finished.connect(self._on_worker_finished)
        self.progress.setVisible(pixels > self.PREVIEW_PIXELS)
        self.progress.setValue(0)
        # kept alive by desktop.workers until it has finished, so closing the tab mid-job
        # never destroys a running thread
        thread = start_worker(worker)
        self._running = (worker, thread, cancel)

    def _on_app_about_to_quit(self) -> None:
        # the job is cancelled between bands, so this wait is short; a thread must not
        # outlive the application
        if self._running is not None:
            self._running[2].set()
            self._running[1].wait(2000)

    def _on_worker_yielded(self, event: object) -> None:
        if isinstance(event, F.FilterProgress):
            self.progress.setMaximum(event.total)
            self.progress.setValue(event.done)
        elif isinstance(event, _Rendered) and event.token == self._token:
            self._show_rendered(event)
        elif isinstance(event, _Preview) and event.token == self._token:
            self._show_preview(event)

    def _show_preview(self, preview: _Preview) -> None:
        settings = self.settings()
        if settings is None or self._image is None:
            return
        h, w = self._image.shape[:2]
        scale, offset = self._placement(settings, preview.step)
        self.result_view.set_image(preview.qimage, scale=scale, offset=offset, scene_size=(h, w))
        self.result_view._follow(self.source_view)
        self.timing.setText(f"quick preview (every {preview.step}th pixel)…")
        self.preview_shown.emit()

    def _on_worker_errored(self, message: str) -> None:
        self._show_error(f"Filtering failed: {message}")

    def _on_worker_finished(self) -> None:
        self._running = None
        self.progress.hide()
        if self._pending:
            self._pending = False
            self._schedule_timer.start()

    # ===== showing results ==================================================================
    @staticmethod
    def _placement(settings: F.FilterSettings, step: int = 1) -> tuple[float, tuple[float, float]]:
        pooled = settings.pool != "none"
        scale, off = F.placement(
            settings.kernels[0].size,
            settings.border,
            settings.stride,
            pool_size=settings.pool_size if pooled else 0,
            pool_stride=settings.pool_stride if pooled else 0,
            step=step,
        )
        return scale, (off, off)

    def _show_rendered(self, rendered: _Rendered) -> None:
        self._rendered = rendered
        if rendered.result.source.ndim == 2 and rendered.origin is self._image:
            self._gray = (self._image, rendered.result.source)
        result = rendered.result
        settings = result.settings
        src = result.source
        h, w = src.shape[:2]
        key = (id(rendered.origin), src.ndim)
        if self._shown_source != key:  # a 12 MP photo is not re-uploaded on every edit
            self.source_view.set_image(src)
            self._shown_source = key
        index = min(self._current, len(rendered.pictures) - 1)
        scale, offset = self._placement(settings)
        picture = rendered.qimage if index == rendered.current else rendered.pictures[index]
        self.result_view.set_image(picture, scale=scale, offset=offset, scene_size=(h, w))
        self.result_view._follow(self.source_view)
        colour = "grayscale" if src.ndim == 2 else "RGB"
        self.source_caption.setText(f"Input — {self._image_name} · {w}×{h} {colour}")
        mh, mw = result.maps.shape[1:3]
        self.result_caption.setText(f"Result — kernel {index + 1} · {mw}×{mh}")
        window = (0.0, 255.0) if self.display_mode() in ("clip", "abs") else None
        self.histogram.set_data(rendered.counts, rendered.edges, window)
        lo, hi, mean = rendered.stats
        self.value_label.setText(f"values {short(lo)} … {short(hi)} · mean {short(mean)}")
        shapes = " → ".join(
            f"{name} <b>{'×'.join(map(str, shape))}</b>" for name, shape in result.stages
        )
        self.stages_label.setText(shapes + " <span style='color:#5f6368'>(H×W×C)</span>")
        self.timing.setText(f"{w}×{h} computed in {rendered.seconds * 1000:.0f} ms")
        n = result.maps.shape[0]
        if rendered.mosaic is not None:
            self.maps_view.set_image(rendered.mosaic)
            self.maps_caption.setText(
                f"{n} kernels give a stack of {n} feature maps (depth {n}), "
                f"{n}×{mh}×{mw}: what one convolution layer of a CNN outputs "
                "(the article's Figure 7). Kernels in reading order."
            )
        else:
            self.maps_view.set_image(rendered.pictures[0])
            self.maps_caption.setText(
                "One kernel gives one feature map. Add kernels with + (up to 8) to see a "
                "depth-N stack, like a convolution layer's output (the article's Figure 7)."
            )
        self.pages.setTabText(1, f"Feature maps ({n})")
        self._refresh_animation_crop()
        self._refresh_inspector()
        self.result_shown.emit()

    def result_pictures(self) -> list[np.ndarray]:
        """The uint8 RGB pictures of the last result (one per kernel)."""
        return [] if self._rendered is None else list(self._rendered.pictures)

    def result(self) -> F.FilterResult | None:
        return None if self._rendered is None else self._rendered.result

    def _refresh_kernel_info(self) -> None:
        k = self._kernels[self._current]
        try:
            matrix = np.array([F.parse_number(t) for t in k.texts]).reshape(k.size, k.size)
            spec = F.KernelSpec(matrix, k.divisor, k.normalize, k.offset)
        except EngineError:
            self.kernel_info.setText("")
            return
        total = float(matrix.sum())
        div = spec.effective_divisor()
        text = f"Sum <b>{short(total)}</b>"
        if div != 1:
            text += f" ÷ {short(div)} = <b>{short(total / div)}</b>"
        factors = F.separable_factors(matrix)
        if factors is not None:
            col, row = factors
            fmt = " ".join
            text += (
                " · <span style='color:#188038'>separable</span>: "
                f"[{fmt(short(v) for v in col)}]ᵀ × [{fmt(short(v) for v in row)}]"
            )
        else:
            rank1, delta = F.split_centre(matrix)
            if rank1 is not None:
                text += (
                    f" · {short(delta)}×centre + a separable kernel "
                    "<span style='color:#188038'>(fast)</span>"
                )
            else:
                text += " · not separable"
        self.kernel_info.setText(text)

    def _refresh_formula(self) -> None:
        if self._image is None:
            self.formula.setText("")
            return
        f = self._kernels[self._current].size
        border = self.border_box.currentData()
        p = F.padding_for(border, f)
        s = self.stride_box.value()
        h, w = self._image.shape[:2]
        try:
            fw, fh = F.size_formula(w, f, s, p), F.size_formula(h, f, s, p)
        except EngineError as exc:
            self.formula.setText(f"<span style='color:#c5221f'>{exc}</span>")
            return
        self.formula.setText(f"Output size = (W − F + 2P)/S + 1<br>width&nbsp; {fw}<br>height {fh}")

    # ===== hover, inspector, animation ======================================================
    def _on_source_view_pixel_hovered(self, row: int, col: int) -> None:
        if self._rendered is None:
            return
        src = self._rendered.result.source
        value = src[row, col]
        text = " ".join(str(int(v)) for v in np.atleast_1d(value))
        self.hover_label.setText(f"Input x {col}, y {row}: {text}")

    def _on_result_view_pixel_hovered(self, row: int, col: int) -> None:
        if self._rendered is None:
            return
        result = self._rendered.result
        index = min(self._current, result.maps.shape[0] - 1)
        values = result.maps[index][row, col]
        text = " ".join(short(float(v)) for v in np.atleast_1d(values))
        self.hover_label.setText(f"Result x {col}, y {row}: {text}")
        self._hover = (row, col)
        self._refresh_inspector()

    def _on_result_view_hover_left(self) -> None:
        self.source_view.set_marker(None)

    def _refresh_inspector(self) -> None:
        rendered = self._rendered
        rgb = self.rgb_radio.isChecked()
        self.channel_box.setVisible(rgb)
        if rendered is None or self._hover is None:
            self.inspector.show_inspection(None)
            return
        settings = rendered.result.settings
        specs = settings.kernels
        spec = specs[min(self._current, len(specs) - 1)]
        row, col = self._hover
        if settings.pool != "none":  # the pooled pixel's first conv pixel
            row, col = row * settings.pool_stride, col * settings.pool_stride
        src = rendered.result.source
        channel = self.channel_box.currentIndex() if src.ndim == 3 else 0
        try:
            ins = F.inspect_pixel(
                src,
                spec,
                border=settings.border,
                stride=settings.stride,
                row=row,
                col=col,
                channel=channel,
            )
        except EngineError:
            self.inspector.show_inspection(None)
            return
        r0, c0 = ins.source_rc
        where = f"conv output x {col}, y {row}"
        if settings.pool != "none":
            where += " (the first pixel of the pooling window)"
        if src.ndim == 3:
            where += f" · {self.channel_box.currentText().lower()} channel"
        self.inspector.show_inspection(ins, where)
        self.source_view.set_marker((r0, c0, spec.size, spec.size))

    def _refresh_animation_crop(self) -> None:
        rendered = self._rendered
        if rendered is None:
            return
        settings = rendered.result.settings
        src = rendered.result.source
        h, w = src.shape[:2]
        if self._hover is not None and settings.pool == "none":
            cy, cx = self._hover[0] * settings.stride, self._hover[1] * settings.stride
        else:
            cy, cx = h // 2, w // 2
        y0 = int(np.clip(cy - CROP // 2, 0, max(h - CROP, 0)))
        x0 = int(np.clip(cx - CROP // 2, 0, max(w - CROP, 0)))
        crop = F.to_gray(src[y0 : y0 + CROP, x0 : x0 + CROP])
        spec = settings.kernels[min(self._current, len(settings.kernels) - 1)]
        try:
            steps = F.conv_steps(
                crop, spec.weights(), stride=settings.stride, border=settings.border
            )
        except EngineError:
            steps = None
        self.animation.set_crop(steps)

    # ===== saving and copying ===============================================================
    def save_result(self) -> None:
        if self._rendered is None:
            self._state.status_posted.emit("Nothing to save yet")
            return
        stem = Path(self._image_name).stem or "result"
        name, _ = QFileDialog.getSaveFileName(
            self,
            "Save result",
            f"{stem}-filtered.png",
            "PNG picture (*.png);;Float values, NumPy (*.npy)",
        )
        if name:
            self.save_result_to(Path(name))

    def save_result_to(self, path: Path) -> bool:
        """Write the picture (.png etc.) or the float values (.npy) of the last result."""
        rendered = self._rendered
        if rendered is None:
            return False
        try:
            if path.suffix.lower() == ".npy":
                F.save_raw(rendered.result, path)
            else:
                save_image(
                    rendered.mosaic if rendered.mosaic is not None else rendered.pictures[0], path
                )
        except (EngineError, OSError) as exc:
            self._show_error(f"Could not save {path.name}: {exc}")
            return False
        self._state.status_posted.emit(f"Saved {path}")
        return True

    def copy_result(self) -> None:
        if self._rendered is None:
            return
        QGuiApplication.clipboard().setImage(self.result_view.shown_qimage())
        self._state.status_posted.emit("Result copied to the clipboard")

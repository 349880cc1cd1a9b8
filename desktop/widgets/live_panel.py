"""The live page of the Train tab: the pinned sample, its feature maps in every layer
(:class:`desktop.widgets.activation_view.ActivationView`) and the conv filters
(:class:`desktop.widgets.filter_view.FilterView`) of the model being trained.

A refresh's engine work (the forward pass, the rows' arrays, the filters) is one plain
function, :func:`live_views`. A light network's runs on the GUI thread; a heavy one's
(:func:`engine.modelsize.heavy_forward`) in a worker (:class:`desktop.workers.OneAtATime`, the
newest refresh winning) on the worker's own copy of the model set to the weights of the moment
of the request, since the training keeps changing the GUI's copy meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from desktop.qt_image import array_to_pixmap
from desktop.widgets import scrolled
from desktop.widgets.activation_view import ActivationView
from desktop.widgets.filter_view import FilterView
from desktop.widgets.focus_ring import focus_ring
from desktop.widgets.tone import set_tone
from desktop.workers import ModelCopy, OneAtATime
from engine.connections import LazyConnections
from engine.errors import EngineError
from engine.graph_layout import describe_model
from engine.modelsize import heavy_forward
from engine.preview import display_image
from engine.visualize import LayerView, display_layers

WORKING = "Working out this image's maps… (a big network: they follow in a moment)"


@dataclass(frozen=True, eq=False)  # holds arrays
class LiveViews:
    """What one refresh shows: the filters of the first two convolutions (the first selected),
    the pinned sample's rows (None: no sample) or why the sample does not fit, and the seconds
    it took to work out."""

    filters: list[tuple[str, np.ndarray]]
    layers: list[LayerView] | None
    problem: str
    seconds: float


def live_views(model, sample: np.ndarray | None) -> LiveViews:
    """The live page's data for ``model`` and the pinned ``sample`` (no Qt: runs anywhere)."""
    start = time.perf_counter()
    facts = describe_model(model)
    convs = [f.name for f in facts if f.kind == "conv2d" and f.kernel > 1][:2]
    filters = [(n, model.conv_filters(n)) for n in convs]
    layers, problem = None, ""
    if sample is None:  # a model loaded before any dataset: say what to do, not "load a model"
        problem = (
            "No image pinned yet: load a dataset (its first training image is pinned) or pin "
            "the Classify tab's image to see what each layer makes of it."
        )
    else:
        try:
            layers = display_layers(model.activations(sample[None]), facts)
        except EngineError as exc:  # a colour model and a grey sample, or other sizes
            shape = "×".join(str(v) for v in model.input_spec.shape)
            problem = (
                f"The pinned image does not fit this model, which takes {shape} "
                f"({exc}). Pin an image of a dataset that fits it."
            )
    return LiveViews(filters, layers, problem, time.perf_counter() - start)


class LivePanel(QWidget):
    """The pinned sample, its activations and the conv filters of a GUI-thread model.

    ``set_model(model)`` / ``refresh()`` recompute from the model (a copy fed with weight
    snapshots, never the one being trained). Signals: ``refreshed(seconds)`` once a refresh
    is shown (the seconds it took, off the GUI thread included); ``kernel_clicked(kernel,
    layer, index)`` for a click on a first-layer kernel (float64 (KH, KW));
    ``sample_pinned(image, label)`` when an image is pinned (label None when unknown);
    ``weight_picked(key, index)`` for a weight clicked while picking (``set_weight_picking``).
    """

    kernel_clicked = Signal(object, str, int)
    sample_pinned = Signal(object, object)
    weight_picked = Signal(str, tuple)
    refreshed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = None
        self._heavy = False  # the model's refreshes run off the GUI thread
        self._request = 0  # the newest refresh; older results are dropped
        self._new = False  # another sample or model than the maps shown belong to
        self._copy = ModelCopy()  # the worker's own
        self.sample: np.ndarray | None = None
        self._classify_image: np.ndarray | None = None
        self.activation_view = ActivationView()
        self.filter_view = FilterView()
        self.activation_view.hovered.connect(self._on_view_hovered)
        self.filter_view.hovered.connect(self._on_view_hovered)
        self.filter_view.kernel_clicked.connect(self._on_filter_view_kernel_clicked)
        self.filter_view.weight_clicked.connect(self._on_filter_view_weight_clicked)
        self.sample_thumb = QLabel(objectName="pinnedSample")
        self.sample_thumb.setFixedSize(32, 32)
        self.sample_thumb.setScaledContents(True)
        self.sample_caption = QLabel("Pinned sample: click an image of the dataset preview")
        self.sample_caption.setTextFormat(Qt.TextFormat.PlainText)  # class names, no markup
        self.sample_caption.setTextFormat(Qt.TextFormat.PlainText)  # a class name, as written
        self.pin_classify_button = QPushButton(
            "Pin the Classify tab's image", objectName="pinClassifyButton"
        )
        self.pin_classify_button.setEnabled(False)
        self.pin_classify_button.clicked.connect(self._on_pin_classify_clicked)
        self.working_label = QLabel(WORKING, objectName="liveWorking", wordWrap=True)
        set_tone(self.working_label, "color: #b35900;")
        self.working_label.hide()
        label = self.working_label

        def failed(message: str) -> None:  # not a method: see below
            label.setText(f"Could not work out the maps: {message}")
            label.show()

        # a child holding a method of the panel would keep a panel without parent alive in a
        # cycle, which the garbage collector takes apart in an order that crashes PySide
        self._jobs = OneAtATime(self, failed)
        head = QHBoxLayout()
        head.addWidget(self.sample_thumb)
        head.addWidget(self.sample_caption, 1)
        head.addWidget(self.working_label, 1)
        head.addWidget(self.pin_classify_button)
        inner = QSplitter(Qt.Orientation.Horizontal)
        inner.addWidget(focus_ring(scrolled(self.activation_view)))  # keys scroll them
        inner.addWidget(focus_ring(scrolled(self.filter_view)))
        inner.setStretchFactor(0, 3)
        inner.setStretchFactor(1, 2)
        inner.setSizes([560, 360])
        self.hover_label = QLabel(" ", objectName="hoverInfo")
        set_tone(self.hover_label, "color: #444;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(head)
        layout.addWidget(inner, 1)
        layout.addWidget(self.hover_label)

    def set_model(self, model) -> None:
        self.model = model
        self._heavy = model is not None and heavy_forward(model.architecture, len(model.classes))
        self._new = True
        self.refresh()

    def refresh(self) -> None:
        """Activations of the pinned sample and the first two conv layers' filters (a heavy
        network's worked out off the GUI thread; meanwhile, the maps of another sample or model
        than those shown are announced as on their way)."""
        self._request += 1
        model, request = self.model, self._request
        if model is None:
            return
        if not self._heavy:
            self._show(request, live_views(model, self.sample))
            return
        self.working_label.setText(WORKING)
        self.working_label.setVisible(self._new)
        sample, state = self.sample, {k: a.copy() for k, a in model.state_dict().items()}
        own = self._copy
        self._jobs.submit(
            lambda: [(request, live_views(own.of(model, state), sample))], self._on_job_yielded
        )

    def busy(self) -> bool:
        """Whether a heavy network's refresh runs or waits."""
        return self._jobs.busy()

    def _on_job_yielded(self, event: tuple[int, LiveViews]) -> None:
        self._show(*event)

    def _show(self, request: int, views: LiveViews) -> None:
        if request != self._request or self.model is None:
            return  # stale: a newer refresh (weights, sample or model) was asked for
        start = time.perf_counter()
        self._new = False
        self.working_label.hide()
        self.filter_view.set_filters(views.filters, [n for n, _ in views.filters][:1])
        if views.problem:
            self.activation_view.clear(views.problem)
        elif views.layers is not None:
            self.activation_view.set_links(LazyConnections(self.model))  # worked out on hover
            self.activation_view.set_layers(views.layers, list(self.model.classes))
        self.refreshed.emit(views.seconds + time.perf_counter() - start)

    def pin(self, image: np.ndarray, caption: str, label: int | None = None) -> None:
        """Show ``image`` (uint8 (H, W) grey or (C, H, W), as in the dataset) going through
        the network; ``label``: its class, when known."""
        self.sample = image
        self.sample_pinned.emit(image, label)
        self.sample_thumb.setPixmap(array_to_pixmap(display_image(image)))
        self.sample_caption.setText(f"Pinned sample: {caption}")
        self._new = True
        self.refresh()

    def offer_classify_image(self, image: np.ndarray) -> None:
        self._classify_image = np.asarray(image, dtype=np.uint8)
        self.pin_classify_button.setEnabled(True)

    def _on_pin_classify_clicked(self) -> None:
        if self._classify_image is not None:
            self.pin(self._classify_image, "the Classify tab's image")

    def _on_view_hovered(self, text: str) -> None:
        self.hover_label.setText(text or " ")

    def set_weight_picking(self, on: bool) -> None:
        self.filter_view.set_picking(on)

    def show_picked_weight(self, key: str, index: tuple[int, ...]) -> None:
        """Outline weight ``key[index]`` in the filters view when it is shown there."""
        layer, _, name = key.rpartition(".")
        shown = name == "weight" and len(index) == 4
        self.filter_view.set_picked(layer, tuple(index) if shown else None)

    def _on_filter_view_weight_clicked(self, layer: str, index: tuple) -> None:
        self.weight_picked.emit(f"{layer}.weight", tuple(index))

    def _on_filter_view_kernel_clicked(self, layer: str, index: int, channel: int) -> None:
        kernel = self.model.conv_filters(layer)[index, channel].astype(np.float64)
        self.kernel_clicked.emit(kernel, layer, index)

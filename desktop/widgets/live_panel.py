"""The live page of the Train tab: the pinned sample, its feature maps in every layer
(:class:`desktop.widgets.activation_view.ActivationView`) and the conv filters
(:class:`desktop.widgets.filter_view.FilterView`) of the model being trained."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from desktop.qt_image import array_to_pixmap
from desktop.widgets import scrolled
from desktop.widgets.activation_view import ActivationView
from desktop.widgets.filter_view import FilterView
from engine.connections import LazyConnections
from engine.errors import EngineError
from engine.graph_layout import describe_model
from engine.preview import display_image
from engine.visualize import display_layers


class LivePanel(QWidget):
    """The pinned sample, its activations and the conv filters of a GUI-thread model.

    ``set_model(model)`` / ``refresh()`` recompute from the model (a copy fed with weight
    snapshots, never the one being trained). Signal ``kernel_clicked(kernel, layer, index)``
    for a click on a first-layer kernel (float64 (KH, KW)); ``sample_pinned(image, label)``
    when an image is pinned (label None when unknown); ``weight_picked(key, index)`` for a
    weight clicked while picking (``set_weight_picking``).
    """

    kernel_clicked = Signal(object, str, int)
    sample_pinned = Signal(object, object)
    weight_picked = Signal(str, tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = None
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
        self.pin_classify_button = QPushButton(
            "Pin the Classify tab's image", objectName="pinClassifyButton"
        )
        self.pin_classify_button.setEnabled(False)
        self.pin_classify_button.clicked.connect(self._on_pin_classify_clicked)
        head = QHBoxLayout()
        head.addWidget(self.sample_thumb)
        head.addWidget(self.sample_caption, 1)
        head.addWidget(self.pin_classify_button)
        inner = QSplitter(Qt.Orientation.Horizontal)
        inner.addWidget(scrolled(self.activation_view))
        inner.addWidget(scrolled(self.filter_view))
        inner.setStretchFactor(0, 3)
        inner.setStretchFactor(1, 2)
        inner.setSizes([560, 360])
        self.hover_label = QLabel(" ", objectName="hoverInfo")
        self.hover_label.setStyleSheet("color: #444;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(head)
        layout.addWidget(inner, 1)
        layout.addWidget(self.hover_label)

    def set_model(self, model) -> None:
        self.model = model
        self.refresh()

    def refresh(self) -> None:
        """Activations of the pinned sample and the first two conv layers' filters."""
        model = self.model
        if model is None:
            return
        facts = describe_model(model)
        convs = [f.name for f in facts if f.kind == "conv2d" and f.kernel > 1][:2]
        self.filter_view.set_filters([(n, model.conv_filters(n)) for n in convs], convs[:1])
        if self.sample is not None:
            try:
                activations = model.activations(self.sample[None])
            except EngineError as exc:  # a colour model and a grey sample, or other sizes
                shape = "×".join(str(v) for v in model.input_spec.shape)
                self.activation_view.clear(
                    f"The pinned image does not fit this model, which takes {shape} "
                    f"({exc}). Pin an image of a dataset that fits it."
                )
                return
            layers = display_layers(activations, facts)
            self.activation_view.set_links(LazyConnections(model))  # worked out on hover
            self.activation_view.set_layers(layers, list(model.classes))

    def pin(self, image: np.ndarray, caption: str, label: int | None = None) -> None:
        """Show ``image`` (uint8 (H, W) grey or (C, H, W), as in the dataset) going through
        the network; ``label``: its class, when known."""
        self.sample = image
        self.sample_pinned.emit(image, label)
        self.sample_thumb.setPixmap(array_to_pixmap(display_image(image)))
        self.sample_caption.setText(f"Pinned sample: {caption}")
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

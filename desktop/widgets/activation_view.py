"""The live page of the Train tab: the pinned sample, its feature maps in every layer and the
conv filters (:class:`LivePanel`), and the feature-map view itself (:class:`ActivationView`:
one row per layer, maps as tiles, FC layers as bars).

Fed with :class:`engine.visualize.LayerView` rows (already scaled to uint8 by the engine); this
widget only lays them out and paints them. Hovering a map or a bar group reports its layer, index
and value range through ``hovered`` (the tab shows it under the view).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from desktop.qt_image import array_to_pixmap, array_to_qimage
from desktop.widgets import scrolled
from desktop.widgets.filter_view import FilterView
from engine.errors import EngineError
from engine.preview import display_image
from engine.visualize import LayerView, display_layers

LABEL_W = 112
GAP = 4
ROW_GAP = 10
BAR_H = 32
MIN_ROW = 34  # the label needs two lines
MARGIN = 8


@dataclass
class _Hit:
    rect: QRectF
    text: str


class ActivationView(QWidget):
    """Paints :class:`LayerView` rows. Signal ``hovered(text)`` ("" when leaving a map)."""

    hovered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="activationView")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._layers: list[LayerView] = []
        self._images: list[list[QImage]] = []
        self._classes: list[str] = []
        self._hits: list[_Hit] = []
        self._height = 120
        self._hover_text = ""
        self._caption = "Train or load a model to see what each layer makes of the pinned image."

    # ----- data -------------------------------------------------------------------------
    def set_layers(self, layers: list[LayerView], classes: list[str]) -> None:
        self._layers = layers
        self._classes = classes
        self._images = [
            [array_to_qimage(m) for m in layer.images] if layer.images is not None else []
            for layer in layers
        ]
        self._relayout()
        self.update()

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self._layers]

    def clear(self, caption: str) -> None:
        self._caption = caption
        self.set_layers([], [])

    # ----- layout -----------------------------------------------------------------------
    def _tile_size(self, layer: LayerView, avail: int) -> tuple[int, int]:
        """(tile px, tiles per line) for a maps row."""
        count, h = layer.images.shape[0], layer.images.shape[1]
        biggest = min(48, max(24, 3 * h))
        fit = (avail - GAP * (count - 1)) // max(1, count)
        tile = max(14, min(biggest, fit))
        per_line = max(1, (avail + GAP) // (tile + GAP))
        return tile, per_line

    def _relayout(self) -> None:
        self._hits = []
        avail = max(120, self.width() - LABEL_W - 2 * MARGIN)
        y = MARGIN
        for layer in self._layers:
            if layer.kind == "maps":
                tile, per_line = self._tile_size(layer, avail)
                count = layer.images.shape[0]
                for i in range(count):
                    row, col = divmod(i, per_line)
                    rect = QRectF(
                        MARGIN + LABEL_W + col * (tile + GAP), y + row * (tile + GAP), tile, tile
                    )
                    text = (
                        f"{layer.label} · map {i + 1} of {count} · "
                        f"values {layer.low[i] + 0.0:.3g} … {layer.high[i] + 0.0:.3g}"
                    )
                    self._hits.append(_Hit(rect, text))
                lines = -(-count // per_line)
                y += max(MIN_ROW, lines * (tile + GAP) - GAP) + ROW_GAP
            else:
                height = max(MIN_ROW, BAR_H) + (14 if layer.name == "softmax" else 0)
                rect = QRectF(MARGIN + LABEL_W, y, avail, BAR_H)
                n = layer.values.size
                what = "class probabilities" if layer.name == "softmax" else f"{n} units"
                text = f"{layer.label} · {what} · values {layer.low[0]:.3g} … {layer.high[0]:.3g}"
                self._hits.append(_Hit(rect, text))
                y += height + ROW_GAP
        height = max(120, y + MARGIN)
        if height != self._height:  # a relayout of the page repaints every widget on it
            self._height = height
            self.updateGeometry()

    def sizeHint(self) -> QSize:
        return QSize(600, self._height)

    def minimumSizeHint(self) -> QSize:
        return QSize(300, self._height)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, _width: int) -> int:
        return self._height

    def resizeEvent(self, event) -> None:
        self._relayout()
        super().resizeEvent(event)

    # ----- hover ------------------------------------------------------------------------
    def text_at(self, pos: QPointF) -> str:
        for hit in self._hits:
            if hit.rect.contains(pos):
                return hit.text
        return ""

    def hit_rects(self) -> list[QRectF]:
        return [h.rect for h in self._hits]

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        text = self.text_at(event.position())
        if text != self._hover_text:
            self._hover_text = text
            self.hovered.emit(text)
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
            else:
                QToolTip.hideText()

    def leaveEvent(self, event) -> None:
        if self._hover_text:
            self._hover_text = ""
            self.hovered.emit("")
        super().leaveEvent(event)

    # ----- painting ---------------------------------------------------------------------
    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#fafafa"))
        if not self._layers:
            painter.setPen(QColor("#777"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._caption)
            return
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1))
        hits = iter(self._hits)
        for layer, images in zip(self._layers, self._images, strict=True):
            if layer.kind == "maps":
                rects = [next(hits).rect for _ in images]
                self._draw_label(painter, layer, rects[0].top(), small)
                painter.setPen(QPen(QColor("#bbb"), 1))
                for rect, image in zip(rects, images, strict=True):
                    painter.drawImage(rect, image)
                    painter.drawRect(rect.adjusted(-0.5, -0.5, 0.5, 0.5))
            else:
                rect = next(hits).rect
                self._draw_label(painter, layer, rect.top(), small)
                self._draw_bars(painter, layer, rect, small)
        painter.end()

    def _draw_label(self, painter: QPainter, layer: LayerView, top: float, font: QFont) -> None:
        painter.setFont(self.font())
        painter.setPen(QColor("#222"))
        painter.drawText(
            QRectF(MARGIN, top, LABEL_W - 8, 18), Qt.AlignmentFlag.AlignLeft, layer.label
        )
        painter.setFont(font)
        painter.setPen(QColor("#777"))
        shape = (
            "×".join(str(s) for s in layer.images.shape)
            if layer.images is not None
            else str(layer.values.size)
        )
        painter.drawText(
            QRectF(MARGIN, top + 17, LABEL_W - 8, 16), Qt.AlignmentFlag.AlignLeft, shape
        )

    def _draw_bars(self, painter: QPainter, layer: LayerView, rect: QRectF, font: QFont) -> None:
        values = layer.values
        n = values.size
        painter.fillRect(rect, QColor("#ffffff"))
        painter.setPen(QPen(QColor("#ddd"), 1))
        painter.drawRect(rect)
        if n == 0:
            return
        is_softmax = layer.name == "softmax"
        scale = float(np.abs(values).max()) or 1.0
        lo = min(0.0, float(values.min()))
        base = rect.bottom() if lo >= 0 else rect.top() + rect.height() / 2
        half = rect.height() - 2 if lo >= 0 else rect.height() / 2 - 1
        if is_softmax:
            scale = 1.0
        slot = rect.width() / n
        width = max(1.0, slot * (0.7 if n <= 20 else 0.9))
        best = int(np.argmax(values))
        for i, v in enumerate(values):
            height = float(v) / scale * half
            color = QColor(
                "#d62728" if (is_softmax and i == best) else ("#1f77b4" if v >= 0 else "#ff7f0e")
            )
            x = rect.left() + i * slot + (slot - width) / 2
            painter.fillRect(QRectF(x, base - max(height, 0), width, abs(height)), color)
        if is_softmax and self._classes:
            painter.setFont(font)
            painter.setPen(QColor("#333"))
            for i in range(min(n, len(self._classes))):
                label = self._classes[i]
                if i == best:
                    label = f"{label} {values[i] * 100:.0f}%"
                painter.drawText(
                    QRectF(rect.left() + i * slot, rect.bottom() + 1, slot, 14),
                    Qt.AlignmentFlag.AlignHCenter,
                    label,
                )


class LivePanel(QWidget):
    """The pinned sample, its activations and the conv filters of a GUI-thread model.

    ``set_model(model)`` / ``refresh()`` recompute from the model (a copy fed with weight
    snapshots, never the one being trained). Signal ``kernel_clicked(kernel, layer, index)``
    for a click on a first-layer kernel (float64 (KH, KW)).
    """

    kernel_clicked = Signal(object, str, int)

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
        summary = model.summary()
        convs = [i.name for i in summary if i.kind == "conv2d"][:2]
        self.filter_view.set_filters([(n, model.conv_filters(n)) for n in convs], convs[:1])
        if self.sample is not None:
            kinds = {i.name: i.kind for i in summary}
            try:
                activations = model.activations(self.sample[None])
            except EngineError as exc:  # a colour model and a grey sample, or other sizes
                shape = "×".join(str(v) for v in model.input_spec.shape)
                self.activation_view.clear(
                    f"The pinned image does not fit this model, which takes {shape} "
                    f"({exc}). Pin an image of a dataset that fits it."
                )
                return
            layers = display_layers(activations, kinds)
            self.activation_view.set_layers(layers, list(model.classes))

    def pin(self, image: np.ndarray, caption: str) -> None:
        """Show ``image`` (uint8 (H, W) grey or (C, H, W), as in the dataset) going through
        the network."""
        self.sample = image
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

    def _on_filter_view_kernel_clicked(self, layer: str, index: int, channel: int) -> None:
        kernel = self.model.conv_filters(layer)[index, channel].astype(np.float64)
        self.kernel_clicked.emit(kernel, layer, index)

"""A zoomable, pannable image view that reports the pixel under the mouse.

Reusable by any tab. ``ImageView.set_image(array)`` shows a uint8 ``(H, W)``, ``(H, W, 3)`` or
``(H, W, 4)`` array. An image may be placed in *scene* coordinates with a scale and an offset
(``set_image(result, scale=2, offset=(1, 1))``), so a smaller result (stride, pooling, valid
border) lines up with its source in another view; :meth:`link` then keeps two views on the same
zoom and scroll position.

Zoomed in far enough (cells of ``engine.filters.MIN_LABEL_CELL`` screen pixels, more for
colour), each pixel's value is written in its cell, one line per channel for colour (Figure 4);
``set_image(..., values=raw)`` writes other numbers than the picture's (e.g. float results).

Mouse: wheel zooms around the pointer, drag pans, double-click fits the image. Zoomed in, pixels
are drawn as crisp squares (nearest neighbour); zoomed out, smoothly.

Signals: ``pixel_hovered(row, col)`` (image pixel under the mouse), ``hover_left()``,
``view_changed()`` (zoom or scroll changed by the user).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from desktop.qt_image import array_to_qimage, qimage_to_array
from desktop.widgets.focus_ring import focus_ring
from engine.filters.figures import MIN_LABEL_CELL, cell_labels

MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


class ImageView(QGraphicsView):
    pixel_hovered = Signal(int, int)
    hover_left = Signal()
    view_changed = Signal()

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "") -> None:
        super().__init__(parent)
        focus_ring(self)  # arrow keys pan it
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self._marker = QGraphicsRectItem()
        pen = QPen(QColor(255, 196, 0), 0)  # cosmetic: one screen pixel wide at any zoom
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self._marker.setPen(pen)
        self._marker.setBrush(QBrush(QColor(255, 196, 0, 40)))
        self._marker.setZValue(10)
        self._marker.hide()
        self._scene.addItem(self._marker)
        self._image_size = (0, 0)  # (h, w) of the array shown
        self._fit = True
        self._linked: list[ImageView] = []
        self._syncing = False
        self._placeholder = placeholder
        self._shade: np.ndarray | None = None  # the picture's array (chooses the text colour)
        self._values: np.ndarray | None = None  # the numbers written in cells when zoomed in
        self._labelled = 0
        self.setMouseTracking(True)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(38, 40, 44))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setMinimumSize(120, 120)
        self.horizontalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    # ----- content ------------------------------------------------------------------------
    def set_image(
        self,
        image: np.ndarray | QImage,
        *,
        scale: float = 1.0,
        offset: tuple[float, float] = (0.0, 0.0),
        scene_size: tuple[int, int] | None = None,
        values: np.ndarray | None = None,
    ) -> None:
        """Show ``image`` (uint8 array or QImage) with pixel (r, c) at scene point
        ``(offset + (c, r) * scale)``; ``scene_size`` (h, w) sets the scrollable area
        (default: the image's own size times scale); ``values`` (H, W[, C]) are the numbers
        written in the cells when zoomed in (default: the array's own values)."""
        qimage = image if isinstance(image, QImage) else array_to_qimage(image)
        self._shade = None if isinstance(image, QImage) else np.asarray(image)
        self._values = values if values is not None else self._shade
        self._item.setPixmap(QPixmap.fromImage(qimage))
        self._image_size = (qimage.height(), qimage.width())
        self._item.setTransform(QTransform().scale(scale, scale))
        self._item.setPos(QPointF(offset[1], offset[0]))
        h, w = scene_size or (qimage.height() * scale, qimage.width() * scale)
        self._scene.setSceneRect(QRectF(0, 0, w, h))
        if self._fit:
            self.fit()
        self._update_smoothing()
        self.viewport().update()

    def clear(self) -> None:
        self._item.setPixmap(QPixmap())
        self._image_size = (0, 0)
        self._shade = self._values = None
        self._marker.hide()

    def forget_values(self) -> None:
        """Keep showing the picture but let go of the numbers written in its cells."""
        self._shade = self._values = None

    def has_image(self) -> bool:
        return self._image_size != (0, 0)

    def image_size(self) -> tuple[int, int]:
        """``(h, w)`` of the image shown (before its scene scale)."""
        return self._image_size

    def shown_image(self) -> np.ndarray:
        """An RGBA ``(H, W, 4)`` copy of exactly the pixels on screen (for tests and copying)."""
        return qimage_to_array(self._item.pixmap().toImage())

    def shown_qimage(self) -> QImage:
        return self._item.pixmap().toImage()

    def set_marker(self, rect: tuple[float, float, float, float] | None) -> None:
        """Outline ``(row, col, height, width)`` in scene coordinates (None hides it)."""
        if rect is None:
            self._marker.hide()
            return
        r, c, h, w = rect
        self._marker.setRect(QRectF(c, r, w, h))
        self._marker.show()

    # ----- zoom and pan -------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """Show the whole image and follow the window size until the user zooms."""
        self._fit = True
        rect = self._scene.sceneRect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._update_smoothing()
        self._broadcast()

    def set_zoom(self, factor: float) -> None:
        """Zoom to ``factor`` screen pixels per scene pixel, around the view's centre."""
        factor = min(max(factor, MIN_ZOOM), MAX_ZOOM)
        self._fit = False
        self.setTransform(QTransform().scale(factor, factor))
        self._update_smoothing()
        self._broadcast()

    def zoom_to(self, factor: float, centre: tuple[int, int]) -> None:
        """Zoom to ``factor`` with scene pixel (row, col) in the middle of the view."""
        self.set_zoom(factor)
        row, col = centre
        self.centerOn(QPointF(col + 0.5, row + 0.5))
        self._broadcast()

    def link(self, other: ImageView) -> None:
        """Keep this view and ``other`` on the same zoom and scroll position (both ways)."""
        if other not in self._linked:
            self._linked.append(other)
        if self not in other._linked:
            other._linked.append(self)

    def _broadcast(self) -> None:
        self.view_changed.emit()
        if self._syncing:
            return
        for other in self._linked:
            other.follow(self)

    def follow(self, leader: ImageView) -> None:
        """Take ``leader``'s zoom and scroll position (linked views do this by themselves)."""
        self._syncing = True
        try:
            self._fit = leader._fit
            self.setTransform(leader.transform())
            self.horizontalScrollBar().setValue(leader.horizontalScrollBar().value())
            self.verticalScrollBar().setValue(leader.verticalScrollBar().value())
            self._update_smoothing()
        finally:
            self._syncing = False

    def _on_scrolled(self, _value: int) -> None:
        if not self._syncing:
            self._broadcast()

    def _update_smoothing(self) -> None:
        scale = self.zoom() * self._item.transform().m11()
        mode = (
            Qt.TransformationMode.FastTransformation
            if scale >= 2.0
            else Qt.TransformationMode.SmoothTransformation
        )
        self._item.setTransformationMode(mode)

    # ----- events -------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps or not self.has_image():
            return
        factor = 1.25**steps
        new = min(max(self.zoom() * factor, MIN_ZOOM), MAX_ZOOM)
        self._fit = False
        self.scale(new / self.zoom(), new / self.zoom())
        self._update_smoothing()
        self._broadcast()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.fit()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        if not self.has_image():
            return
        pixel = self.hover_pixel_at(event.position())
        if pixel is not None:
            self.pixel_hovered.emit(*pixel)
        else:
            self.hover_left.emit()

    def leaveEvent(self, event) -> None:
        self.hover_left.emit()
        super().leaveEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def labelled_cells(self) -> int:
        """How many cells had their value written in the last paint (0 when zoomed out)."""
        return self._labelled

    def _paint_values(self, painter: QPainter) -> None:
        values = self._values
        self._labelled = 0
        if values is None or values.shape[:2] != self._image_size:
            return
        cell = self.zoom() * self._item.transform().m11()
        if cell < MIN_LABEL_CELL:
            return
        if self._shade is None:  # a QImage was shown: read its pixels once, when needed
            self._shade = qimage_to_array(self.shown_qimage())[:, :, :3]
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        local = self._item.mapFromScene(visible).boundingRect()
        rows = (int(np.floor(local.top())), int(np.ceil(local.bottom())))
        cols = (int(np.floor(local.left())), int(np.ceil(local.right())))
        labels = cell_labels(values, rows, cols, cell, shade=self._shade)
        if not labels:
            return
        painter.save()
        painter.resetTransform()
        lines = labels[0].text.count("\n") + 1
        font = painter.font()
        font.setPixelSize(max(7, min(16, int(cell / (1.3 * lines + 1.6)))))
        painter.setFont(font)
        for label in labels:
            corner = self._item.mapToScene(QPointF(label.col, label.row))
            far = self._item.mapToScene(QPointF(label.col + 1, label.row + 1))
            box = QRectF(self.mapFromScene(corner), self.mapFromScene(far))
            painter.setPen(QColor(20, 20, 20) if label.dark else QColor(245, 245, 245))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label.text)
        painter.restore()
        self._labelled = len(labels)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self.has_image():
            self._paint_values(painter)
            return
        if not self._placeholder:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(170, 170, 170))
        painter.drawText(
            self.viewport().rect(),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            self._placeholder,
        )
        painter.restore()

    def hover_pixel_at(self, pos: QPointF) -> tuple[int, int] | None:
        """The image pixel at a viewport position (None outside the image)."""
        local = self._item.mapFromScene(self.mapToScene(pos.toPoint()))
        row, col = int(np.floor(local.y())), int(np.floor(local.x()))
        h, w = self._image_size
        return (row, col) if 0 <= row < h and 0 <= col < w else None

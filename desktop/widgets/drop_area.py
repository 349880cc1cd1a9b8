"""Where images arrive: the drop area, what a drop holds, and a preview with reading boxes.

:func:`parse_mime` turns any drop or paste (file URLs from a file manager, image data or URLs
from a web browser, the clipboard) into a :class:`DropPayload`: the files to open, or an image
already decoded, or a one-line reason why there is nothing usable. All decoding of bytes goes
through the engine's :func:`engine.imageio.image_from_bytes`, which refuses hostile data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QFrame, QSizePolicy, QWidget

from desktop.qt_image import array_to_qimage, qimage_to_array
from engine.errors import ImageLoadError
from engine.imageio import image_from_bytes
from engine.inference import expand_paths

# Raw image bytes a browser or another app may put in a drop, most specific first.
BYTE_FORMATS = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/webp",
    "application/octet-stream",
)


@dataclass
class DropPayload:
    paths: list[Path] = field(default_factory=list)  # local files (folders expanded)
    image: np.ndarray | None = None  # decoded pixels of dropped image data
    name: str = ""  # what to call the image in messages
    error: str = ""  # why nothing usable arrived
    batch: bool = False  # several files or a folder
    root: Path | None = None  # the folder the dropped files and folders are in
    decode_failed: bool = False  # image data arrived but is not a readable image


def parse_mime(mime: QMimeData) -> DropPayload:
    """What ``mime`` (a drop or the clipboard) offers to classify."""
    local = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
    if local:
        paths, _problems = expand_paths(local)  # the one folder rule (no dot files)
        batch = len(local) > 1 or paths != local  # several files, or a folder
        if not paths:
            return DropPayload(error=f"No image files in {local[0].name}")
        root = Path(os.path.commonpath([str(p.parent) for p in local]))
        return DropPayload(paths=paths, batch=batch, name=paths[0].name, root=root)
    byte_error = ""
    for fmt in BYTE_FORMATS:
        if mime.hasFormat(fmt):
            data = bytes(mime.data(fmt).data())
            try:
                return DropPayload(
                    image=image_from_bytes(data, name=f"dropped {fmt} data"), name="dropped image"
                )
            except ImageLoadError as exc:
                byte_error = str(exc)
    if mime.hasImage():
        qimage = mime.imageData()
        if isinstance(qimage, QImage) and not qimage.isNull():
            return DropPayload(image=qimage_to_array(qimage), name="pasted image")
    if byte_error:
        return DropPayload(error=byte_error, decode_failed=True)
    remote = [u for u in mime.urls() if not u.isLocalFile()]
    if remote:
        return DropPayload(
            error=f"ConvScope does not download {remote[0].toString()}: "
            "save the image, then drop the file"
        )
    if mime.hasText():
        return DropPayload(error="That was text, not an image: drop an image file or image")
    return DropPayload(error="Nothing to classify: drop image files, a folder or an image")


class DropArea(QFrame):
    """A frame that takes drops of files and images and emits them as ``mime_dropped``."""

    mime_dropped = Signal(QMimeData)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropArea")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._hover = False

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage() or any(mime.hasFormat(f) for f in BYTE_FORMATS):
            self._set_hover(True)
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._set_hover(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_hover(False)
        event.acceptProposedAction()
        self.mime_dropped.emit(event.mimeData())

    def _set_hover(self, hover: bool) -> None:
        self._hover = hover
        self.setStyleSheet("#dropArea { border: 2px dashed #e6781e; }" if hover else "")


class ImagePreview(QWidget):
    """An image scaled to fit, with optional boxes (x0, y0, x1, y1, label) over it.

    Clicking a box emits ``box_clicked(index)``; the selected box is drawn thicker.
    """

    box_clicked = Signal(int)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)
        self._image: QImage | None = None
        self._boxes: list[tuple[int, int, int, int, str]] = []
        self._selected = -1
        self._placeholder = placeholder

    def set_image(self, image: np.ndarray | None) -> None:
        self._image = None if image is None else array_to_qimage(image)
        self._boxes = []
        self.update()

    def set_boxes(self, boxes: list[tuple[int, int, int, int, str]]) -> None:
        self._boxes = list(boxes)
        self._selected = -1
        self.update()

    def set_selected(self, index: int) -> None:
        self._selected = index
        self.update()

    def box_rect(self, index: int) -> QRectF:
        """Where box ``index`` is drawn, in widget coordinates."""
        target, scale = self._placement()
        x0, y0, x1, y1, _label = self._boxes[index]
        return QRectF(
            target.x() + x0 * scale, target.y() + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale
        )

    def _placement(self) -> tuple[QRectF, float]:
        w, h = self._image.width(), self._image.height()
        scale = min(self.width() / w, self.height() / h)
        target = QRectF(
            (self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale
        )
        return target, scale

    def mousePressEvent(self, event: QMouseEvent) -> None:
        for i in range(len(self._boxes)):
            if self.box_rect(i).adjusted(-3, -3, 3, 3).contains(event.position()):
                self.box_clicked.emit(i)
                return

    def boxes(self) -> list[tuple[int, int, int, int, str]]:
        return list(self._boxes)

    def has_image(self) -> bool:
        return self._image is not None

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self._image is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
            return
        target, scale = self._placement()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1)
        painter.drawImage(target, self._image)
        if not self._boxes:
            return
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        line = metrics.height()
        for i, (*_box, label) in enumerate(self._boxes):
            box = self.box_rect(i)
            selected = i == self._selected
            painter.setPen(QPen(QColor(230, 120, 30), 3 if selected else 1.5))
            painter.drawRect(box)
            width = metrics.horizontalAdvance(label) + 8
            tag = QRectF(box.center().x() - width / 2, box.y() - line - 3, width, line + 2)
            if tag.y() < 0:
                tag.moveTop(box.bottom() + 2)
            painter.fillRect(tag, QColor(230, 120, 30, 255 if selected else 200))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)

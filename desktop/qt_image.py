"""The only ndarray <-> QImage code of the app.

Arrays are ``uint8``: ``(H, W)`` grayscale, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA. The QImage
returned owns a copy of the pixels, so the array may change or vanish afterwards.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap

_FORMATS = {
    1: QImage.Format.Format_Grayscale8,
    3: QImage.Format.Format_RGB888,
    4: QImage.Format.Format_RGBA8888,
}


def array_to_qimage(array: np.ndarray) -> QImage:
    """A QImage holding a copy of ``array`` (uint8, (H,W), (H,W,3) or (H,W,4))."""
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        channels = 1
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        channels = array.shape[2]
    else:
        raise ValueError(f"expected (H,W), (H,W,3) or (H,W,4), got shape {array.shape}")
    data = np.ascontiguousarray(array)
    h, w = data.shape[:2]
    image = QImage(data.data, w, h, data.strides[0], _FORMATS[channels])
    return image.copy()  # detach from the NumPy buffer


def grid_to_qimage(tiles: np.ndarray) -> QImage:
    """Tiles ``(R, N, H, W[, 3])`` (uint8) as one picture ``(R*H, N*W[, 3])``: row ``r``, column
    ``n`` at ``(n*W, r*H)``. A view draws each tile by its part of the picture: one conversion
    for hundreds of tiles (feature maps, kernels), not one QImage each."""
    r, n, h, w = tiles.shape[:4]
    return array_to_qimage(np.swapaxes(tiles, 1, 2).reshape(r * h, n * w, *tiles.shape[4:]))


def array_to_pixmap(array: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(array_to_qimage(array))


def qimage_to_array(image: QImage) -> np.ndarray:
    """RGBA ``(H, W, 4)`` uint8 copy of any QImage (e.g. one pasted from the clipboard)."""
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    h, w = converted.height(), converted.width()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=converted.sizeInBytes())
    rows = buffer.reshape(h, converted.bytesPerLine())
    return rows[:, : w * 4].reshape(h, w, 4).copy()

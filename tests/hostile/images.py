"""Seeded odd and damaged image files: extreme shapes (thin strips, very wide or tall),
every mode Pillow writes, several formats, and byte damage (flips, truncation)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["EXTREME_SHAPES", "random_image_files"]

#: (width, height) the campaign found troublesome: thin strips, very wide or tall, 1 pixel.
EXTREME_SHAPES = [(65, 1), (640, 9), (1, 1), (1, 300), (3000, 2), (2, 3000), (9, 640), (7, 7)]
_MODES = ["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "F", "CMYK"]
_FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tif": "TIFF", "webp": "WEBP"}
_CAN_SAVE = {
    "PNG": {"L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I"},
    "JPEG": {"L", "RGB", "CMYK"},
    "BMP": {"L", "RGB", "P", "1"},
    "GIF": {"L", "P", "1"},
    "TIFF": {"L", "RGB", "RGBA", "P", "1", "I;16", "I", "F", "CMYK"},
    "WEBP": {"RGB", "RGBA"},
}


def _content(rng: np.random.Generator, width: int, height: int, mode: str) -> Image.Image:
    kind = rng.integers(3)
    if kind == 0:  # flat paper
        gray = np.full((height, width), int(rng.integers(256)), dtype=np.uint8)
    elif kind == 1:  # noise
        gray = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
    else:  # a dark stroke on white
        gray = np.full((height, width), 255, dtype=np.uint8)
        gray[height // 3 : max(height // 3 + 1, 2 * height // 3), width // 4 : 3 * width // 4] = 0
    img = Image.fromarray(gray, mode="L")
    return (
        img.convert(mode)
        if mode not in ("I;16",)
        else Image.fromarray(gray.astype(np.uint16) * 257)
    )


def random_image_files(folder: Path, seed: int, count: int) -> list[Path]:
    """``count`` image files (the name says shape, mode and format); about a fifth are
    damaged (bytes flipped or cut). Each must load or be refused with ImageLoadError."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        if rng.random() < 0.5:
            width, height = EXTREME_SHAPES[int(rng.integers(len(EXTREME_SHAPES)))]
        else:
            width, height = (int(v) for v in rng.integers(1, 200, size=2))
        ext = list(_FORMATS)[int(rng.integers(len(_FORMATS)))]
        fmt = _FORMATS[ext]
        modes = sorted(_CAN_SAVE[fmt])
        mode = modes[int(rng.integers(len(modes)))]
        buf = io.BytesIO()
        _content(rng, width, height, mode).save(buf, format=fmt)
        data = bytearray(buf.getvalue())
        damage = rng.random()
        if damage < 0.1:
            del data[int(rng.integers(1, len(data))) :]
        elif damage < 0.2:
            for at in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
                data[at] ^= int(rng.integers(1, 256))
        path = folder / f"{i:03d}_{width}x{height}_{mode.replace(';', '')}.{ext}"
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths

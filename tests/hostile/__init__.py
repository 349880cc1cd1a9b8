"""Hostile and odd image files, generated on demand (nothing binary is committed).

Use from any test (``tests/`` is on ``sys.path`` because of ``tests/conftest.py``)::

    from hostile import make_hostile_files, make_odd_files
    bad = make_hostile_files(tmp_path)      # name -> Path of files that must be refused
    odd = make_odd_files(tmp_path)          # name -> Path of files that must open correctly

All files are small (the bombs are a few hundred KB at most) and take well under a second to make.

The other families of the adversarial campaign, as seeded generators (the tests that use them
are ``test_model_files.py`` and ``test_campaign.py`` beside this file):
``hostile.models`` (crafted model files, zip bombs, metadata mutations), ``hostile.images``
(extreme shapes, every mode, byte damage), ``hostile.idx`` (header lies, gzip bombs, 0x0 images,
huge label values) and ``hostile.kernels`` (kernel text and kernel files).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "EXIF_MARK",
    "make_bomb_png",
    "make_hostile_files",
    "make_odd_files",
    "png_bytes",
]

#: In ``exif_rotated.jpg`` the stored (unrotated) image is 40 wide and 20 high, with a white
#: block in its top-left corner; the EXIF orientation 6 says "rotate 90 degrees clockwise to
#: display", so the loaded image is 40 high and 20 wide with the block in its top-RIGHT corner.
EXIF_MARK = "top-right"


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def make_bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of ``width x height`` black pixels, compressed to a few KB.

    Decoded to 8 bits it would take ``width*height`` bytes (20000x20000 -> 400 MB).
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0, then packed bits
    comp = zlib.compressobj(9)
    parts = []
    block = row * 256
    full, rest = divmod(height, 256)
    for _ in range(full):
        parts.append(comp.compress(block))
    parts.append(comp.compress(row * rest))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def _photo(width: int = 64, height: int = 48) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1
    ).astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB")


def make_hostile_files(folder: Path) -> dict[str, Path]:
    """Files that must be refused with a clear ImageLoadError (never a crash or a hang)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        path = folder / name
        path.write_bytes(data)
        files[name] = path

    put("empty.png", b"")
    put("text.png", b"This is not a PNG, it is a text file someone renamed.\n" * 20)
    good_png = png_bytes(_photo(256, 256))
    put("truncated.png", good_png[: len(good_png) // 2])
    buf = io.BytesIO()
    _photo(256, 256).save(buf, format="JPEG", quality=90)
    put("truncated.jpg", buf.getvalue()[: len(buf.getvalue()) // 2])
    broken = bytearray(good_png)
    broken[30] ^= 0xFF  # inside the IHDR checksum: the header no longer matches it
    put("bad_crc.png", bytes(broken))
    put("header_only.png", good_png[:33])  # signature + IHDR, no image data
    put("bomb_20000.png", make_bomb_png(20000, 20000))  # 400 MP: beyond Pillow's own limit
    put("bomb_60mp.png", make_bomb_png(10000, 6000))  # 60 MP: under Pillow's, over ours (50)
    return files


def make_odd_files(folder: Path) -> dict[str, Path]:
    """Unusual but valid files that must open correctly. See the tests for expected values."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def save(name: str, img: Image.Image, **kw) -> None:
        path = folder / name
        img.save(path, **kw)
        files[name] = path

    # 16-bit gray ramp: row 0 holds 0, 257, 514, ... (= 8-bit 0, 1, 2, ...), last pixel 65535
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(1, 256).repeat(4, axis=0)
    save("gray16.png", Image.fromarray(ramp))

    # 16-bit RGB (Pillow cannot write it, so the PNG is built by hand): (0, 32896, 65535) top-left
    px = np.zeros((2, 4, 3), dtype=">u2")
    px[..., 0] = 65535
    px[0, 0] = (0, 32896, 65535)
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(2))
    ihdr = struct.pack(">IIBBBBB", 4, 2, 16, 2, 0, 0, 0)
    files["rgb16.png"] = folder / "rgb16.png"
    files["rgb16.png"].write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )

    # palette image: index 0 transparent, index 1 red, index 2 green
    pal = Image.new("P", (8, 4), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (253 * 3))
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 2)
    save("palette_transparent.png", pal, transparency=0)

    # a palette of grays without transparency (like eagle.png)
    gpal = Image.new("P", (6, 2), 0)
    gpal.putpalette([v for i in range(256) for v in (i, i, i)])
    gpal.putpixel((5, 1), 200)
    save("palette_gray.png", gpal)

    save("cmyk.jpg", Image.new("CMYK", (16, 8), (0, 255, 255, 0)), quality=95)  # pure red

    la = Image.new("LA", (4, 4), (0, 255))
    la.putpixel((3, 3), (0, 0))  # fully transparent black
    save("la.png", la)

    one = Image.new("1", (9, 3), 0)
    one.putpixel((8, 2), 1)
    save("onebit.png", one)

    save("int32.tif", Image.fromarray(np.array([[0, 1000], [40000, 65535]], dtype=np.int32)))
    save("float.tif", Image.fromarray(np.array([[0.0, 0.5], [0.25, 1.0]], dtype=np.float32)))

    frames = [Image.new("RGB", (10, 10), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))]
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["animated.gif"] = path

    stored = np.zeros((20, 40), dtype=np.uint8)
    stored[:5, :5] = 255  # the mark in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    save("exif_rotated.jpg", Image.fromarray(stored), exif=exif.tobytes(), quality=95)

    rgba = np.zeros((6, 6, 4), dtype=np.uint8)
    rgba[2:4, 2:4] = (0, 0, 0, 255)  # a black stroke on a transparent canvas
    save("drawing_rgba.png", Image.fromarray(rgba))
    save("photo.jpg", _photo(), quality=95)
    save("photo.png", _photo())
    save("photo.bmp", _photo())
    save("photo.webp", _photo(), lossless=True)
    return files

"""The one safe way to open (and save) an image file.

Every image the app or the CLI reads goes through :func:`load_image` (a path) or
:func:`image_from_bytes` (dropped or pasted data). Either the result is a ``uint8`` array

* ``(H, W)`` grayscale (mode ``"L"``),
* ``(H, W, 3)`` RGB or
* ``(H, W, 4)`` RGBA,

or :class:`~engine.errors.ImageLoadError` is raised with a one-line message naming the file and
saying what is wrong. No other exception escapes for a bad file.

What is handled, and how:

* EXIF orientation (phone photos) is applied (``ImageOps.exif_transpose``); broken EXIF data is
  ignored rather than fatal.
* 16-bit grayscale (``I;16``) is *scaled* to 8 bits, ``v8 = round(v16 * 255 / 65535)``, not
  clipped. 32-bit integer (``I``) images (TIFF) whose values fit 0..255 are kept, those that fit
  0..65535 are scaled as 16-bit, anything else is stretched from its min..max. Float (``F``)
  images: 0..1 is scaled by 255, 0..255 is rounded, anything else is stretched.
* Palette images with transparency, ``LA`` and ``PA`` go through RGBA; ``CMYK`` and ``YCbCr``
  become RGB; ``1``-bit becomes 0/255.
* Animated GIF/PNG/WebP: the first frame.
* ``mode=None`` keeps the file's nature: ``"L"`` for grayscale (also a palette of grays),
  ``"RGB"`` for colour, ``"RGBA"`` when the file has an alpha channel or a transparent colour.
  Asking for ``"L"`` or ``"RGB"`` when the file has alpha composites it onto a white background
  (a transparent drawing is dark strokes on white, as on paper).
* Hostile files: a missing path, a folder, zero bytes, a text file called ``.png``, a truncated
  PNG or JPEG (refused: the missing rows would be silently grey), and decompression bombs. The
  pixel count is read from the header and checked against ``max_pixels`` *before* any pixel is
  decoded, so a 20000x20000 PNG of a few KB is refused in milliseconds. Pillow's own
  ``DecompressionBombWarning`` is turned into an error locally; its global limits are untouched,
  and ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set.

Known limitation: 16-bit RGB(A) PNGs are reduced to 8 bits by Pillow itself (it keeps the high
byte), which is the right answer anyway.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.atomic import atomic_write
from engine.errors import EngineError, ImageLoadError, ShapeError

__all__ = [
    "MAX_PIXELS",
    "SAVE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "ImageSaveError",
    "composite_on_white",
    "convert_array",
    "exif_transposed",
    "image_array",
    "image_from_bytes",
    "image_from_pil",
    "load_image",
    "load_pil_image",
    "pil_from_array",
    "save_image",
]

#: Default limit on width*height: 50 megapixels (a 12 MP phone photo is well below it).
MAX_PIXELS = 50_000_000

#: Suffixes offered in file dialogs and picked up when scanning folders (lower case).
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
    ".pnm",
    ".tga",
    ".ico",
)

#: Suffixes :func:`save_image` writes, with the Pillow format used for each.
SAVE_SUFFIXES: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_MODES = (None, "L", "RGB", "RGBA")
_WARNINGS_LOCK = threading.Lock()
_UNSUPPORTED_HINTS = {
    ".heic": "HEIC photos are not supported; export the photo as JPEG or PNG",
    ".heif": "HEIF photos are not supported; export the photo as JPEG or PNG",
    ".svg": "SVG is a vector format; export it as PNG first",
    ".pdf": "PDF is not an image; export the page as PNG first",
}
_WHITE = (255, 255, 255)


class ImageSaveError(EngineError):
    """An image could not be written (bad array, unknown suffix, folder not writable)."""


# ---------------------------------------------------------------------------------------------
# Loading


def load_image(
    path: str | os.PathLike[str],
    *,
    mode: str | None = None,
    max_pixels: int | None = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Open an image file as a ``uint8`` array, or raise :class:`ImageLoadError`.

    Args:
        path: the file.
        mode: ``None`` (keep the file's nature), ``"L"`` -> ``(H, W)``, ``"RGB"`` -> ``(H, W, 3)``,
            ``"RGBA"`` -> ``(H, W, 4)``.
        max_pixels: refuse images with more than this many pixels (width*height) before
            decoding them; ``None`` leaves only Pillow's own limit.
        draft_size: only for making thumbnails (dataset loading): a JPEG may then be decoded
            at 1/2, 1/4 or 1/8 scale, but never smaller than this (width, height). ``None``
            (the default) always decodes at full resolution.

    Returns:
        A new, writable, C-contiguous ``uint8`` array.
    """
    _check_mode(mode)
    return _open_checked(path, lambda fh, name: _decode(fh, name, mode, max_pixels, draft_size))


def load_pil_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Like :func:`load_image` (same checks, EXIF orientation applied, ``draft_size`` alike)
    but the decoded Pillow image itself, in mode ``L``, ``RGB`` or ``RGBA``: no copy into an
    array. Raises :class:`ImageLoadError`."""
    return _open_checked(path, lambda fh, name: _decode(fh, name, "pil", max_pixels, draft_size))


def _open_checked(path: str | os.PathLike[str], decode: Callable[[BinaryIO, str], Any]) -> Any:
    """Check ``path`` is a non-empty regular file, then ``decode(fh, name)``; every failure is
    an :class:`ImageLoadError` naming the file."""
    p = Path(path)
    name = p.name or str(p)
    try:
        if not p.exists():
            raise ImageLoadError(f"{p}: no such file; check the path")
        if p.is_dir():
            raise ImageLoadError(f"{p}: is a folder, not an image file; choose a file inside it")
        if not p.is_file():  # a FIFO or device would block or never end
            raise ImageLoadError(f"{p}: is not a regular file; choose an image file")
        size = p.stat().st_size
        if size == 0:
            raise ImageLoadError(f"{name}: the file is empty (0 bytes); it is not an image")
        with open(p, "rb") as fh:
            return decode(fh, name)
    except ImageLoadError:
        raise
    except PermissionError as exc:
        raise ImageLoadError(f"{name}: permission denied; check the file's permissions") from exc
    except OSError as exc:
        raise ImageLoadError(f"{name}: cannot be read ({exc.strerror or exc})") from exc


def image_from_bytes(
    data: bytes,
    *,
    name: str = "dropped data",
    mode: str | None = None,
    max_pixels: int | None = MAX_PIXELS,
) -> np.ndarray:
    """Like :func:`load_image` for the bytes of an image file (a drop, the clipboard, a URL).

    ``name`` is used in error messages.
    """
    _check_mode(mode)
    if not data:
        raise ImageLoadError(f"{name}: no data (0 bytes); it is not an image")
    return _decode(io.BytesIO(bytes(data)), name, mode, max_pixels)


def image_from_pil(img: Image.Image, mode: str | None = None) -> np.ndarray:
    """A ``uint8`` array from an already opened (and loaded) Pillow image.

    Applies the same mode rules as :func:`load_image`, but no EXIF rotation and no size check.
    """
    _check_mode(mode)
    try:
        return _to_array(img, mode)
    except (OSError, ValueError, MemoryError) as exc:
        raise ImageLoadError(f"image in mode {img.mode!r}: cannot be converted ({exc})") from exc


def convert_array(image: np.ndarray, mode: str) -> np.ndarray:
    """Convert a ``uint8`` (H,W), (H,W,3) or (H,W,4) array to ``"L"``, ``"RGB"`` or ``"RGBA"``.

    Alpha is composited onto white when dropped; gray uses ITU-R 601 luma (Pillow's weights:
    ``L = 0.299 R + 0.587 G + 0.114 B``).
    """
    if mode not in ("L", "RGB", "RGBA"):
        raise ValueError(f"mode must be 'L', 'RGB' or 'RGBA', got {mode!r}")
    return _to_array(pil_from_array(image, ImageSaveError), mode)


def _check_mode(mode: str | None) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be None, 'L', 'RGB' or 'RGBA', got {mode!r}")


def _decode(
    fh,
    name: str,
    mode: str | None,
    max_pixels: int | None,
    draft_size: tuple[int, int] | None = None,
) -> Any:
    """Open, check the header size, decode and convert (to an array, or with ``mode="pil"``
    the upright Pillow image); every failure is an ImageLoadError."""
    try:
        with _pillow_warnings_as_errors():
            img = Image.open(fh)  # reads the header only
        with img:
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageLoadError(f"{name}: the image has no pixels ({width}x{height})")
            if max_pixels is not None and width * height > max_pixels:
                raise _too_many_pixels(name, width * height, max_pixels, f"{width}x{height} is ")
            if draft_size is not None and img.format == "JPEG":
                # EXIF rotation may swap the sides later: ask for the larger side both ways
                side = max(draft_size)
                img.draft(None, (side, side))
            img.load()  # decode the first frame now, so truncation shows here
            if mode == "pil":  # load_pil_image: detached from the file, which closes here
                upright = _canonical(exif_transposed(img))
                return upright.copy() if upright is img else upright
            return _to_array(exif_transposed(img), mode)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses it while reading the header, before our own check sees the size
        found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
        if found is None:
            raise ImageLoadError(
                f"{name}: too many pixels for Pillow's safety limit; it may be a decompression bomb"
            ) from exc
        pixels, pillows = int(found.group(1)), int(found.group(2))
        limit = pillows if max_pixels is None else min(max_pixels, pillows)
        raise _too_many_pixels(name, pixels, limit) from exc
    except UnidentifiedImageError as exc:
        if Path(name).suffix.lower() in _UNSUPPORTED_HINTS:
            raise ImageLoadError(
                f"{name}: {_UNSUPPORTED_HINTS[Path(name).suffix.lower()]}"
            ) from exc
        raise ImageLoadError(
            f"{name}: not a readable image: the contents are not a known image format "
            "or the header is damaged"
        ) from exc
    except MemoryError as exc:
        raise ImageLoadError(f"{name}: not enough memory to decode this image") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        text = str(exc)
        if "truncated" in text or isinstance(exc, EOFError):
            raise ImageLoadError(
                f"{name}: the file is truncated (it ends before the image data does); "
                "re-save or re-download it"
            ) from exc
        raise ImageLoadError(
            f"{name}: damaged or unsupported image ({text or type(exc).__name__})"
        ) from exc


def _too_many_pixels(name: str, pixels: int, limit: int, size: str = "") -> ImageLoadError:
    """The refusal of an image of ``pixels`` pixels, more than ``limit``; ``size`` ("WxH is ")
    when known."""
    for digits in range(4):  # a 50.3 MP photo is not "50 megapixels, more than ... 50"
        got, most = f"{pixels / 1e6:.{digits}f}", f"{limit / 1e6:.{digits}f}"
        if got != most:
            break
    return ImageLoadError(
        f"{name}: {size}{got} megapixels, more than the limit of "
        f"{most}; refusing to decode it (it may be a decompression bomb). "
        "Scale the image down first."
    )


@contextlib.contextmanager
def _pillow_warnings_as_errors():
    """Pillow's DecompressionBombWarning becomes an error, its other warnings (corrupt EXIF, odd
    chunks: about data we do not use) are ignored. Only header parsing runs in here, briefly.

    ``warnings.catch_warnings`` swaps process-wide state and is not thread-safe: two threads
    nesting it can leave the wrong filters behind. A lock serialises our own uses (the GUI may
    load images in several workers at once); decoding itself runs outside the lock.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def exif_transposed(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block is ignored, not fatal (also for
    :mod:`engine.photo` and the exported PyTorch file)."""
    try:
        with _pillow_warnings_as_errors():  # "Corrupt EXIF data" is ignored on purpose
            orientation = img.getexif().get(0x0112, 1)
            if orientation in (1, None):  # no rotation: skip exif_transpose's full copy
                return img
            return ImageOps.exif_transpose(img)
    except Exception:  # best effort: Pillow raises many kinds of errors on bad EXIF
        return img


def _to_array(img: Image.Image, mode: str | None) -> np.ndarray:
    """Normalise any Pillow mode to L / RGB / RGBA (see the module docstring), then to ``mode``."""
    img = _canonical(img)
    if mode is None:
        mode = img.mode
    if img.mode != mode:
        if img.mode in ("RGBA", "LA") and mode != "RGBA":
            img = composite_on_white(img)
        img = img.convert(mode)
    return np.array(img, dtype=np.uint8, copy=True)


def _canonical(img: Image.Image) -> Image.Image:
    """The same picture in mode L, LA, RGB or RGBA (LA only as an intermediate)."""
    m = img.mode
    if m in ("L", "RGB", "RGBA"):
        return img
    if m == "LA":
        return img.convert("RGBA")
    if m == "1":
        return img.convert("L")
    if m in ("P", "PA"):
        if m == "PA" or "transparency" in img.info:
            return img.convert("RGBA")
        palette = img.getpalette() or []
        rgb = np.asarray(palette, dtype=np.int32).reshape(-1, 3) if palette else None
        is_gray = (
            rgb is not None
            and bool(np.all(rgb[:, 0] == rgb[:, 1]))
            and bool(np.all(rgb[:, 1] == rgb[:, 2]))
        )
        return img.convert("L" if is_gray else "RGB")
    if m.startswith("I;16") or m in ("I", "F"):
        return Image.fromarray(_wide_to_uint8(np.asarray(img)), mode="L")
    if m in ("La", "RGBa"):
        return img.convert("RGBA")
    if m in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return img.convert("RGB")
    return img.convert("RGBA" if "A" in img.getbands() else "RGB")


def _wide_to_uint8(a: np.ndarray) -> np.ndarray:
    """Map a 16-bit, 32-bit integer or float gray image to uint8 (rules in the module docstring)."""
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    if a.dtype.kind == "f":
        f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(f.min()), float(f.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(f * 255.0).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0:
            return np.rint(f).astype(np.uint8)
        return _stretch(f, lo, hi)
    is_16bit = a.dtype.itemsize == 2  # I;16 and friends: always the full 0..65535 scale
    wide = a.astype(np.int64)
    lo, hi = int(wide.min()), int(wide.max())
    if not is_16bit and lo >= 0 and hi <= 255:
        return wide.astype(np.uint8)
    if lo >= 0 and hi <= 65535:
        # v8 = round(v16 * 255 / 65535), in integers: (v*255 + 32767) // 65535
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return _stretch(wide.astype(np.float64), float(lo), float(hi))


def _stretch(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def composite_on_white(img: Image.Image) -> Image.Image:
    """The picture in RGB, its transparent parts on white paper (any mode with alpha)."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


# ---------------------------------------------------------------------------------------------
# Saving


def save_image(
    image: np.ndarray | Image.Image, path: str | os.PathLike[str], *, quality: int = 95
) -> Path:
    """Write a ``uint8`` (H,W), (H,W,3) or (H,W,4) array (or a Pillow image in mode L, RGB or
    RGBA, saved without a copy) as PNG, JPEG, BMP or TIFF (by suffix).

    Atomic: the image is written to a temporary file in the same folder, flushed to disk and
    renamed over ``path``, so a crash never leaves half a file. JPEG and BMP keep no alpha: RGBA
    is composited onto white first. Returns the path written. Raises :class:`ImageSaveError`.
    """
    p = Path(path)
    fmt = SAVE_SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise ImageSaveError(
            f"{p.name}: cannot save with suffix {p.suffix or '(none)'!r}; "
            f"use one of {', '.join(SAVE_SUFFIXES)}"
        )
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB", "RGBA"):
            raise ImageSaveError(f"{p.name}: a picture in mode {image.mode}: use L, RGB or RGBA")
        img = image
    else:
        img = pil_from_array(image, ImageSaveError)
    if fmt in ("JPEG", "BMP") and img.mode == "RGBA":  # no (readable) alpha in these formats
        img = composite_on_white(img)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise ImageSaveError(f"{p}: the folder {folder} does not exist")
    kwargs = {"quality": quality} if fmt == "JPEG" else {}
    try:
        atomic_write(p, lambda f: img.save(f, format=fmt, **kwargs))
    except OSError as exc:
        raise ImageSaveError(f"{p}: cannot write the image ({exc.strerror or exc})") from exc
    return p


def image_array(image: np.ndarray, error: type[EngineError] = ShapeError) -> np.ndarray:
    """``image`` checked as a picture: a uint8 ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` array
    (a bool array becomes 0/255, ``(H, W, 1)`` becomes ``(H, W)``), not empty; anything else
    raises ``error`` saying what is wrong. Returned without a copy when it already fits."""
    a = np.asarray(image)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        raise error(
            f"expected a uint8 image array, got dtype {a.dtype}; convert it first "
            "(e.g. np.clip(x, 0, 255).astype(np.uint8))"
        )
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2 and not (a.ndim == 3 and a.shape[2] in (3, 4)):
        raise error(f"expected an image array of shape (H,W), (H,W,3) or (H,W,4), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise error(f"the image array is empty (shape {a.shape})")
    return a


def pil_from_array(image: np.ndarray, error: type[EngineError] = ShapeError) -> Image.Image:
    """A uint8 (H,W), (H,W,1), (H,W,3) or (H,W,4) array (bool: 0/255) as a Pillow image in mode
    L, RGB or RGBA; anything else raises ``error`` saying what is wrong."""
    a = image_array(image, error)
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[2] == 3 else "RGBA")
    return Image.fromarray(np.ascontiguousarray(a), mode=mode)

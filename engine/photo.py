"""A user's photo -> the picture a photo model sees: THE photo preparation of ConvScope.

Used by ``convscope classify``/``evaluate`` on image files, the Classify tab and the PyTorch
export (which embeds this module in the generated file with the engine modules it imports:
:mod:`engine.imageio`, whose array-to-Pillow, EXIF and alpha helpers it uses, and
:mod:`engine.errors`; NumPy and Pillow otherwise). The steps, for a model whose
``input_spec.shape`` is ``(C, H, W)``:

1. **Orientation.** A Pillow image is turned upright by its EXIF orientation tag (a phone
   photo is stored sideways with a tag saying so). Arrays from
   :func:`engine.imageio.load_image` are upright already.
2. **Alpha on white.** Transparent pixels become white paper (RGBA and LA images).
3. **Colour.** RGB for ``C == 3``, luma ``L = 0.299 R + 0.587 G + 0.114 B`` for ``C == 1``
   (Pillow's ITU-R 601 weights).
4. **Shorter side, then centre crop.** The picture is scaled so that it just covers ``H x W``
   (scale ``s = max(H / h, W / w)`` for an ``h x w`` picture) and the centre ``H x W`` is kept:
   the crop box in the original is ``w' = W / s`` by ``h' = H / s`` pixels, centred. Nothing is
   stretched; for a square input the shorter side becomes the input's side. Resampling is
   Pillow's antialiased bicubic; a big photo is first box-reduced by an integer factor
   (``reducing_gap``: exact enough, and a 12-megapixel photo takes a few milliseconds).

The result is ``uint8 (C, H, W)``: what the network sees, before ``input_spec.to_tensor``
subtracts the mean and divides by the std of each channel. It is also what the app shows as
"network input".
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from engine.errors import ShapeError
from engine.imageio import composite_on_white, exif_transposed, pil_from_array

__all__ = ["crop_box", "draft_size", "prepare_photo", "prepare_photos", "to_display"]

#: Pillow's ``reducing_gap``: box-reduce first while the picture is more than this many times
#: the target size, then resample the rest with bicubic.
REDUCING_GAP = 3.0


def crop_box(width: int, height: int, out_h: int, out_w: int) -> tuple[float, float, float, float]:
    """The centred box ``(x0, y0, x1, y1)`` of a ``width x height`` picture with the aspect of
    ``out_w x out_h``: the largest such box, the part of the picture the network sees."""
    scale = max(out_h / height, out_w / width)
    box_w, box_h = min(width, out_w / scale), min(height, out_h / scale)
    x0, y0 = max(0.0, (width - box_w) / 2), max(0.0, (height - box_h) / 2)  # never -1e-15
    return (x0, y0, min(float(width), x0 + box_w), min(float(height), y0 + box_h))


def draft_size(spec) -> tuple[int, int]:
    """``(width, height)`` to hand to Pillow's ``Image.draft`` for a quick first look at a photo
    file for a model whose input is ``spec.shape == (C, H, W)``: a JPEG is then decoded at 1/2,
    1/4 or 1/8 scale (its DCT blocks averaged, much like the box reduction of step 4) but never
    below :data:`REDUCING_GAP` times the input; a 12-megapixel JPEG decodes about 8x faster.
    Close to the full decoding, not equal: the app shows it first, then the exact result."""
    _channels, out_h, out_w = (int(v) for v in getattr(spec, "shape", spec))
    return (int(np.ceil(REDUCING_GAP * out_w)), int(np.ceil(REDUCING_GAP * out_h)))


def prepare_photo(image: np.ndarray | Image.Image, spec) -> np.ndarray:
    """Prepare one photo for a model whose input is ``spec.shape == (C, H, W)`` (C is 1 or 3).

    Args:
        image: a Pillow image (any mode; EXIF orientation applied here) or a uint8 array
            ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (upright already, as
            :func:`engine.imageio.load_image` returns it).
        spec: anything with a ``shape`` attribute ``(C, H, W)`` (an ``InputSpec``), or the
            shape itself.

    Returns:
        uint8 ``(C, H, W)``.

    Raises:
        ShapeError: ``image`` is not an image or ``spec`` asks for a channel count other than
            1 or 3 (a ValueError).
    """
    channels, out_h, out_w = (int(v) for v in getattr(spec, "shape", spec))
    if channels not in (1, 3) or out_h < 1 or out_w < 1:
        raise ShapeError(f"a photo model takes 1 or 3 channels, not an input of {spec!r}")
    pil = exif_transposed(image) if isinstance(image, Image.Image) else pil_from_array(image)
    pil = _on_white(pil).convert("L" if channels == 1 else "RGB")
    out = np.asarray(_fitted(pil, out_h, out_w), dtype=np.uint8)
    return np.ascontiguousarray(out[None] if channels == 1 else out.transpose(2, 0, 1))


def prepare_photos(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A dataset's images at ``size`` = (H', W'), each exactly as :func:`prepare_photo` prepares
    it for a network of that input (step 4: the centred crop of that aspect, then Pillow's
    bicubic), so that training sees the pixels ``convscope classify`` shows the network.

    ``images``: uint8 ``(N, H, W)`` grey or ``(N, 3, H, W)`` colour, already in the network's
    colour; the result keeps the layout. ShapeError for anything else.

    Pillow resamples in two passes, one along rows and one along columns, each on its own
    (uint8 between them), and each colour plane on its own; so the rows of all the planes
    stacked in one tall picture are resampled in one call, and their columns side by side in
    one wide picture: the same pixels as image by image, two to four times faster. Which pass
    Pillow runs first depends on the geometry, so :func:`_rows_first` asks it on a probe image
    (a big reduction, where Pillow first box-reduces, and a geometry neither order matches go
    image by image)."""
    a = np.asarray(images)
    colour = a.ndim == 4 and a.shape[1] == 3
    if a.dtype != np.uint8 or not (a.ndim == 3 or colour):
        raise ShapeError(f"expected uint8 images (N, H, W) or (N, 3, H, W), got {a.shape}")
    out_h, out_w = (int(v) for v in size)
    order = _rows_first(a.shape[1:], out_h, out_w) if len(a) else None
    if order is None:
        return _one_by_one(a, colour, out_h, out_w)
    return _two_passes(a, out_h, out_w, order)


@functools.lru_cache(maxsize=16)
def _rows_first(shape: tuple[int, ...], out_h: int, out_w: int) -> bool | None:
    """Whether Pillow resamples rows first for images of ``shape`` to ``out_h x out_w`` (the
    order whose result equals its own on a random probe image), None when neither does or
    it box-reduces first."""
    h, w = shape[-2:]
    box = crop_box(w, h, out_h, out_w)
    if max((box[2] - box[0]) / out_w, (box[3] - box[1]) / out_h) >= 2 * REDUCING_GAP:
        return None
    probe = np.random.default_rng(0).integers(0, 256, (2, *shape), dtype=np.uint8)
    expected = _one_by_one(probe, len(shape) == 3, out_h, out_w)
    for rows_first in (True, False):
        if np.array_equal(_two_passes(probe, out_h, out_w, rows_first), expected):
            return rows_first
    return None


def _two_passes(a: np.ndarray, out_h: int, out_w: int, rows_first: bool) -> np.ndarray:
    """Every plane of ``a`` (N, [C,] H, W) resampled along rows in one tall picture and along
    columns in one wide one (in Pillow's order); the layout is kept."""
    h, w = a.shape[-2:]
    x0, y0, x1, y1 = crop_box(w, h, out_h, out_w)
    planes = np.ascontiguousarray(a).reshape(-1, h, w)

    def along_rows(x: np.ndarray) -> np.ndarray:  # (M, H, W) -> (M, H, W'): one tall picture
        m, rows, cols = x.shape
        tall = Image.fromarray(np.ascontiguousarray(x).reshape(m * rows, cols))
        done = tall.resize((out_w, m * rows), _BICUBIC, box=(x0, 0, x1, m * rows))
        return np.asarray(done).reshape(m, rows, out_w)

    def along_columns(x: np.ndarray) -> np.ndarray:  # (M, H, W) -> (M, H', W): one wide picture
        m, rows, cols = x.shape
        wide = Image.fromarray(np.ascontiguousarray(x.swapaxes(0, 1)).reshape(rows, m * cols))
        done = wide.resize((m * cols, out_h), _BICUBIC, box=(0, y0, m * cols, y1))
        return np.asarray(done).reshape(out_h, m, cols).swapaxes(0, 1)

    out = along_columns(along_rows(planes)) if rows_first else along_rows(along_columns(planes))
    return np.ascontiguousarray(out).reshape(*a.shape[:-2], out_h, out_w)


def _one_by_one(a: np.ndarray, colour: bool, out_h: int, out_w: int) -> np.ndarray:
    out = np.empty((len(a), *a.shape[1:-2], out_h, out_w), np.uint8)
    for i in range(len(a)):
        image = a[i].transpose(1, 2, 0) if colour else a[i]
        fitted = np.asarray(_fitted(Image.fromarray(np.ascontiguousarray(image)), out_h, out_w))
        out[i] = fitted.transpose(2, 0, 1) if colour else fitted
    return out


_BICUBIC = Image.Resampling.BICUBIC


def _fitted(pil: Image.Image, out_h: int, out_w: int) -> Image.Image:
    """Step 4: the centred crop of the input's aspect, resized to ``out_w x out_h``."""
    box = crop_box(pil.width, pil.height, out_h, out_w)
    return pil.resize((out_w, out_h), _BICUBIC, box=box, reducing_gap=REDUCING_GAP)


def to_display(prepared: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` as returned by :func:`prepare_photo` -> ``(H, W)`` or ``(H, W, 3)`` for
    showing it as a picture."""
    a = np.asarray(prepared)
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    if a.ndim == 3 and a.shape[0] == 3:
        return np.ascontiguousarray(a.transpose(1, 2, 0))
    return a


def _on_white(img: Image.Image) -> Image.Image:
    """Alpha composited onto white; palette and other modes converted to L or RGB(A) first."""
    if img.mode in ("L", "RGB"):
        return img
    has_alpha = "A" in img.getbands() or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    return composite_on_white(img)

"""A user's image -> the 28x28 digit the network sees, made the way MNIST itself was made.

MNIST digits are white ink on black, fit into a 20x20 box keeping their aspect ratio
(anti-aliased, so edges are grey) and placed in a 28x28 field so that their centre of mass is
at the centre. A dragged-in image is none of that: it is large, dark-on-light, off-centre,
maybe a transparent drawing or a phone photo of paper under uneven light. The steps:

1. **Gray.** EXIF orientation, 16-bit, palette, CMYK... are handled by
   :func:`engine.imageio.load_image`. Here colour becomes luma, and alpha is composited onto
   white (a transparent drawing is dark strokes on paper). If that leaves nothing to see
   (light strokes on a transparent background), the alpha channel itself is the ink. A darker
   desk showing around a photographed sheet is painted the paper's level
   (:func:`engine.paper.fill_surround`); ``original`` keeps the picture as it is.
2. **Locate at low resolution.** Big images are box-reduced (``Image.reduce``) to at most
   :data:`WORK_SIZE` pixels on their longest side first: finding the ink does not need 12
   megapixels, and it keeps a 1-megapixel image within a few milliseconds.
3. **Polarity.** The background is the median of the border ring; the ink is whichever
   extreme (darkest or brightest, after a 3x3 blur against noise) lies further from it.
   Dark ink is inverted, so the ink is always bright.
4. **Uneven light.** A photo of paper is brighter on one side and darker in the corners. The
   lighting is fitted as a quadratic surface through the paper (robust least squares on a
   ~48-pixel thumbnail: the ink is dropped as outliers, so strokes of any width do not pull
   it) and subtracted. Even light gives a constant.
5. **Ink contrast.** The ink level is a high percentile of the clearly-inked pixels; levels
   are stretched so the stroke cores become 255 and the paper 0 (noise below a fraction of
   the ink contrast is cut). No ink clearly above the noise -> :class:`EngineError`.
   Ruled or squared paper: thin lines across the whole picture are taken out
   (:func:`_without_rules`).
6. **Crop** to the ink (ignoring specks: the ends of the row/column ink profiles holding less
   than :data:`SPECK_MASS` of the ink are trimmed). A small digit in a big image is cropped
   again from the full-resolution picture, so it is not resampled twice.
7. **Pen width.** MNIST's pen is about 1.8 px wide in the 20x20 box (:func:`stroke_width`).
   A thin pen on a big canvas would become a hairline; it is widened (a grey max filter at
   4x the box size) towards MNIST's width. Thick pens are left alone.
8. **Fit into 20x20** keeping the aspect ratio (Pillow's anti-aliased Lanczos resampling) and
   **place by centre of mass** in 28x28, at (14, 14) as in MNIST (measured: the mean centre
   of mass of the MNIST training digits is (13.99, 14.01) in pixel indices).

``auto_invert=False`` skips the desk of step 1 and steps 3-4 (the image is taken as white ink
on a black background as it is: a photo of paper then becomes a white square with a dark
digit);
``center=False`` skips steps 6-8 (the whole picture is scaled into 28x28), which shows why
they matter: a small digit in a large picture becomes a speck.

Known limitations: one digit per image (see ``engine.reading`` for several); a speck that holds
more than :data:`SPECK_MASS` of the ink, or a frame around the digit, enlarges the crop; the
lighting model is smooth (a quadratic), so a sharp shadow edge across the paper looks like ink.
A 12-megapixel JPEG spends most of its time in decoding (about 0.1 s), not here.

Size: the steps above are one pipeline of small functions in step order, and this
explanation is a good part of the file; a split would separate a step from its reason.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from engine import imageops
from engine.errors import EngineError
from engine.imageio import image_array
from engine.imageops import box_blur3
from engine.paper import fill_surround

__all__ = [
    "BOX",
    "SIZE",
    "WORK_SIZE",
    "PreparedDigit",
    "classify_images",
    "ink_extremes",
    "ink_gray",
    "prepare_digit",
    "prepare_digit_file",
    "stroke_width",
]

#: Side of the field the digit is placed in, and of the box it is fit into (MNIST's numbers).
SIZE = 28
BOX = 20
#: Longest side of the low-resolution copy used to find the ink.
WORK_SIZE = 256
MIN_WORK_SIDE = 32
#: Ink contrast below this many grey levels is "no ink" (whatever the noise).
MIN_CONTRAST = 24.0
#: Fraction of the ink mass that may be trimmed off each end of the profiles (specks).
SPECK_MASS = 0.004
#: The digit's centre of mass goes here (row, column), as in MNIST.
CENTER = (14.0, 14.0)
#: Strokes are measured and widened at FINE pixels per box side (4x the box).
FINE = 4 * BOX
#: A pen thinner than this (in 20x20-box pixels) is widened to about TARGET_PEN. MNIST's pen
#: measures 1.84 px (median), 1.36 px at the 10th percentile (see :func:`stroke_width`).
MIN_PEN = 1.4
TARGET_PEN = 1.8

_BLUR3 = ImageFilter.BoxBlur(1)


@dataclass
class PreparedDigit:
    """A user's image ready for the network.

    image: uint8 (28, 28), white ink on black, as the network sees it (before scaling).
    original: uint8 (H, W) grayscale after EXIF/alpha handling, for display.
    inverted: whether the polarity was flipped (dark ink on light paper).
    bbox: (x0, y0, x1, y1) of the ink in ``original`` (x1, y1 exclusive), or None.
    """

    image: np.ndarray
    original: np.ndarray
    inverted: bool
    bbox: tuple[int, int, int, int] | None


def prepare_digit(
    image: np.ndarray, *, auto_invert: bool = True, center: bool = True
) -> PreparedDigit:
    """Turn one image of one digit into MNIST's format (see the module docstring).

    Args:
        image: uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); a bool array is taken as 0/255.
        auto_invert: detect dark ink on light paper and invert it (off: taken as is).
        center: crop to the ink, fit into 20x20 and centre by mass (off: scale the whole picture).

    Raises:
        EngineError: the image has no ink (blank, uniform or only noise).
        ShapeError: the array is not an image.
    """
    shown = ink_gray(image)
    # a desk around a photographed sheet becomes paper (a polarity question: auto_invert's)
    gray = fill_surround(shown) if auto_invert else shown
    h, w = gray.shape
    factor, small, work, smooth = _reduced(gray)
    inverted = bool(auto_invert) and _ink_is_dark(work, smooth)
    if inverted:
        work = 255.0 - work
        smooth = 255.0 - smooth
    # Without auto_invert the picture is taken as MNIST-like: bright is ink, black is paper.
    h0, w0 = work.shape
    if auto_invert:
        lighting = _lighting(work, float(smooth.max()), small, inverted)
    else:
        lighting = _Lighting((0.0, 0, 0, 0, 0, 0), w0, h0)
    residual = work - lighting.sample(0, 0, w0, h0, work.shape)
    noise = _noise(residual)
    ink = np.maximum(residual, 0.0)
    ink, ruled = _without_rules(ink, noise)
    smooth_ink = box_blur3(ink)
    level, floor = _ink_level(ink, noise, smooth_ink)
    mask_bbox = _ink_bbox(smooth_ink, level, noise)
    if mask_bbox is None:
        raise EngineError(_no_ink(noise))
    bbox = _scale_bbox(mask_bbox, factor, w, h)

    if not center:
        field = _stretch(ink, level, floor)
        return PreparedDigit(_fit_whole(field), shown, inverted, bbox)

    x0, y0, x1, y1 = mask_bbox
    crop = ink[y0:y1, x0:x1]
    if factor > 1 and max(x1 - x0, y1 - y0) < 2 * BOX and not ruled:
        # A small digit in a big picture: crop it again from the full resolution.
        fine, reduce = _full_res_crop(gray, bbox, lighting, factor, inverted)
        fine = np.maximum(fine, 0.0)
        # Box-reducing k x k pixels divides white noise by k.
        fine_noise = noise * factor / reduce
        try:
            smooth_fine = box_blur3(fine)
            fine_level, fine_floor = _ink_level(fine, fine_noise, smooth_fine)
            sub = _ink_bbox(smooth_fine, fine_level, fine_noise)
        except EngineError:
            sub = None
        if sub is not None:
            sx0, sy0, sx1, sy1 = sub
            crop, level, floor = fine[sy0:sy1, sx0:sx1], fine_level, fine_floor
    patch = _fit_box(_stretch(crop, level, floor))
    return PreparedDigit(_place_by_mass(patch), shown, inverted, bbox)


def prepare_digit_file(
    path: str | os.PathLike[str], *, auto_invert: bool = True, center: bool = True
) -> PreparedDigit:
    """:func:`engine.imageio.load_image` then :func:`prepare_digit`.

    Raises ImageLoadError for unreadable files and EngineError for images without ink.
    """
    from engine.imageio import load_image

    image = load_image(path, mode=None)
    try:
        return prepare_digit(image, auto_invert=auto_invert, center=center)
    except EngineError as exc:
        name = os.path.basename(os.fspath(path))
        raise type(exc)(f"{name}: {exc}") from None


def training_digit(image: np.ndarray) -> np.ndarray:
    """uint8 (28, 28): an image of a digit folder as a digit model is shown it by ``classify``
    (:func:`prepare_digit`), so that a model trained on scans of dark ink on paper reads them
    as it learned them. A picture already in MNIST's format (28x28, light ink with a dark
    border, as every MNIST digit saved as a PNG) is taken as it is.

    Raises EngineError when the image has no ink.
    """
    gray = ink_gray(image)
    if gray.shape == (28, 28):
        ring = np.concatenate(
            [gray[:2].ravel(), gray[-2:].ravel(), gray[:, :2].ravel(), gray[:, -2:].ravel()]
        )
        if ring.mean() < 16:
            return gray
    return prepare_digit(gray).image  # gray: ink_gray is its own result on a grey picture


def classify_images(model, digits: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Class probabilities ``(N, K)`` of prepared digits (uint8 (28, 28) each):
    :func:`engine.inference.classify_inputs`, the one home of batched inference.

    The model's ``input_spec`` scales them (and pads 28x28 to 32x32 for the article's network;
    a model taking less than 28x28 gets them resized, :func:`engine.inference.fit_digit`);
    a model with 3 input channels gets the gray digit in all three.
    """
    from engine.inference import classify_inputs, fit_digit

    batch = np.asarray(digits if not isinstance(digits, list) else np.stack(digits))
    return classify_inputs(model, fit_digit(model, batch[None] if batch.ndim == 2 else batch))


# ---------------------------------------------------------------------------------------------
# Steps


def _no_ink(noise: float) -> str:
    """Why no digit was found: a flat picture (blank, uniform, faint grain) or a busy one whose
    texture is as strong as any stroke (a photo of a scene: its grain estimate alone reaches
    the contrast a stroke needs)."""
    if 2.5 * noise < MIN_CONTRAST:
        why = "the image is blank, uniform or only faint noise"
    else:
        why = "the picture is busy all over (a photo of a scene?) and no strokes stand out"
    return f"no ink found: {why}; use an image with one clearly visible digit"


def ink_gray(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) grey of a digit picture: :func:`engine.imageops.to_gray` with the digit's
    alpha policy, for an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 image.

    Alpha is composited onto white; if that leaves no contrast but the alpha channel has some
    (light strokes on a transparent background), ``255 - alpha`` is used: dark ink on white.
    """
    a = image_array(image)
    if a.ndim == 2:
        return np.ascontiguousarray(a)
    if a.shape[2] == 3:
        return imageops.to_gray(a)
    alpha = a[:, :, 3]
    composite = imageops.to_gray(a, alpha="white")
    lo_a, hi_a = int(alpha.min()), int(alpha.max())
    if lo_a < 255 and int(composite.max()) - int(composite.min()) < MIN_CONTRAST <= hi_a - lo_a:
        return 255 - alpha
    return composite


def _border(work: np.ndarray) -> np.ndarray:
    """The pixels of the outer ring (about 3% of the short side, at least one pixel)."""
    h, w = work.shape
    t = max(1, round(0.03 * min(h, w)))
    if 2 * t >= min(h, w):
        return work.ravel()
    return np.concatenate(
        [work[:t].ravel(), work[-t:].ravel(), work[t:-t, :t].ravel(), work[t:-t, -t:].ravel()]
    )


def _reduced(gray: np.ndarray) -> tuple[int, Image.Image, np.ndarray, np.ndarray]:
    """(factor, small, work, smooth): ``gray`` (uint8) box-reduced by ``factor`` so its long
    side is at most WORK_SIZE but its short side at least MIN_WORK_SIDE (a long, thin picture
    must not collapse to a few pixels across), as Pillow and float32, and 3x3 blurred against
    grain for the extremes (Pillow's box blur on uint8 is cheap)."""
    h, w = gray.shape
    factor = max(1, min(math.ceil(max(h, w) / WORK_SIZE), min(h, w) // MIN_WORK_SIDE))
    pil = Image.fromarray(gray)
    small = pil.reduce(factor) if factor > 1 else pil
    work = np.asarray(small, dtype=np.float32)
    return factor, small, work, np.asarray(small.filter(_BLUR3), dtype=np.float32)


def _extremes(work: np.ndarray, smooth: np.ndarray) -> tuple[float, float, float]:
    """(background, darkest, brightest): the border ring's median and the blurred extremes."""
    return float(np.median(_border(work))), float(smooth.min()), float(smooth.max())


def _ink_is_dark(work: np.ndarray, smooth: np.ndarray) -> bool:
    """Is the ink darker than the background? Compare the extremes with the border median."""
    bg, darkest, brightest = _extremes(work, smooth)
    return bg - darkest > brightest - bg


def ink_extremes(gray: np.ndarray) -> tuple[float, float, float]:
    """(background, darkest, brightest) of a gray picture (uint8, or float in 0..255), as
    :func:`prepare_digit` decides the polarity: the ink is dark when ``background - darkest >
    brightest - background``. The extremes are those of the whole picture (reduced and
    blurred, against grain), so a digit a few pixels wide in a big photo counts
    (``engine.reading`` decides by them too)."""
    as_bytes = gray if gray.dtype == np.uint8 else np.clip(gray + 0.5, 0, 255).astype(np.uint8)
    _, _, work, smooth = _reduced(np.ascontiguousarray(as_bytes))
    return _extremes(work, smooth)


@dataclass(frozen=True)
class _Lighting:
    """The background level under bright ink, a smooth surface over the low-resolution image:
    ``b(u, v) = c0 + c1 u + c2 v + c3 u^2 + c4 u v + c5 v^2`` with ``u = x / W``, ``v = y / H``
    (work-image pixels; all zeros but ``c0`` for even light)."""

    coeffs: tuple[float, ...]
    width: int
    height: int

    def sample(
        self, x0: float, y0: float, x1: float, y1: float, shape: tuple[int, int]
    ) -> np.ndarray | float:
        """The surface over the work-image region [x0, x1) x [y0, y1), at ``shape`` pixels."""
        c0, c1, c2, c3, c4, c5 = self.coeffs
        if not any((c1, c2, c3, c4, c5)):
            return c0
        rows, cols = shape
        u = (x0 + (np.arange(cols, dtype=np.float32) + 0.5) * ((x1 - x0) / cols)) / self.width
        v = (y0 + (np.arange(rows, dtype=np.float32) + 0.5) * ((y1 - y0) / rows)) / self.height
        # Separable evaluation: (c0 + c1 u + c3 u^2) + v (c2 + c4 u) + c5 v^2
        along_u = c0 + u * (c1 + c3 * u)
        slope_v = c2 + c4 * u
        return along_u[None, :] + v[:, None] * slope_v[None, :] + (c5 * v * v)[:, None]


def _lighting(work: np.ndarray, peak: float, small: Image.Image, inverted: bool) -> _Lighting:
    """Fit the lighting of a photo of paper: a quadratic surface through the background.

    A robust least-squares fit on a ~48 px thumbnail: pixels well above the fit (the ink,
    bright here) are dropped and the fit repeated, so strokes of any width do not pull it up.
    A surface that varies by less than a tenth of the ink contrast is replaced by a constant.
    ``work`` is the bright-ink image, ``small`` the same picture as a Pillow image before the
    inversion (if ``inverted``), ``peak`` the blurred ink maximum.
    """
    h, w = work.shape
    constant = float(np.median(_border(work)))
    g = max(1, round(max(h, w) / 48))
    if g == 1:
        thumb = work
    else:
        thumb = np.asarray(small.reduce(g), dtype=np.float32)
        if inverted:
            thumb = 255.0 - thumb
    th, tw = thumb.shape
    if min(th, tw) < 8:  # too small to tell strokes from light
        return _Lighting((constant, 0, 0, 0, 0, 0), w, h)
    design = _design(th, tw)
    values = thumb.reshape(-1).astype(np.float64)
    # Start from the darker half (the ink, bright, is usually a minority), but never from much
    # above the border's level: a digit cropped tight can be more than half ink.
    start = constant + 0.25 * max(peak - constant, MIN_CONTRAST)
    keep = values <= min(float(np.median(values)), start)
    coeffs = np.zeros(6)
    for _ in range(4):
        if keep.sum() < 12:
            return _Lighting((constant, 0, 0, 0, 0, 0), w, h)
        # Weighted normal equations of the 6 unknowns (a 6x6 solve; lstsq is slow to start).
        weighted = design * keep[:, None]
        gram = weighted.T @ design + 1e-9 * np.eye(6)
        coeffs = np.linalg.solve(gram, weighted.T @ values)
        resid = values - design @ coeffs
        spread = 1.4826 * float(np.median(np.abs(resid[keep])))
        keep = resid < 2.5 * max(spread, 1.0)
    surface = design @ coeffs
    if float(surface.max() - surface.min()) < 0.1 * max(peak - constant, MIN_CONTRAST):
        return _Lighting((float(np.median(surface)), 0, 0, 0, 0, 0), w, h)
    return _Lighting(tuple(float(c) for c in coeffs), w, h)


def _noise(residual: np.ndarray) -> float:
    """Robust standard deviation of the paper's grain (and of the lighting fit's errors):
    1.4826 * MAD of the residual, but at most three times the same measured below the fit.

    The ink lies all above the fit (bright), so the pixels at or below it are paper whatever
    the share of ink: a digit cropped tight, its strokes touching every edge, can be half ink
    or more, and the MAD of all pixels is then the ink's contrast, not the grain ("no ink").
    """
    sample = residual[::2, ::2] if residual.size > 4096 else residual
    mad = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))
    below = sample[sample <= 0]
    if below.size < 0.05 * sample.size:  # the fit lies under nearly all the paper
        return mad
    return min(mad, 3.0 * 1.4826 * float(np.median(-below)))


@functools.lru_cache(maxsize=8)
def _design(th: int, tw: int) -> np.ndarray:
    """Design matrix (th*tw, 6) of the quadratic surface at the thumbnail's pixel centres."""
    vv, uu = np.mgrid[0:th, 0:tw].astype(np.float64)
    uu = (uu + 0.5) / tw
    vv = (vv + 0.5) / th
    d = np.stack([np.ones_like(uu), uu, vv, uu * uu, uu * vv, vv * vv], axis=-1).reshape(-1, 6)
    d.flags.writeable = False
    return d


def _without_rules(ink: np.ndarray, noise: float) -> tuple[np.ndarray, bool]:
    """``ink`` with the lines of ruled or squared paper taken out, and whether there were any.

    A rule is a thin band of rows (columns) inked across the whole picture: 95% of each row's
    pixels above the grain. Two or more such bands make ruled paper (one alone may be the bar
    of a 7 cropped tight); each band is replaced by the blend of the rows either side of it,
    so a stroke crossing a rule goes on through it. Bands thicker than about 1.5% of the
    picture (a shadow, a stroke) are left alone.
    """
    found = False
    for axis in (0, 1):
        a = ink if axis == 0 else ink.T
        floor = max(3.0 * noise, MIN_CONTRAST / 2)
        inked = np.percentile(a, 5, axis=1) > floor
        thin = max(2, round(0.015 * a.shape[0]))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], inked.astype(np.int8), [0]])))
        runs = zip(edges[::2], edges[1::2], strict=True)
        bands = [(int(b0), int(b1)) for b0, b1 in runs if b1 - b0 <= thin]
        if len(bands) < 2:
            continue
        a = a.copy()
        for b0, b1 in bands:
            above = a[b0 - 1] if b0 > 0 else a[b1] if b1 < len(a) else np.zeros_like(a[0])
            below = a[b1] if b1 < len(a) else above
            t = (np.arange(b0, b1) - (b0 - 1)) / (b1 - b0 + 1)
            a[b0:b1] = above[None, :] * (1 - t)[:, None] + below[None, :] * t[:, None]
        ink = a if axis == 0 else a.T
        found = True
    return np.ascontiguousarray(ink), found


def _ink_level(ink: np.ndarray, noise: float, smooth: np.ndarray) -> tuple[float, float]:
    """(level, floor): the grey value of solid ink and the noise floor cut below it
    (``smooth`` is the 3x3-blurred ink).

    Raises EngineError if the ink does not stand out from the noise.
    """
    peak = float(smooth.max()) if smooth.size else 0.0
    if peak < max(MIN_CONTRAST, 2.5 * noise):
        raise EngineError(_no_ink(noise))
    inked = ink[ink > 0.5 * peak]
    level = float(np.percentile(inked, 75)) if inked.size else peak
    level = max(level, peak * 0.6)
    floor = max(0.2 * level, 3.0 * noise)
    if floor >= 0.8 * level:
        raise EngineError(_no_ink(noise))
    return level, floor


def _ink_bbox(smooth: np.ndarray, level: float, noise: float) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the ink: pixels of the 3x3-blurred ink ``smooth`` (which averages
    the grain away) above a quarter of the ink level; the ends of the row and column profiles
    holding less than :data:`SPECK_MASS` of the ink are trimmed (specks, dust)."""
    mass = np.where(smooth > max(0.25 * level, 1.5 * noise), smooth, 0.0)
    total = float(mass.sum())
    if total <= 0.0:
        return None
    rows = mass.sum(axis=1)
    cols = mass.sum(axis=0)
    y0, y1 = _trimmed_range(rows, total)
    x0, x1 = _trimmed_range(cols, total)
    return x0, y0, x1, y1


def _trimmed_range(profile: np.ndarray, total: float) -> tuple[int, int]:
    cum = np.cumsum(profile)
    cut = SPECK_MASS * total
    start = int(np.searchsorted(cum, cut, side="right"))
    stop = int(np.searchsorted(cum, total - cut, side="left")) + 1
    nz = np.flatnonzero(profile)
    start = max(start, int(nz[0]))
    stop = min(max(stop, start + 1), int(nz[-1]) + 1)
    return start, stop


def _scale_bbox(
    bbox: tuple[int, int, int, int], factor: int, w: int, h: int
) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = bbox
    return x0 * factor, y0 * factor, min(w, x1 * factor), min(h, y1 * factor)


def _full_res_crop(
    gray: np.ndarray,
    bbox: tuple[int, int, int, int],
    lighting: _Lighting,
    factor: int,
    inverted: bool,
) -> tuple[np.ndarray, int]:
    """The ink region (plus one low-resolution pixel of margin) at up to 4x the box size,
    with the same polarity and lighting as the low-resolution copy, and the reduction used."""
    h, w = gray.shape
    x0, y0, x1, y1 = bbox
    x0, y0 = max(0, x0 - factor), max(0, y0 - factor)
    x1, y1 = min(w, x1 + factor), min(h, y1 + factor)
    region = Image.fromarray(gray[y0:y1, x0:x1])
    reduce = max(1, max(x1 - x0, y1 - y0) // (4 * BOX))
    if reduce > 1:
        region = region.reduce(reduce)
    crop = np.asarray(region, dtype=np.float32)
    if inverted:
        crop = 255.0 - crop
    field = lighting.sample(x0 / factor, y0 / factor, x1 / factor, y1 / factor, crop.shape)
    return crop - field, reduce


def _stretch(ink: np.ndarray, level: float, floor: float) -> np.ndarray:
    """Map ``floor -> 0`` and ``level -> 255`` (clipped): paper black, solid ink white."""
    out = (ink - np.float32(floor)) * np.float32(255.0 / (level - floor))
    return np.clip(out, 0.0, 255.0).astype(np.uint8)


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Resize so the longer side is :data:`BOX` pixels, keeping the aspect ratio; a pen much
    thinner than MNIST's is thickened first (see :func:`_thicken`)."""
    fine = _resize_longest(crop, FINE)
    thick = _thicken(fine)
    if thick is not fine:
        ys, xs = np.nonzero(thick)
        thick = thick[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return _resize_longest(thick, BOX)


def _resize_longest(a: np.ndarray, side: int) -> np.ndarray:
    """Anti-aliased (Lanczos) resize of a uint8 image so its longer side is ``side``."""
    h, w = a.shape
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.LANCZOS))


def stroke_width(a: np.ndarray, level: int = 128) -> float:
    """Mean stroke width in pixels of the ink above ``level``: ``2 * area / perimeter``
    (a stroke of width w and length L has area w*L and perimeter about 2L).

    MNIST's digits measure 1.84 px (median; 10% below 1.36, 10% above 2.59)."""
    m = a >= level
    area = int(m.sum())
    edges = (
        int((m[:, 1:] != m[:, :-1]).sum())
        + int((m[1:] != m[:-1]).sum())
        + int(m[:, 0].sum())
        + int(m[:, -1].sum())
        + int(m[0].sum())
        + int(m[-1].sum())
    )
    return 2.0 * area / edges if edges else 0.0


def _thicken(fine: np.ndarray) -> np.ndarray:
    """Widen strokes thinner than :data:`MIN_PEN` (in 20x20-box pixels) towards
    :data:`TARGET_PEN`, by a grey max filter at the fine scale: a thin pen on a big canvas
    would otherwise become a one-pixel hairline, which MNIST never has.

    Continuous in the measured width ``w``: the new width is
    ``TARGET_PEN - (TARGET_PEN - MIN_PEN) * w / MIN_PEN`` (``MIN_PEN`` at ``w = MIN_PEN``),
    reached by blending towards the next odd-sized dilation.
    """
    scale = FINE / BOX
    width = stroke_width(fine) / scale
    if width <= 0 or width >= MIN_PEN:
        return fine
    wanted = TARGET_PEN - (TARGET_PEN - MIN_PEN) * width / MIN_PEN
    grow = (wanted - width) * scale  # fine pixels to add across the stroke
    size = 1 + 2 * math.ceil(grow / 2)
    # Grow the canvas first so the widened ink is not cut at the crop's edge.
    padded = np.pad(fine, size // 2).astype(np.float32)
    dilated = _max_filter(padded, size)
    out = padded + np.float32(grow / (size - 1)) * (dilated - padded)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _max_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation by a size x size square (odd size), zero outside; separable: rows, then
    columns, each a running maximum over ``size`` shifted views."""
    pad = size // 2
    h, w = a.shape
    p = np.pad(a, pad)
    rows = p[0:h]
    for k in range(1, size):
        rows = np.maximum(rows, p[k : k + h])
    out = rows[:, 0:w]
    for k in range(1, size):
        out = np.maximum(out, rows[:, k : k + w])
    return out


def _place_by_mass(patch: np.ndarray) -> np.ndarray:
    """Put the patch in a 28x28 black field so its centre of mass lands on :data:`CENTER`."""
    ph, pw = patch.shape
    weights = patch.astype(np.float32)
    total = float(weights.sum())
    if total > 0:
        cy = float(weights.sum(axis=1) @ np.arange(ph)) / total
        cx = float(weights.sum(axis=0) @ np.arange(pw)) / total
    else:
        cy, cx = (ph - 1) / 2, (pw - 1) / 2
    top = min(max(round(CENTER[0] - cy), 0), SIZE - ph)
    left = min(max(round(CENTER[1] - cx), 0), SIZE - pw)
    out = np.zeros((SIZE, SIZE), dtype=np.uint8)
    out[top : top + ph, left : left + pw] = patch
    return out


def _fit_whole(field: np.ndarray) -> np.ndarray:
    """The whole picture scaled (aspect kept) into the 28x28 field, centred: no crop."""
    fh, fw = field.shape
    s = SIZE / max(fh, fw)
    size = (max(1, round(fw * s)), max(1, round(fh * s)))
    small = np.asarray(Image.fromarray(field).resize(size, Image.Resampling.LANCZOS))
    out = np.zeros((SIZE, SIZE), dtype=np.uint8)
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    return out

"""A sheet of paper photographed on a darker desk: the desk around the sheet made paper.

A phone photo of a handwritten digit rarely shows only paper: the desk (or the table, or a
dark cover) shows along one or more edges. Digit preparation and reading both decide the
polarity from the border of the picture and take what differs from the paper as ink, so a
dark frame around the sheet turns the whole picture upside down (the sheet becomes "ink").
:func:`fill_surround` finds such a frame and paints it with the paper's own level, continued
from the sheet, so the rest of the pipeline sees a sheet filling the picture.

The test, on a ~96-pixel thumbnail (3x3 blurred): Otsu's threshold splits bright from dark;
the *surround* is the dark region connected to the picture's edge (4-connected). It is a frame
around a sheet when

* it covers at least :data:`MIN_EDGE` of the picture's edge (ink touching the edge covers a
  few percent) and :data:`MIN_AREA`..:data:`MAX_AREA` of the picture (a white-on-black
  drawing's background is most of it: no frame);
* what it encloses is mostly bright (:data:`MIN_PAPER`): a sheet with sparse ink on it, not
  the strokes of a white digit;
* what it encloses is convex along every row and column (:data:`MAX_DENT`), as a sheet seen
  at any angle is, where the dark parts of a scene (a photo) make dents;
* dark ink lies on the sheet apart from it (:data:`MIN_INK`): a thick digit cropped tight
  touches the edges with all its ink, and is no frame;
* that ink is strokes, thin beside the sheet (:data:`MAX_INK_WIDTH`): a bold white digit
  cropped tight on black is a "sheet" in a dark frame too, but its holes are blobs;
* where it meets the picture's edge it lies at least :data:`MIN_STEP` grey levels below the
  paper's level continued there (90% of those pixels): a step down from the sheet to the
  desk, where shade (vignetting, a shadow) fades gradually from the paper next to it.

The frame (grown by one thumbnail pixel to cover the sheet's shaded edge) gets the paper's
level: each frame pixel takes the mean of its known neighbours, ring by ring from the sheet
(the paper's lighting gradient continues), and that field is scaled up bilinearly.

Known limitations: ink touching the sheet's edge where the desk shows is painted over with
it, and so is a piece of a digit touching the picture's edge when another piece lies apart;
a bright frame around a dark board (chalk) is not recognised.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from engine.imageops import box_blur3, otsu_threshold

__all__ = [
    "MAX_AREA",
    "MAX_DENT",
    "MAX_INK_WIDTH",
    "MIN_AREA",
    "MIN_EDGE",
    "MIN_INK",
    "MIN_PAPER",
    "MIN_STEP",
    "fill_surround",
]

#: Longest side of the thumbnail the frame is found on.
THUMB = 96
#: Grey levels between the desk (at the picture's edge) and the paper (at least).
MIN_STEP = 48.0
#: Fraction of the picture's edge pixels the frame covers (at least).
MIN_EDGE = 0.12
#: Fraction of the picture the frame covers.
MIN_AREA = 0.03
MAX_AREA = 0.6
#: Fraction of bright (paper) pixels inside the frame (at least).
MIN_PAPER = 0.85
#: Stroke width of the ink on the sheet, over the side of the sheet (at most).
MAX_INK_WIDTH = 0.085
#: How far from convex what the frame encloses may be (see :func:`_dents`).
MAX_DENT = 0.05
#: Fraction of the picture that is dark but not the frame: ink on the sheet (at least).
MIN_INK = 0.003


def fill_surround(gray: np.ndarray) -> np.ndarray:
    """``gray`` (uint8 or float32 (H, W)) with a dark frame around a sheet of paper painted
    the paper's level (see the module docstring); ``gray`` itself when there is none."""
    h, w = gray.shape
    f = max(1, math.ceil(max(h, w) / THUMB))
    if min(h, w) // f < 16:
        return gray
    as_bytes = gray if gray.dtype == np.uint8 else np.clip(gray, 0, 255).astype(np.uint8)
    pil = Image.fromarray(np.ascontiguousarray(as_bytes))
    thumb = box_blur3(np.asarray(pil.reduce(f) if f > 1 else pil, dtype=np.float32))
    frame = _frame(thumb)
    if frame is None:
        return gray
    field = _paper_field(thumb, frame)
    # A desk is a step below the paper next to it all along the edge; shade (vignetting, a
    # shadow) fades from the paper, so much of it lies just below the paper's level.
    if float(np.percentile(_edge(field - thumb)[_edge(frame)], 10)) < MIN_STEP:
        return gray
    # the frame grown by one thumbnail pixel: the sheet's edge is shaded
    mask = np.repeat(np.repeat(_grow(frame), f, axis=0), f, axis=1)[:h, :w]
    up = np.asarray(
        Image.fromarray(field, mode="F").resize(
            (thumb.shape[1] * f, thumb.shape[0] * f), Image.Resampling.BILINEAR
        ),
        dtype=np.float32,
    )[:h, :w]
    out = gray.copy()
    out[mask] = up[mask] if gray.dtype != np.uint8 else np.clip(up[mask] + 0.5, 0, 255)
    return out


def _frame(thumb: np.ndarray) -> np.ndarray | None:
    """bool mask of the dark frame around a sheet on the thumbnail, or None."""
    threshold = otsu_threshold(thumb / 255.0) * 255.0
    bright = thumb > threshold
    if bright.all() or not bright.any():
        return None
    frame = _reached_from_edge(~bright)
    area = float(frame.mean())
    if not MIN_AREA <= area <= MAX_AREA or float(bright[~frame].mean()) < MIN_PAPER:
        return None
    ink = ~bright & ~frame
    if float(ink.mean()) < MIN_INK:  # all the dark touches the edge: ink
        return None
    if _width(ink) > MAX_INK_WIDTH * math.sqrt(float((~frame).sum())):
        return None  # blobs, not strokes: the holes of a bold white digit cropped tight
    if _dents(~frame) > MAX_DENT:  # not a sheet: the dark parts of a scene
        return None
    on_edge = _edge(frame)
    if float(on_edge.mean()) < MIN_EDGE:
        return None
    return frame


def _width(mask: np.ndarray) -> float:
    """Mean stroke width of ``mask`` in pixels: ``2 * area / perimeter`` (4-neighbour edges,
    the picture's edge counting as one)."""
    p = np.pad(mask, 1)
    edges = int((p[1:] != p[:-1]).sum()) + int((p[:, 1:] != p[:, :-1]).sum())
    return 2.0 * int(mask.sum()) / max(1, edges)


def _dents(region: np.ndarray) -> float:
    """How far ``region`` (bool) is from convex, along rows and columns: the pixels missing
    between each row's (column's) first and last pixel of it, over its area (0: every row
    and column one run, as a sheet seen at any angle)."""
    missing = 0
    for m in (region, region.T):
        has = m.any(axis=1)
        first = np.argmax(m, axis=1)
        last = m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1)
        missing += int(((last - first + 1) - m.sum(axis=1))[has].sum())
    return missing / max(1, int(region.sum()))


def _edge(a: np.ndarray) -> np.ndarray:
    """The values of the outermost ring of pixels of ``a``."""
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def _reached_from_edge(region: np.ndarray) -> np.ndarray:
    """The pixels of ``region`` (bool) 4-connected to the picture's edge through ``region``."""
    reached = np.zeros_like(region)
    reached[0], reached[-1] = region[0], region[-1]
    reached[:, 0] |= region[:, 0]
    reached[:, -1] |= region[:, -1]
    while True:
        grow = reached.copy()
        grow[1:] |= reached[:-1]
        grow[:-1] |= reached[1:]
        grow[:, 1:] |= reached[:, :-1]
        grow[:, :-1] |= reached[:, 1:]
        grow &= region
        if np.array_equal(grow, reached):
            return reached
        reached = grow


def _paper_field(thumb: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """float32 thumbnail: the paper where it is known (bright, two pixels or more from the
    frame: the sheet's edge is shaded), continued into the rest ring by ring (each new pixel
    the mean of its known 3x3 neighbours)."""
    threshold = otsu_threshold(thumb / 255.0) * 255.0
    near = frame
    for _ in range(2):
        near = _grow(near)
    known = (thumb > threshold) & ~near
    values = np.where(known, thumb, 0.0).astype(np.float32)
    while not known.all():
        total = _sum3(values)
        count = _sum3(known.astype(np.float32))
        new = ~known & (count > 0)
        if not new.any():
            break
        values[new] = total[new] / count[new]
        known |= new
    return values


def _grow(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel (4-connected)."""
    p = np.pad(mask, 1)
    return mask | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]


def _sum3(a: np.ndarray) -> np.ndarray:
    """3x3 sum of each pixel's neighbourhood (zero outside)."""
    p = np.pad(a, 1)
    rows = p[:-2] + p[1:-1] + p[2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]

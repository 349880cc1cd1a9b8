"""Reading a number: split an image of several digits into digits and read them left to right.

LeNet's original job was reading ZIP codes. The steps, each a small function:

1. :func:`ink_map` - ink strength 0..1 per pixel, whatever the polarity and the lighting: the
   paper's level is estimated by a grey closing of a thumbnail (:func:`paper_level`, for phone
   photos under uneven light), ink is the distance from it, and Otsu's threshold on that
   distance separates ink from paper (a desk around the sheet made paper first: engine.paper).
2. :func:`label_components` - 8-connected components of the ink mask, found on *runs* (horizontal
   stretches of ink) with a union-find, so the Python loop is over runs, not pixels.
3. :func:`segment_digits` - merge the broken pieces of one digit (the bar and the body of a 5,
   a 4 written in two strokes: pieces that overlap horizontally), drop specks, split touching
   digits (a piece much wider than a digit is cut at the columns with the least ink near the
   expected digit boundaries: a vertical-projection minimum) and order the digits left to right.
4. :func:`read_digits` - each digit (its own ink only, white on black) goes through
   :func:`engine.preprocess.prepare_digit` and the model. Where the cut of touching digits is
   uncertain, :func:`segment_candidates` offers several cuts and the network picks: the
   reading whose confidences have the highest geometric mean wins (by :data:`SWITCH_MARGIN`
   over the projection-minimum cut). All candidates go through the network in one batch.

Large images are segmented on a block-averaged copy (at most ``max_side`` pixels a side) for
speed; boxes are given in the original image's pixels. Known limitations: digits must stand in
one row; a digit broken into pieces side by side (not overlapping) reads as two digits; heavy
slant makes touching digits hard to cut with vertical lines.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine.errors import EngineError
from engine.imageops import otsu_threshold, to_gray, window_filter
from engine.paper import fill_surround
from engine.preprocess import classify_images, ink_extremes, prepare_digit

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive

#: How much higher (in mean log-confidence) another way of cutting a group must score than the
#: first one for :func:`read_digits` to prefer it (0.25 = a geometric mean 28 % higher).
SWITCH_MARGIN = 0.25
#: Components smaller than this fraction of the largest one are specks (dust, JPEG noise).
SPECK_FRACTION = 0.02
#: More pieces of ink than this is clutter (a photo, a page of text), not a row of digits.
MAX_GROUPS = 40
#: An image with more of its area "ink" than this is a photo or texture, not ink on paper.
MAX_INK_FRACTION = 0.4
#: Why an image gave no digits (``convscope read`` reports it as a failed file).
NO_DIGITS = (
    "no digits found: the image is blank, or its marks are too faint or too small to be "
    "digits; use an image with a row of clearly visible digits"
)


@dataclass(frozen=True)
class Segment:
    box: Box  # in the original image's pixels
    mask: np.ndarray  # bool (y1-y0, x1-x0): this digit's own ink inside the box


@dataclass(frozen=True)
class ReadDigit:
    box: Box
    prediction: str  # class name
    confidence: float  # its probability
    probabilities: np.ndarray  # (K,)
    image: np.ndarray  # uint8 (28, 28): what the network saw

    def to_json(self) -> dict:
        return {
            "box": list(self.box),
            "prediction": self.prediction,
            "confidence": round(self.confidence, 6),
        }


@dataclass(frozen=True)
class Reading:
    text: str  # the predictions joined left to right
    digits: list[ReadDigit] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"text": self.text, "digits": [d.to_json() for d in self.digits]}

    def looks_like_a_number(self) -> bool:
        """Two or more digits in a row, of similar height, read with confidence.

        Neighbours overlapping by at most a quarter of the narrower one, heights within a factor
        2 of their median, vertical centres within 0.6 median heights of theirs, and a geometric
        mean confidence of at least 0.8: a photo's blobs rarely pass.
        """
        if len(self.digits) < 2:
            return False
        heights = np.array([d.box[3] - d.box[1] for d in self.digits], dtype=np.float64)
        centres = np.array([(d.box[1] + d.box[3]) / 2 for d in self.digits])
        h = float(np.median(heights))
        confident = np.exp(np.mean(np.log([max(d.confidence, 1e-9) for d in self.digits])))
        overlaps = [
            (min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
            / min(a.box[2] - a.box[0], b.box[2] - b.box[0])
            for a, b in itertools.pairwise(self.digits)
        ]
        return bool(
            max(overlaps) <= 0.25
            and heights.max() <= 2 * h
            and heights.min() >= h / 2
            and np.abs(centres - np.median(centres)).max() <= 0.6 * h
            and confident >= 0.8
        )


# ----- 1. ink -------------------------------------------------------------------------------
def ink_map(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ink float32 0..1, mask bool) of a gray image, dark-on-light or light-on-dark.

    The polarity: whichever extreme (darkest or brightest,
    :func:`engine.preprocess.ink_extremes`, as a single digit is prepared) lies further from the
    background is the ink. The paper under uneven light (a phone photo) is estimated by
    :func:`paper_level`; ink is the distance from it in the ink's direction, scaled so that a
    high percentile of the inked pixels is 1. Otsu's threshold (at least 0.25) makes the mask.
    """
    level, lo, hi = ink_extremes(gray)  # a number a few percent of a photo's width counts
    dark = level - lo > hi - level
    if max(level - lo, hi - level) < 8:  # no contrast: blank paper
        return np.zeros_like(gray, dtype=np.float32), np.zeros(gray.shape, dtype=bool)
    paper = paper_level(gray, dark)
    ink = (paper - gray) if dark else (gray - paper)
    np.maximum(ink, 0, out=ink)
    strong = ink[ink > 0.25 * float(ink.max())]
    top = float(np.percentile(strong, 90)) if strong.size else float(ink.max())
    ink = np.minimum(ink / max(top, 1.0), 1.0).astype(np.float32)
    threshold = max(otsu_threshold(ink), 0.25)
    return ink, ink > threshold


def paper_level(gray: np.ndarray, dark_ink: bool) -> np.ndarray:
    """float32 (H, W): the brightness of the paper under the ink, for uneven light.

    A grey *closing* (dark ink: max filter, then min filter) of a ~64-pixel thumbnail with a
    window a sixth of its side erases strokes thinner than the window and keeps the slowly
    varying paper; it is box-blurred and scaled back up bilinearly. When that leaves almost no
    ink (strokes as wide as the window: a bold digit filling the picture), the border median is
    used instead, as for evenly lit scans.
    """
    h, w = gray.shape
    f = max(1, -(-max(h, w) // 64))
    thumb = _blocks(gray, f).mean(axis=(1, 3))
    hh, ww = thumb.shape
    k = max(3, (max(hh, ww) // 6) | 1)
    if dark_ink:
        field = window_filter(window_filter(thumb, k, np.max), k, np.min)
    else:
        field = window_filter(window_filter(thumb, k, np.min), k, np.max)
    field = window_filter(field, k, np.mean)
    up = np.asarray(
        Image.fromarray(field.astype(np.float32), mode="F").resize(
            (w, h), Image.Resampling.BILINEAR
        ),
        dtype=np.float32,
    )
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    flat = np.full_like(up, float(np.median(border)))
    ink_flat = (flat - gray) if dark_ink else (gray - flat)
    ink_up = (up - gray) if dark_ink else (gray - up)
    if float(np.maximum(ink_up, 0).max()) < 0.5 * float(np.maximum(ink_flat, 0).max()):
        return flat
    return up


def _blocks(a: np.ndarray, f: int) -> np.ndarray:
    """``a`` (H, W) as ``f x f`` blocks: shape (ceil(H/f), f, ceil(W/f), f). The last row and
    column of blocks are completed by repeating the edge, so a strip thinner than ``f`` pixels
    (a 640x9 picture) still makes one row of blocks."""
    h, w = a.shape
    hh, ww = -(-h // f), -(-w // f)
    if (hh * f, ww * f) != (h, w):
        a = np.pad(a, ((0, hh * f - h), (0, ww * f - w)), mode="edge")
    return a.reshape(hh, f, ww, f)


# ----- 2. connected components --------------------------------------------------------------
def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of ``mask`` (H, W): (labels int32 (H, W), 0 = none, count).

    Labels are 1..count in order of first appearance (row-major).
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)  # run r: row rows[r], columns starts[r]..ends[r]-1
    _, ends = np.nonzero(d == -1)
    n = rows.size
    labels = np.zeros((h, w), dtype=np.int32)
    if n == 0:
        return labels, 0
    # Runs a (row y) and b (row y+1) touch, 8-connected, when b.start <= a.end and b.end >= a.start
    # (ends exclusive). Row-major keys make one searchsorted find every such b for every a.
    width = w + 2
    start_key, end_key = rows * width + starts, rows * width + ends
    lo = np.searchsorted(end_key, (rows + 1) * width + starts, side="left")
    hi = np.searchsorted(start_key, (rows + 1) * width + ends, side="right")
    counts = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), counts)
    b = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)])
    _, run_label = np.unique(roots, return_inverse=True)  # roots ascend with first appearance
    lengths = ends - starts
    flat = np.repeat(rows * w + starts - np.cumsum(lengths) + lengths, lengths)
    flat += np.arange(lengths.sum())
    labels.ravel()[flat] = np.repeat(run_label + 1, lengths)
    return labels, int(run_label.max()) + 1


# ----- 3. segmentation ----------------------------------------------------------------------
@dataclass
class _Group:
    x0: int
    y0: int
    x1: int
    y1: int
    ids: list[int]
    area: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def _merge_pieces(groups: list[_Group]) -> list[_Group]:
    """Merge the pieces of one digit: pieces nested or stacked (overlapping horizontally by at
    least half the narrower one), pieces that touch horizontally and together are no wider than
    a digit (a 4 in two strokes), and small pieces (the bar of a 5) next to a digit."""
    tallest = max(g.height for g in groups)
    line = float(np.median([g.height for g in groups if g.height >= 0.5 * tallest]))
    groups = sorted(groups, key=lambda g: g.x0)
    merged = True
    while merged and len(groups) > 1:
        merged = False
        pairs = [(i, j) for i in range(len(groups)) for j in range(i + 1, len(groups))]
        for i, j in sorted(pairs, key=lambda ij: _distance(groups[ij[0]], groups[ij[1]])):
            a, b = groups[i], groups[j]
            overlap = min(a.x1, b.x1) - max(a.x0, b.x0)
            union = max(a.x1, b.x1) - min(a.x0, b.x0)
            small = min(a.height, b.height) < 0.45 * line
            if (
                overlap >= 0.5 * min(a.width, b.width)
                or (overlap > 0 and union <= 0.9 * line)
                or (small and overlap > -0.15 * line and union <= 1.1 * line)
            ):
                groups[i] = _Group(
                    min(a.x0, b.x0),
                    min(a.y0, b.y0),
                    max(a.x1, b.x1),
                    max(a.y1, b.y1),
                    a.ids + b.ids,
                    a.area + b.area,
                )
                del groups[j]
                merged = True
                break
    return groups


def _distance(a: _Group, b: _Group) -> float:
    """Gap between two boxes (negative when they overlap horizontally)."""
    return max(a.x0, b.x0) - min(a.x1, b.x1)


def _cuts(profile: np.ndarray, pieces: int) -> list[int]:
    """Columns where to cut a ``profile`` (ink per column) into ``pieces``: the least ink
    within a quarter digit width of each ideal cut, the nearest column on ties."""
    width = profile.size
    step = width / pieces
    cuts = []
    for i in range(1, pieces):
        ideal = i * step
        lo, hi = max(1, int(ideal - step / 4)), min(width - 1, int(ideal + step / 4) + 1)
        window = profile[lo:hi]
        if window.size == 0:  # a group only a few columns wide: cut at the ideal column
            cuts.append(min(max(1, round(ideal)), max(1, width - 1)))
            continue
        candidates = np.flatnonzero(window == window.min()) + lo
        cuts.append(int(candidates[np.argmin(np.abs(candidates - ideal))]))
    return cuts


def segment_digits(
    image: np.ndarray, *, max_side: int = 600, aspect_split: float = 1.25, neck_ratio: float = 0.6
) -> list[Segment]:
    """The digits of ``image`` (uint8 gray/RGB/RGBA), left to right, as :class:`Segment`s.

    A group wider than ``aspect_split`` times its height (or than 1.6 typical digit widths of
    this image, a typical width being at least 0.7 line heights) is taken as touching digits
    and cut at projection minima; a lone group barely too wide only at a neck: a column holding
    at most ``neck_ratio`` times the median ink of its columns.
    """
    groups = segment_candidates(
        image, max_side=max_side, aspect_split=aspect_split, neck_ratio=neck_ratio
    )
    return [segment for candidates in groups for segment in candidates[0]]


def segment_candidates(
    image: np.ndarray, *, max_side: int = 600, aspect_split: float = 1.25, neck_ratio: float = 0.6
) -> list[list[list[Segment]]]:
    """Per group of ink, left to right, the ways to read it: lists of segments.

    The first way is :func:`segment_digits`'s choice. A group taken as touching digits also
    offers other cuts (for two digits: cuts swept over the middle 40 % of its width; for more:
    one digit fewer or more) and, when it was ambiguous, not cutting at all, so that
    :func:`read_digits` can let the classifier choose the most convincing reading.
    """
    return _segment(
        to_gray(image, alpha="white", dtype=np.float32), max_side, aspect_split, neck_ratio
    )[0]


def _segment(
    gray: np.ndarray, max_side: int, aspect_split: float, neck_ratio: float
) -> tuple[list[list[list[Segment]]], np.ndarray, int]:
    """:func:`segment_candidates` of a gray image, with the ink map it made and its scale."""
    h, w = gray.shape
    factor = max(1, -(-max(h, w) // max_side))
    small = gray
    if factor > 1:  # block mean: a cheap, alias-free reduction
        small = _blocks(gray, factor).mean((1, 3))
    ink, mask = ink_map(small)
    if mask.mean() > MAX_INK_FRACTION:  # a photo or a texture, not ink on paper
        return [], ink, factor
    labels, count = label_components(mask)
    if count == 0:
        return [], ink, factor
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs] - 1
    areas = np.bincount(lab, minlength=count)
    kept = np.flatnonzero(areas >= SPECK_FRACTION * areas.max())  # specks go before merging
    if kept.size > MAX_GROUPS:  # clutter, not a row of digits
        return [], ink, factor
    big = np.isin(lab, kept)
    ys, xs, lab = ys[big], xs[big], lab[big]
    left, top = np.full(count, mask.shape[1]), np.full(count, mask.shape[0])
    right, bottom = np.zeros(count, np.int64), np.zeros(count, np.int64)
    np.minimum.at(left, lab, xs)
    np.minimum.at(top, lab, ys)
    np.maximum.at(right, lab, xs)
    np.maximum.at(bottom, lab, ys)
    groups = [
        _Group(
            int(left[i]),
            int(top[i]),
            int(right[i]) + 1,
            int(bottom[i]) + 1,
            [int(i) + 1],
            int(areas[i]),
        )
        for i in kept
    ]
    groups = _merge_pieces(groups)
    biggest = max(g.area for g in groups)
    tallest = max(g.height for g in groups)
    groups = [g for g in groups if g.area >= 0.03 * biggest or g.height >= 0.4 * tallest]
    line = float(np.median([g.height for g in groups if g.height >= 0.5 * tallest]))
    narrow = [g.width for g in groups if g.width <= aspect_split * g.height]
    typical = max(float(np.median(narrow)), 0.7 * line) if narrow else 0.8 * line
    result: list[list[list[Segment]]] = []
    for g in sorted(groups, key=lambda g: g.x0):
        own = np.isin(labels[g.y0 : g.y1, g.x0 : g.x1], g.ids)
        ways: list[list[int]] = [[]]  # the cut columns of each way to split g
        if g.width > aspect_split * g.height or (len(groups) > 1 and g.width > 1.6 * typical):
            profile = own.sum(axis=0)
            pieces = max(2, round(g.width / typical))
            cuts = _cuts(profile, pieces)
            if g.width <= 1.4 * g.height and len(groups) == 1:
                # barely too wide and nothing to compare with: cut only at a neck, a column with
                # far less ink than the typical one (a wide 0 or 2 has none)
                neck = neck_ratio * float(np.median(profile[profile > 0]))
                cuts = [c for c in cuts if profile[c] <= neck]
                ways = [cuts] if cuts else [[], *([c] for c in _sweep(g.width))]
            elif pieces == 2:
                ways = [cuts, *([c] for c in _sweep(g.width) if c != cuts[0])]
            else:
                ways = [cuts, _cuts(profile, pieces - 1), _cuts(profile, pieces + 1)]
        elif g.width > 1.15 * typical or g.width > g.height:
            # perhaps two touching digits after all (a narrow one, like 1): let the network judge
            ways = [[], *([c] for c in _sweep(g.width))]
        candidates = []
        for cuts in ways:
            segments = []
            for c0, c1 in itertools.pairwise([0, *cuts, g.width]):
                part = np.zeros_like(own)
                part[:, c0:c1] = own[:, c0:c1]
                segment = _full_resolution(part, g.x0, g.y0, factor, gray.shape)
                if segment is not None:
                    segments.append(segment)
            candidates.append(segments)
        result.append(candidates)
    return result, ink, factor


def _sweep(width: int, steps: int = 9) -> list[int]:
    """Cut columns spread over the middle 40 % of a group ``width`` columns wide."""
    return sorted({int(width * f + 0.5) for f in np.linspace(0.3, 0.7, steps)})


def _full_resolution(
    part: np.ndarray, x0: int, y0: int, factor: int, shape: tuple[int, int]
) -> Segment | None:
    """The piece's mask in original pixels: blocks grown by one (anti-aliased edges), trimmed."""
    if not part.any():
        return None
    grown = part.copy()
    grown[1:] |= part[:-1]
    grown[:-1] |= part[1:]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    rows, cols = np.nonzero(grown)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    mask = np.repeat(np.repeat(grown[r0:r1, c0:c1], factor, axis=0), factor, axis=1)
    bx0, by0 = (x0 + c0) * factor, (y0 + r0) * factor
    bx1, by1 = min(shape[1], bx0 + mask.shape[1]), min(shape[0], by0 + mask.shape[0])
    return Segment((int(bx0), int(by0), int(bx1), int(by1)), mask[: by1 - by0, : bx1 - bx0])


# ----- 4. reading ---------------------------------------------------------------------------
def digit_crop(ink_full: np.ndarray, segment: Segment) -> np.ndarray:
    """uint8 white-on-black image of the segment's own ink (``ink_full`` 0..1 of the whole
    image, from :func:`ink_map`), with a margin of black."""
    x0, y0, x1, y1 = segment.box
    strength = ink_full[y0:y1, x0:x1] * segment.mask
    margin = max(2, (max(x1 - x0, y1 - y0)) // 8)
    crop = np.zeros((y1 - y0 + 2 * margin, x1 - x0 + 2 * margin), dtype=np.uint8)
    crop[margin:-margin, margin:-margin] = np.round(strength * 255).astype(np.uint8)
    return crop


def read_digits(model, image: np.ndarray, *, max_side: int = 600) -> Reading:
    """Read the digits of ``image`` (uint8) with ``model``, left to right.

    Ink below a tenth of the strongest stroke is treated as paper (JPEG noise, paper texture).
    """
    gray = fill_surround(to_gray(image, alpha="white", dtype=np.float32))
    groups, ink, factor = _segment(gray, max_side, 1.25, 0.6)
    if not groups:
        return Reading("", [])
    if factor > 1:  # the crops are cut from the full-resolution picture
        ink, _ = ink_map(gray)
    ink = np.where(ink > 0.1, ink, 0).astype(np.float32)
    # every segment of every candidate reading goes through the network in one batch
    flat = [(gi, ci, s) for gi, cands in enumerate(groups) for ci, c in enumerate(cands) for s in c]
    kept, prepared = [], []
    for item in flat:
        try:
            digit = prepare_digit(digit_crop(ink, item[2]), auto_invert=False, center=True)
        except EngineError:  # too faint to be a digit after all
            continue
        kept.append(item)
        prepared.append(digit.image)
    if not kept:
        return Reading("", [])
    probs = classify_images(model, prepared)
    classes = [str(c) for c in model.classes]
    by_candidate: dict[tuple[int, int], list[ReadDigit]] = {}
    for (gi, ci, segment), picture, p in zip(kept, prepared, probs, strict=True):
        k = int(np.argmax(p))
        by_candidate.setdefault((gi, ci), []).append(
            ReadDigit(segment.box, classes[k], float(p[k]), p.copy(), picture)
        )
    digits: list[ReadDigit] = []
    for gi, cands in enumerate(groups):
        readings = [by_candidate.get((gi, ci), []) for ci in range(len(cands))]
        # the most convincing reading: the highest mean log-confidence (geometric mean)
        scores = [
            np.mean([np.log(max(d.confidence, 1e-9)) for d in r]) if r else -np.inf
            for r in readings
        ]
        best = int(np.argmax(scores))
        # another reading must be clearly more convincing than the first (the default) one
        digits.extend(readings[best if scores[best] > scores[0] + SWITCH_MARGIN else 0])
    return Reading("".join(d.prediction for d in digits), digits)

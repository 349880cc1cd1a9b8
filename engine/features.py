"""What each layer learned (the article's Figure 17): top dataset patches and synthesised inputs.

:func:`top_patches` runs a dataset through the network up to one node (a map: a convolution,
an activation, a pool...) and keeps, for every channel (filter) of that node, the ``k`` images
whose strongest response (the maximum over positions) is highest, with the crop of the input
that the winning unit sees: its receptive field (``engine.graph_layout``), cut from the image as
the network sees it (MNIST's 28x28 centred on the 32x32 input; outside the image is pixel 0).

:func:`synthesize` (and :func:`synthesize_all`, every channel, in batches of
:data:`SYNTHESIS_BATCH`) starts from seeded noise and climbs the gradient of one channel's
centre unit (or one class score, when the node is the network's output) with respect to the
input, in evaluation mode (BatchNorm uses its running statistics). Each step shifts the image
by a random jitter before the pass (at most a quarter of the unit's receptive field: none for a
3x3 field, whose pattern a 2-pixel shift would move out of it) and, every few steps, blurs it a
little: both keep the picture from turning into high-frequency noise.

Both are generators of :class:`engine.progress.Progress` events that check ``control.cancelled``
between batches or steps; the last item they yield is the result (nothing more when cancelled).
They run on replicas of the layers (shared weights, private buffers and gradients), so they may
run while another thread trains the model. Every convolution in turn, with the disk cache:
:func:`engine.feature_layers.every_layer`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import executor
from engine.errors import ShapeError
from engine.graph_layout import Field, describe_model
from engine.inference import not_finite
from engine.progress import Cancellable, Progress
from engine.visualize import image_grid

INPUT = "input"
#: Images synthesised in one batch: a node of thousands of units (a flatten) makes thousands
#: of images, climbed this many at a time so the memory stays that of one batch.
SYNTHESIS_BATCH = 64
#: The most images one synthesis grows (every family member's widest node has 1,024 units):
#: a flatten of 65,536 units made a grid half a million pixels tall.
MAX_SYNTHESES = 1024
#: The most patches one filter's row may hold: a row of 9 is the article's; 2,000 made a grid
#: 100,000 pixels wide (gigabytes to draw, and no viewer opens it).
MAX_PATCHES = 100
#: The most gradient steps one synthesis climbs: 128 is the default and 1,000 changes little;
#: a billion ran for days and first asked 16 GB for the jitter of every step.
MAX_SYNTHESIS_STEPS = 10_000


# ----- the network up to one node --------------------------------------------------------------


class _Probe:
    """The part of ``model`` that computes ``nodes`` (one name or several): replicas of their
    ancestors and one plan that runs them all."""

    def __init__(self, model, nodes: str | Sequence[str]) -> None:
        targets = [nodes] if isinstance(nodes, str) else list(nodes)
        needed: set[str] = set()
        todo = list(targets)
        while todo:
            n = todo.pop()
            if n == INPUT or n in needed:
                continue
            if n not in model.nodes:
                raise ShapeError(
                    f"the model has no node {n!r}; its nodes: {', '.join(model.nodes)}"
                )
            needed.add(n)
            todo.extend(model.inputs[n])
        self.layers = {n: model.nodes[n].replica() for n in model.nodes if n in needed}
        inputs = {n: model.inputs[n] for n in self.layers}
        last = max(targets, key=list(self.layers).index)
        self.plan = executor.make_plan(self.layers, inputs, last, swap=False)
        self.spec = model.input_spec

    def forward(self, x: np.ndarray, for_gradient: bool = False, seen=None) -> np.ndarray:
        """The last node's output in evaluation mode; ``seen(name, value)`` is handed every
        node's output as it is made. ``for_gradient``: the layers keep what their backward
        needs (their ``training`` flag), except BatchNorm and Dropout, whose flag also changes
        what they compute (batch statistics, dropped units); without it, each layer's
        workspaces are freed once it has run (a 100-layer network's took 0.7 GB)."""
        return executor.forward_eval(
            self.layers, self.plan, x, for_gradient, seen, release=not for_gradient
        )

    def input_gradient(self, d: np.ndarray) -> np.ndarray:
        g = executor.backward(self.layers, self.plan, d, True)
        assert g is not None
        return g


def map_nodes(model) -> list[str]:
    """The nodes whose output is a stack of maps (C, H, W): the ones :func:`top_patches` takes."""
    return [f.name for f in describe_model(model)[1:] if f.field is not None]


def conv_nodes(model) -> list[str]:
    """The convolution nodes in topological order."""
    return [name for name, layer in model.nodes.items() if layer.kind == "conv2d"]


def receptive_field(model, node: str) -> Field:
    """The receptive field of ``node``'s units in the input; ShapeError for a vector node."""
    for f in describe_model(model):
        if f.name == node:
            if f.field is None:
                raise ShapeError(
                    f"{node} outputs a vector, not maps: every unit sees the whole image; "
                    f"choose one of {', '.join(map_nodes(model))}"
                )
            return f.field
    raise ShapeError(f"the model has no node {node!r}; its nodes: {', '.join(model.nodes)}")


# ----- top patches ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    """One image's strongest response of a filter: ``image`` (index into the images given),
    the winning unit ``(row, col)`` of the map, its input window's top-left pixel ``(top, left)``
    (may be negative: the field reaches past the border), ``activation``, and ``crop`` uint8
    ``(C, size, size)``."""

    image: int
    row: int
    col: int
    top: int
    left: int
    activation: float
    crop: np.ndarray


@dataclass(frozen=True)
class PatchResult:
    """``filters[c]``: the patches of channel ``c``, strongest first."""

    node: str
    field: Field
    count: int  # images looked at
    filters: list[list[Patch]]


def model_view(spec, images: np.ndarray) -> np.ndarray:
    """uint8 images ``(N,H,W)``/``(N,C,H,W)`` as the network sees them ``(N,C,H,W)``: smaller
    images centred on the input size with pixel 0 around (as ``InputSpec.to_tensor`` pads)."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[:, None]
    _, h, w = spec.shape
    n, _, ah, aw = a.shape
    if (ah, aw) == (h, w):
        return a
    out = np.zeros((n, a.shape[1], h, w), dtype=np.uint8)
    top, left = (h - ah) // 2, (w - aw) // 2
    out[:, :, top : top + ah, left : left + aw] = a
    return out


def crop(image: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """The ``size``x``size`` window of a (C,H,W) uint8 image at ``(top, left)``; 0 outside."""
    c, h, w = image.shape
    out = np.zeros((c, size, size), dtype=np.uint8)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + size), min(w, left + size)
    if y1 > y0 and x1 > x0:
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = image[:, y0:y1, x0:x1]
    return out


def top_patches(
    model,
    node: str,
    images: np.ndarray,
    k: int = 9,
    control: Cancellable | None = None,
    batch_size: int = 256,
) -> Iterator[Progress | PatchResult]:
    """Yield ``Progress("patches", done, total)`` per batch, then the :class:`PatchResult`
    (nothing when cancelled). ``images``: uint8 dataset images the model takes."""
    for item in top_patches_of(model, [node], images, k, control, batch_size):
        yield Progress("patches", item.done, item.total) if isinstance(item, Progress) else item


def top_patches_of(
    model,
    nodes: Sequence[str],
    images: np.ndarray,
    k: int,
    control: Cancellable | None,
    batch_size: int = 256,
) -> Iterator[Progress | PatchResult]:
    """:func:`top_patches` of several nodes in one pass over ``images``: each batch runs
    through the network once, and every node's maps are reduced as they are made. Progress
    events are named after the nodes; the results come in the order of ``nodes``."""
    fields = [receptive_field(model, node) for node in nodes]
    if not 1 <= k <= MAX_PATCHES:
        raise ShapeError(f"patches per filter must be 1 to {MAX_PATCHES}, got {k}")
    probe = _Probe(model, nodes)
    best = {node: _Best(int(model.output_shape(node)[0]), k) for node in nodes}
    n = len(images)
    stage = nodes[0] if len(nodes) == 1 else f"{nodes[0]} to {nodes[-1]}"
    yield Progress(stage, 0, n)
    for start in range(0, n, batch_size):
        if control is not None and control.cancelled:
            return
        stop = min(n, start + batch_size)

        def seen(name: str, out: np.ndarray, start: int = start, stop: int = stop) -> None:
            if name in best:
                best[name].add(_finite(out, name, f"images {start + 1:,} to {stop:,}"), start)

        with np.errstate(all="ignore"):  # the maps are checked instead
            probe.forward(model.input_spec.to_tensor(images[start:stop]), seen=seen)
        yield Progress(stage, stop, n)
    for node, field in zip(nodes, fields, strict=True):
        width = int(model.output_shape(node)[2])
        yield best[node].result(node, field, width, model.input_spec, images)


class _Best:
    """The ``k`` strongest responses of each of ``channels`` filters seen so far: their value
    (the maximum over the map), image and position in the map."""

    def __init__(self, channels: int, k: int) -> None:
        self.k = k
        self.val = np.full((channels, 0), -np.inf, dtype=np.float64)
        self.img = np.zeros((channels, 0), dtype=np.int64)
        self.pos = np.zeros((channels, 0), dtype=np.int64)

    def add(self, out: np.ndarray, start: int) -> None:
        """Merge the maps ``out`` (B, C, H, W) of images ``start``... ``start + B - 1``."""
        flat = out.reshape(out.shape[0], out.shape[1], -1)
        pos = flat.argmax(axis=2)  # (B, C)
        val = np.take_along_axis(flat, pos[:, :, None], axis=2)[:, :, 0].T
        vals = np.concatenate([self.val, val.astype(np.float64)], axis=1)
        index = np.broadcast_to(np.arange(start, start + len(out)), val.shape)
        imgs = np.concatenate([self.img, index], axis=1)
        poss = np.concatenate([self.pos, pos.T], axis=1)
        keep = np.argsort(-vals, axis=1, kind="stable")[:, : self.k]
        self.val = np.take_along_axis(vals, keep, 1)
        self.img = np.take_along_axis(imgs, keep, 1)
        self.pos = np.take_along_axis(poss, keep, 1)

    def result(self, node: str, field: Field, width: int, spec, images: np.ndarray) -> PatchResult:
        """The patches: each winner's window of the input, cut from the image as seen."""
        filters = []
        for vals, imgs, poss in zip(self.val, self.img, self.pos, strict=True):
            row_patches = []
            for v, i, p in zip(vals, imgs, poss, strict=True):
                r, q = divmod(int(p), width)
                top, left = r * field.jump + field.offset, q * field.jump + field.offset
                seen = model_view(spec, images[int(i) : int(i) + 1])[0]
                row_patches.append(
                    Patch(int(i), r, q, top, left, float(v), crop(seen, top, left, field.size))
                )
            filters.append(row_patches)
        return PatchResult(node, field, len(images), filters)


# ----- synthesis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Synthesis:
    """An input made to excite ``channel`` of ``node``: ``image`` uint8 (C,H,W), the ``start``
    image it grew from, and the target's response to each (``activation``, ``start_activation``).
    For a map the target is the channel's centre unit and ``window`` its receptive field
    ``(top, left, size)`` in the image (None for a class score)."""

    node: str
    channel: int
    image: np.ndarray
    start: np.ndarray
    activation: float
    start_activation: float
    window: tuple[int, int, int] | None = None


def _finite(values: np.ndarray, node: str, what: str) -> np.ndarray:
    """``values`` when they are all finite numbers; else the :class:`ModelFileError` that says
    the weights overflow (finite weights can: 3e38 times a pixel), classifying's own
    (:func:`engine.inference.not_finite`) for the node's outputs."""
    if not np.isfinite(values).all():
        raise not_finite(what, f"{node}'s")
    return values


def _blur(x: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur of (N,C,H,W), edges repeated."""
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    v = 0.25 * p[:, :, :-2] + 0.5 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]
    return 0.25 * v[:, :, :, :-2] + 0.5 * v[:, :, :, 1:-1] + 0.25 * v[:, :, :, 2:]


def _to_pixels(spec, x: np.ndarray) -> np.ndarray:
    mul, add = spec._affine()
    p = (x - add[None, :, None, None]) / mul[None, :, None, None]
    return np.clip(np.rint(p), 0, 255).astype(np.uint8)


def _target(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Where the target unit sits in one channel: the centre unit of a map (a filter's response
    to one window, its receptive field), or the whole of a class score."""
    return (shape[1] // 2, shape[2] // 2) if len(shape) == 3 else ()


def _index(channels: np.ndarray, where: tuple[int, ...]) -> tuple[Any, ...]:
    """Sample ``i``'s target unit: ``(i, channels[i], *where)``."""
    return (np.arange(len(channels)), channels, *where)


def _response(out: np.ndarray, channels: np.ndarray, where: tuple[int, ...]) -> np.ndarray:
    """Each sample's target: its channel's centre unit, or its class score."""
    return out[_index(channels, where)]


def synthesize_all(
    model,
    node: str,
    rng: np.random.Generator,
    channels: Sequence[int] | None = None,
    *,
    steps: int = 128,
    step_size: float = 0.05,
    jitter: int = 2,
    blur_every: int = 4,
    control: Cancellable | None = None,
) -> Iterator[Progress | list[Synthesis]]:
    """Yield ``Progress("synthesis", done, total)`` (``steps`` per batch of
    :data:`SYNTHESIS_BATCH` channels), then one :class:`Synthesis` per channel (every channel
    of ``node`` by default; the classes when ``node`` is the output). Every batch has the same
    jitter: a channel's image is the same whatever else is synthesised with it."""
    if not 1 <= steps <= MAX_SYNTHESIS_STEPS:
        raise ShapeError(f"synthesis steps must be 1 to {MAX_SYNTHESIS_STEPS:,}, got {steps:,}")
    probe = _Probe(model, node)
    spec = model.input_spec
    shape = model.output_shape(node)
    count = int(shape[0])
    chans = np.arange(count) if channels is None else np.asarray(list(channels), dtype=np.int64)
    if chans.size == 0 or chans.min() < 0 or chans.max() >= count:
        raise ShapeError(f"{node} has channels 0..{count - 1}; got {list(chans)}")
    if len(chans) > MAX_SYNTHESES:
        raise ShapeError(
            f"{node} has {count:,} {'channels' if len(shape) == 3 else 'units'}: synthesis "
            f"grows one image for each, at most {MAX_SYNTHESES:,}; choose a convolution or "
            f"the output ({model.output})"
        )
    c, h, w = spec.shape
    start = rng.normal(128, 20, size=(len(chans), c, h, w)).clip(0, 255).astype(np.uint8)
    where = _target(tuple(shape))
    field = receptive_field(model, node) if where else None
    if field is not None:  # a shift of 2 moves a 3x3 field's pattern out of it: none there
        jitter = min(jitter, field.size // 4)
    shifts = rng.integers(-jitter, jitter + 1, size=(steps, 2)) if jitter else None
    parts = [slice(i, i + SYNTHESIS_BATCH) for i in range(0, len(chans), SYNTHESIS_BATCH)]
    total = steps * len(parts)
    yield Progress("synthesis", 0, total)
    pixels, first, last = [], [], []
    for n, part in enumerate(parts):
        climbed = yield from _climb(probe, node, start[part], chans[part], where, shifts,
                                    (steps, step_size, blur_every), control, n * steps,
                                    total)  # fmt: skip
        if climbed is None:  # cancelled
            return
        pixels.append(climbed[0])
        first.append(climbed[1])
        last.append(climbed[2])
    made, before, after = np.concatenate(pixels), np.concatenate(first), np.concatenate(last)
    box = None
    if field is not None:
        box = (
            where[0] * field.jump + field.offset,
            where[1] * field.jump + field.offset,
            field.size,
        )
    yield [
        Synthesis(node, int(ch), made[i], start[i], float(after[i]), float(before[i]), box)
        for i, ch in enumerate(chans)
    ]


def _climb(
    probe: _Probe,
    node: str,
    start: np.ndarray,
    chans: np.ndarray,
    where: tuple[int, ...],
    shifts: np.ndarray | None,
    options: tuple[int, float, int],
    control: Cancellable | None,
    done: int,
    total: int,
) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """One batch of :func:`synthesize_all` (``options``: steps, step size, blur_every): yields
    ``Progress("synthesis", done + step, total)`` per step and returns the pixels and the
    responses before and after (None when cancelled)."""
    steps, step_size, blur_every = options
    spec = probe.spec
    mul, add = spec._affine()
    lo = add[None, :, None, None]
    hi = (255 * mul + add)[None, :, None, None]
    x = spec.to_tensor(start)
    with np.errstate(all="ignore"):  # the responses and gradients are checked instead
        first = _finite(_response(probe.forward(x), chans, where), node, "the start images")
    for step in range(steps):
        if control is not None and control.cancelled:
            return None
        dy, dx = (int(v) for v in shifts[step]) if shifts is not None else (0, 0)
        shifted = np.roll(x, (dy, dx), axis=(2, 3))
        with np.errstate(all="ignore"):
            out = probe.forward(shifted, for_gradient=True)
            d = np.zeros_like(out)
            d[_index(chans, where)] = 1.0
            g = probe.input_gradient(d)
        g = np.roll(_finite(g, node, "the images being synthesised"), (-dy, -dx), axis=(2, 3))
        scale = np.abs(g).reshape(len(chans), -1).mean(axis=1) + 1e-12
        x = x + step_size * g / scale[:, None, None, None]
        if blur_every and (step + 1) % blur_every == 0:
            x = _blur(x)
        x = np.clip(x, lo, hi).astype(np.float32)
        yield Progress("synthesis", done + step + 1, total)
    pixels = _to_pixels(spec, x)
    with np.errstate(all="ignore"):
        last = _response(probe.forward(spec.to_tensor(pixels)), chans, where)
    return pixels, first, _finite(last, node, "the synthesised images")


def synthesize(
    model, node: str, channel: int, rng: np.random.Generator, steps: int = 128, **options
) -> Synthesis:
    """:func:`synthesize_all` for one channel (or class), run to the end."""
    for item in synthesize_all(model, node, rng, [channel], steps=steps, **options):
        if isinstance(item, list):
            return item[0]
    raise AssertionError("unreachable: synthesis without a control always finishes")


# ----- grids ----------------------------------------------------------------------------------


def _upscale(images: np.ndarray, least: int) -> np.ndarray:
    """(N,C,h,w) enlarged by a whole factor (nearest) so the side is at least ``least``."""
    f = max(1, -(-least // images.shape[-1]))
    return images.repeat(f, axis=2).repeat(f, axis=3)


def _tile(images: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """(N,C,h,w) uint8 -> one grid image (H,W) or (H,W,3) via ``visualize.image_grid``."""
    planes = [image_grid(images[:, i], cols, pad=pad, pad_value=150) for i in range(len(images[0]))]
    return planes[0] if len(planes) == 1 else np.stack(planes, axis=-1)


def patch_grid(result: PatchResult, least: int = 32) -> np.ndarray:
    """One row per filter, its patches strongest first."""
    k = max(len(p) for p in result.filters)
    crops = []
    for patches in result.filters:
        row = [p.crop for p in patches]
        blank = np.zeros_like(row[0])
        crops.extend(row + [blank] * (k - len(row)))
    return _tile(_upscale(np.stack(crops), least), k)


def synthesis_grid(items: Sequence[Synthesis], least: int = 64, cols: int = 8) -> np.ndarray:
    """The synthesised images (their target unit's receptive field for maps), ``cols`` a row."""
    pics = [s.image if s.window is None else crop(s.image, *s.window) for s in items]
    return _tile(_upscale(np.stack(pics), least), cols)

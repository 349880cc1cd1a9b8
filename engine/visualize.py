"""Display maths for the Train tab: small pure-NumPy helpers that turn engine results into pictures.

Nothing here draws; each function returns plain arrays or numbers that a front end shows as is:
per-class counts, an exponentially smoothed loss curve, feature maps scaled to ``uint8``, kernels
on a blue-white-red scale, image grids, the images behind a confusion-matrix cell and the
colours of its cells.

Images are ``uint8``; feature maps are ``float32`` ``(C, H, W)`` for one sample.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.colormap import blue_white_red
from engine.graph_layout import MERGES, NodeFacts, layout


# ----- dataset ----------------------------------------------------------------------------
def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Number of samples per class: int64 ``(K,)``, ``counts[k] = #{i : labels[i] == k}``."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}"
        )
    return np.bincount(labels.astype(np.int64), minlength=num_classes).astype(np.int64)


def sample_indices(labels: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """The first ``per_class`` indices of each class: int64 ``(K, per_class)``, -1 where missing."""
    labels = np.asarray(labels)
    out = np.full((num_classes, per_class), -1, dtype=np.int64)
    for k in range(num_classes):
        found = np.flatnonzero(labels == k)[:per_class]
        out[k, : found.size] = found
    return out


def image_grid(images: np.ndarray, cols: int, *, pad: int = 1, pad_value: int = 40) -> np.ndarray:
    """Tile ``(N, H, W)`` uint8 images into one ``(rows*(H+pad)-pad, cols*(W+pad)-pad)`` image.

    Row-major: image ``i`` goes to row ``i // cols``, column ``i % cols``; empty cells stay
    ``pad_value``.
    """
    images = np.asarray(images)
    n, h, w = images.shape
    cols = max(1, min(cols, n)) if n else 1
    rows = max(1, -(-n // cols))
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), pad_value, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return grid


# ----- curves -----------------------------------------------------------------------------
class EmaSmoother:
    """Exponential moving average with bias correction (as TensorBoard's smoothing).

    ``s_t = w * s_{t-1} + (1 - w) * x_t`` with ``s_0 = 0``, reported as ``s_t / (1 - w**t)`` so
    the first values are not pulled towards zero. Non-finite values are skipped.
    """

    def __init__(self, weight: float = 0.9) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
        self.weight = weight
        self._state = 0.0
        self._count = 0

    def update(self, value: float) -> float:
        if np.isfinite(value):
            self._state = self.weight * self._state + (1.0 - self.weight) * float(value)
            self._count += 1
        if self._count == 0:
            return float("nan")
        return self._state / (1.0 - self.weight**self._count)


def ema(values: Sequence[float] | np.ndarray, weight: float = 0.9) -> np.ndarray:
    """The :class:`EmaSmoother` curve of a whole series: float64 ``(N,)``."""
    smoother = EmaSmoother(weight)
    return np.array([smoother.update(v) for v in np.asarray(values, dtype=np.float64)])


def epoch_position(epoch: int, batch: int, batches_per_epoch: int) -> float:
    """x coordinate of a batch on an "epochs" axis: ``epoch + batch / batches_per_epoch``.

    ``epoch`` counts finished epochs before this one and ``batch`` the batches done in it, so the
    last batch of the first epoch sits at 1.0.
    """
    return epoch + batch / max(1, batches_per_epoch)


def format_duration(seconds: float | None) -> str:
    """``"0:07"``, ``"12:30"``, ``"1:02:03"``; ``"–"`` when unknown."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    total = round(max(0.0, seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ----- feature maps and kernels -----------------------------------------------------------
FOLDED = ("relu", "tanh", "sigmoid", "batchnorm2d", "dropout")  # shown with the node before
SHOWN = ("conv2d", "dense", "maxpool2d", "avgpool2d", "add", "concat", "globalavgpool")


@dataclass(frozen=True)
class ShownNode:
    """A node the "inside the network" views give a row: ``name`` (the head: a convolution, a
    pooling, a merge, a dense layer or the input) shown by the output of ``value``, the last of
    ``chain`` (the head and the BatchNorm/activation/dropout nodes that follow it alone);
    ``facts`` the head's description, ``source`` the shown node whose value the head reads
    ("" for the input or a value not shown), ``lane`` its lane in :func:`graph_layout.layout`."""

    name: str
    value: str
    chain: tuple[str, ...]
    label: str
    facts: NodeFacts
    source: str
    lane: int

    @property
    def block(self) -> str:
        return self.facts.block


def shown_nodes(facts: Sequence[NodeFacts]) -> list[ShownNode]:
    """The rows of the "inside the network" views, in topological order (one home for the
    Train tab's live view and the Classify tab's network view)."""
    readers: dict[str, list[str]] = {f.name: [] for f in facts}
    for f in facts:
        for i in f.inputs:
            readers[i].append(f.name)
    by_name = {f.name: f for f in facts}
    lanes = {p.name: p.lane for p in layout(facts).nodes}
    shown_by_value: dict[str, str] = {}
    out: list[ShownNode] = []
    last = facts[-1].name
    for f in facts:
        if f.kind != "input" and f.kind not in SHOWN:
            continue
        chain = [f.name]
        while len(readers[chain[-1]]) == 1:
            nxt = by_name[readers[chain[-1]][0]]
            if nxt.kind not in FOLDED or nxt.block != f.block:
                break  # fold within a block only (a transition's BN is not the concat's)
            chain.append(nxt.name)
        label = name_in_block(f.name, f.block)
        if len(chain) > 1:
            label += " + " + name_in_block(chain[-1], f.block)
        elif f.name == last and f.kind == "dense":
            label += " (logits)"
        source = shown_by_value.get(f.inputs[0], "") if len(f.inputs) == 1 else ""
        out.append(ShownNode(f.name, chain[-1], tuple(chain), label, f, source, lanes[f.name]))
        shown_by_value[chain[-1]] = f.name
    return out


def name_in_block(name: str, block: str) -> str:
    """``"res1.conv2"`` in block ``"res1"`` -> ``"conv2"``: a node's name as its block shows it."""
    return name[len(block) + 1 :] if block and name.startswith(block + ".") else name


FOLD_ABOVE = 12  # rows beyond which a network's blocks start folded in the views


def folded_at_first(rows: Sequence[Arrangeable]) -> set[str]:
    """The blocks a view folds when it first shows ``rows`` (the Train tab's live view and the
    Classify tab's network view alike): none for a small network; for one of more than
    ``FOLD_ABOVE`` rows (ResNet, GoogLeNet, DenseNet) every block but the first, so the whole
    network fits in a few screens and the first block shows what a block holds."""
    blocks = list(dict.fromkeys(row.block for row in rows if row.block))
    return set(blocks[1:]) if len(rows) > FOLD_ABOVE else set()


def unfolded(rows: Sequence[Arrangeable], folded: Collection[str]) -> list[int]:
    """THE rule for what a folded block shows, in both views (the Train tab's live view and
    the Classify tab's network view): the indices of the rows drawn, in order. A row outside
    the ``folded`` blocks is drawn; of a folded block only its last row, the block's output
    (a ResNet block's add, an Inception module's or a dense layer's concatenation), under the
    block's :func:`block_header`, so a folded block still shows what it computes."""
    last = {row.block: i for i, row in enumerate(rows) if row.block}
    return [i for i, row in enumerate(rows) if row.block not in folded or last[row.block] == i]


def block_header(block: str, folded: bool) -> str:
    """The header both views draw above a block's rows: its name, whether it is folded (to
    its output, see :func:`unfolded`), and what a click on it does. Short enough for the
    Classify tab's narrow view at 1024 px."""
    if folded:
        return f"▸ {block}   (folded to its output; click to open)"
    return f"▾ {block}   (click to fold it to its output)"


@dataclass(frozen=True)
class Band:
    """Rows shown together: one column (rows one under another) or, for the branches of a block,
    one column per lane side by side. ``columns`` hold indices into the rows; ``block`` is the
    block the rows belong to ("" for top-level rows), the unit a view collapses."""

    block: str
    columns: list[list[int]]


class Arrangeable(Protocol):
    """What :func:`arrange` reads of a row (a :class:`ShownNode`, a :class:`LayerView` or a
    view's own row built from them)."""

    @property
    def name(self) -> str: ...
    @property
    def block(self) -> str: ...
    @property
    def lane(self) -> int: ...
    @property
    def facts(self) -> NodeFacts | None: ...


def arrange(rows: Sequence[Arrangeable]) -> list[Band]:
    """Group rows (of :func:`shown_nodes`, :func:`display_layers` or anything carrying their
    name, block, lane and facts) into bands: consecutive
    rows of one block that are not merges go side by side by lane when they use several lanes
    (Inception's branches, a ResNet projection beside its block); everything else one row per
    band."""
    bands: list[Band] = []
    i = 0
    while i < len(rows):
        block, kind = rows[i].block, _kind_of(rows[i])
        j = i + 1
        if block and kind not in MERGES:
            while j < len(rows) and rows[j].block == block and _kind_of(rows[j]) not in MERGES:
                j += 1
        lanes = sorted({rows[k].lane for k in range(i, j)})
        if len(lanes) > 1:
            columns = [[k for k in range(i, j) if rows[k].lane == ln] for ln in lanes]
            bands.append(Band(block, columns))
        else:
            bands.extend(Band(block, [[k]]) for k in range(i, j))
        i = j
    return bands


def _kind_of(row: Arrangeable) -> str:
    facts = row.facts
    return facts.kind if facts is not None else row.name


@dataclass(frozen=True)
class LayerView:
    """One row of the activation view.

    ``kind`` is ``"maps"`` (``images`` uint8 ``(C,H,W)``) or ``"bars"`` (``values`` ``(K,)``);
    ``low``/``high`` per map or per bar group give the value range shown on hover; ``facts``
    describe the node (None for the softmax), ``chain`` the nodes folded into the row,
    ``lane`` its lane (see :func:`arrange`).
    """

    name: str
    label: str
    kind: str
    values: np.ndarray
    images: np.ndarray | None
    low: np.ndarray
    high: np.ndarray
    facts: NodeFacts | None = None
    chain: tuple[str, ...] = ()
    lane: int = 0

    @property
    def block(self) -> str:
        return self.facts.block if self.facts is not None else ""

    def details(self) -> str:
        """Hover text: the node's description and what the row folds in."""
        if self.facts is None:
            return "class probabilities (softmax of the logits)"
        text = self.facts.details()
        if len(self.chain) > 1:
            text += "\nshown after " + " → ".join(self.chain[1:])
        return text


def maps_to_uint8(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale feature maps ``(C,H,W)`` to uint8 with one scale for the whole layer.

    ``u = 255 * (x - lo) / (hi - lo)`` with ``lo = min(0, min x)`` and ``hi = max x`` over the
    layer, so 0 (an inactive unit) is black and maps can be compared within the layer. Returns
    ``(images, low, high)`` with ``low``/``high`` the range of each map ``(C,)``.
    """
    maps = np.asarray(maps, dtype=np.float32)
    finite = np.where(np.isfinite(maps), maps, 0.0)
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    span = hi - lo if hi > lo else 1.0
    images = np.clip((finite - lo) * (255.0 / span), 0, 255).round().astype(np.uint8)
    flat = finite.reshape(finite.shape[0], -1)
    return images, flat.min(axis=1), flat.max(axis=1)


def colour_input(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A normalised colour input ``(3, H, W)`` as ONE RGB tile ``(1, H, W, 3)`` uint8, with one
    scale for the three channels (``u = 255 * (x - min) / (max - min)``) so colours keep their
    balance; ``(images, low, high)`` as :func:`maps_to_uint8` with one range."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32))
    lo, hi = float(x.min()), float(x.max())
    scaled = (x - lo) * (255.0 / (hi - lo if hi > lo else 1.0))
    rgb = np.clip(scaled, 0, 255).round().astype(np.uint8).transpose(1, 2, 0)[None]
    return rgb, np.array([lo], np.float32), np.array([hi], np.float32)


def display_layers(
    activations: Sequence[tuple[str, np.ndarray]], facts: Sequence[NodeFacts]
) -> list[LayerView]:
    """Choose and scale the rows of the activation view for ONE sample.

    ``activations`` is ``model.activations(x)`` for a batch of one: ``("input", x)``, one entry
    per node, then ``("softmax", probs)``; ``facts`` is :func:`engine.graph_layout.describe` of
    the model. One row per :func:`shown_nodes` entry (a convolution shown after its BatchNorm
    and activation, poolings, merges, dense layers, the last as logits), then the softmax.
    """
    acts = {name: np.asarray(array)[0] for name, array in activations}
    rows: list[tuple[str, str, str, NodeFacts | None, tuple[str, ...], int]] = [
        (s.value, s.name, s.label, s.facts, s.chain, s.lane) for s in shown_nodes(facts)
    ]
    if "softmax" in acts:
        rows.append(("softmax", "softmax", "softmax", None, (), 0))
    views: list[LayerView] = []
    for value, name, label, node, chain, lane in rows:
        x = acts[value]
        if name == "input" and x.ndim == 3 and x.shape[0] == 3:  # a photo: one colour tile
            images, low, high = colour_input(x)
            views.append(LayerView(name, label, "maps", x, images, low, high, node, chain, lane))
        elif x.ndim == 3:
            images, low, high = maps_to_uint8(x)
            views.append(LayerView(name, label, "maps", x, images, low, high, node, chain, lane))
        else:
            flat = x.reshape(-1).astype(np.float32)
            lo = np.array([flat.min() if flat.size else 0.0], dtype=np.float32)
            hi = np.array([flat.max() if flat.size else 0.0], dtype=np.float32)
            views.append(LayerView(name, label, "bars", flat, None, lo, hi, node, chain, lane))
    return views


def kernel_limit(weights: np.ndarray) -> float:
    """``max |w|`` of a layer's kernels: the one scale its pictures share (1 when empty)."""
    weights = np.asarray(weights)
    return float(np.abs(weights).max()) if weights.size else 1.0


def kernel_images(weights: np.ndarray, limit: float | None = None) -> tuple[np.ndarray, float]:
    """Kernels ``(F, C, KH, KW)`` as RGB ``(F, C, KH, KW, 3)`` with one symmetric scale.

    One ``limit`` for the whole layer (default :func:`kernel_limit`; pass the whole layer's
    when drawing a part of it), so strong and weak filters are told apart; returns
    ``(images, limit)``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    limit = kernel_limit(weights) if limit is None else float(limit)
    return blue_white_red(weights, limit), limit


def kernel_colours(weights: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Three-channel kernels ``(F, 3, KH, KW)`` as colour images ``(F, KH, KW, 3)`` uint8: each
    weight's channel becomes that colour channel, ``u = 127.5 + 127.5 * w / limit`` with one
    ``limit = max |w|`` for the layer, so 0 is mid-grey and a filter tuned to red looks red
    (the way AlexNet's first-layer filters are shown; ``limit``: as :func:`kernel_images`)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 4 or weights.shape[1] != 3:
        raise ValueError(f"expected kernels (F, 3, KH, KW), got shape {weights.shape}")
    limit = kernel_limit(weights) if limit is None else float(limit)
    scaled = 127.5 + 127.5 * weights / (limit if limit > 0 else 1.0)
    return np.clip(scaled, 0, 255).round().astype(np.uint8).transpose(0, 2, 3, 1)


# ----- results ----------------------------------------------------------------------------
def confusion_cell(
    labels: np.ndarray, predicted: np.ndarray, true_class: int, predicted_class: int
) -> np.ndarray:
    """Indices of the samples in one confusion-matrix cell (row = true, column = predicted)."""
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    return np.flatnonzero((labels == true_class) & (predicted == predicted_class))


def row_fractions(confusion: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum (rows with no samples stay 0)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    sums = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, sums, out=np.zeros_like(confusion), where=sums > 0)


CONFUSION_BACKGROUND = (246, 246, 246)  # an empty cell (#f6f6f6)
CONFUSION_RIGHT = (46, 160, 67)  # the diagonal: green
CONFUSION_WRONG = (214, 39, 40)  # mistakes: red


def confusion_shades(fractions: np.ndarray) -> np.ndarray:
    """How strongly each cell is coloured, float ``(K, K)`` in [0, 1]: a diagonal cell by its
    row fraction, a mistake by four times it (capped at 1), so that a class losing a quarter of
    its images to one other class shows as strongly as a perfect class."""
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 2 or fractions.shape[0] != fractions.shape[1]:
        raise ValueError(f"expected square row fractions (K, K), got shape {fractions.shape}")
    shades = np.minimum(1.0, 4.0 * fractions)
    np.fill_diagonal(shades, np.diagonal(fractions))
    return np.clip(shades, 0.0, 1.0)


def confusion_colours(fractions: np.ndarray, side: int | None = None) -> np.ndarray:
    """The confusion matrix as a picture, uint8 ``(K, K, 3)``, one pixel per cell (row = true,
    column = predicted): green on the diagonal, red for mistakes, laid over #f6f6f6 with the
    opacity :func:`confusion_shades` gives, ``colour = back + shade * (base - back)``.

    ``side`` < K: a ``(side, side, 3)`` picture for a matrix smaller than a pixel per cell. Each
    pixel shows the strongest cell of its block of rows and columns (green if a diagonal cell,
    red wins ties), so a class that is all wrong still shows, where a plain shrink would drop
    most rows and columns.
    """
    shades = confusion_shades(fractions)
    k = shades.shape[0]
    if side is None or not 0 < side < k:
        green, shade = np.eye(k, dtype=bool), shades
    else:
        right = np.full_like(shades, -1.0)  # the diagonal's shades, -1 elsewhere
        np.fill_diagonal(right, np.diagonal(shades))
        wrong = shades.copy()  # the mistakes' shades, -1 on the diagonal
        np.fill_diagonal(wrong, -1.0)
        # pixel i: the cells whose middles lie in it, floor((j + 1/2) * side / k) == i
        starts = -((side - 2 * np.arange(side) * k) // (2 * side))
        right, wrong = (_block_max(m, starts) for m in (right, wrong))
        green, shade = right > wrong, np.maximum(right, wrong)
    back = np.asarray(CONFUSION_BACKGROUND, dtype=np.float32)
    towards = np.asarray(CONFUSION_WRONG, dtype=np.float32) - back
    colours = back + shade.astype(np.float32)[..., None] * towards
    towards = np.asarray(CONFUSION_RIGHT, dtype=np.float32) - back
    colours[green] = back + shade[green].astype(np.float32)[:, None] * towards
    return np.floor(colours + 0.5).astype(np.uint8)  # halves up


def _block_max(matrix: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The largest value of each block of rows and columns that begin at ``starts``."""
    return np.maximum.reduceat(np.maximum.reduceat(matrix, starts, axis=0), starts, axis=1)


#: The loss shown at each pause of a run is measured on up to this many fixed images...
PROBE_IMAGES = 256
#: ...as long as one pass over them costs at most this many multiply-adds (0.1-0.3 s on one
#: core); a bigger network's probe is one batch, whose cost is then below the step's own.
PROBE_MACS = 2_000_000_000


def probe_count(model, batch_size: int, available: int) -> int:
    """How many fixed images :func:`probe_loss` looks at for ``model``: PROBE_IMAGES, fewer for
    a heavy network (PROBE_MACS; a 2,000-layer network's 256-image probe, twice per Step, had
    taken most of the Step's 78 s), never fewer than one batch, at most ``available``."""
    from engine.modelsize import architecture_size  # the cost heavy_forward weighs too

    macs = max(1, architecture_size(model.architecture, len(model.classes)).multiply_adds)
    return max(0, min(available, PROBE_IMAGES, max(batch_size, PROBE_MACS // macs)))


def probe_loss(model, images: np.ndarray, labels: np.ndarray, loss: str = "cross_entropy") -> float:
    """Mean loss of ``model`` on a small fixed set (uint8 images, int labels), no training.

    Shown before and after a single training step, so the user sees one update's effect on the
    same images. ``loss`` is ``"cross_entropy"`` or ``"total_error"`` (see :mod:`engine.losses`).
    """
    from engine.losses import get_loss

    logits = model.forward(model.input_spec.to_tensor(images), training=False)
    value, _ = get_loss(loss)(logits, np.asarray(labels, dtype=np.int64))
    return float(value)

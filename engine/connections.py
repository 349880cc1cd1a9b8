"""The strongest connections of a fully connected unit (the article's Figure 20).

A dense node's unit ``j`` computes ``y_j = sum_i W[j, i] * x_i + b_j``: its incoming connections
are the row ``W[j, :]`` and its outgoing ones the column ``W'[:, j]`` of every dense node that
reads it. :func:`strongest_connections` keeps the ``k`` of each with the largest ``|w|``.

A unit is named where the views draw it: the value of the nearest node before the dense layer
that is not a mere reshaping or element-wise step (flatten, an activation, dropout, BatchNorm),
so the incoming units of LeNet-5's ``fc1`` are positions ``(channel, row, col)`` in ``pool2``'s
maps (flatten's C, H, W order, as torch), those of a ResNet's ``fc`` the channels of the global
average pooling, and the outgoing units of ``fc1`` the units of ``fc2``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.graph_layout import NodeFacts, describe_model

#: Steps that keep every value's place (flatten keeps the C, H, W order): a unit is named
#: through them at the node before.
PASS_THROUGH = ("flatten", "relu", "tanh", "sigmoid", "dropout", "batchnorm2d")


@dataclass(frozen=True)
class Link:
    """One connection: ``unit`` (an index into ``node``'s output, ``(c, y, x)`` for maps,
    ``(i,)`` for a vector), its ``weight`` and how the views name the unit (``label``: "pool2
    map 3 (x 1, y 4)", "fc2 unit 17", "fc3 unit 2 (cat)" for a class score)."""

    node: str
    unit: tuple[int, ...]
    weight: float
    label: str = ""

    def text(self, incoming: bool) -> str:
        """``"+0.249 from pool2 map 1 (x 4, y 2)"`` (or ``to`` for an outgoing link)."""
        return f"{self.weight:+.3f} {'from' if incoming else 'to'} {self.label}"


@dataclass(frozen=True)
class Connections:
    """The strongest links of unit ``unit`` of dense node ``node``, strongest first:
    ``incoming`` from the units it reads, ``outgoing`` to the units of the dense nodes that read
    it (empty for the network's output)."""

    node: str
    unit: int
    incoming: list[Link]
    outgoing: list[Link]

    def text(self) -> str:
        """Every link, one a line, under a title (the views' tooltip)."""
        lines = [f"Strongest connections of {self.node} unit {self.unit} (red +, blue −):"]
        lines += [link.text(True) for link in self.incoming]
        return "\n".join(lines + [link.text(False) for link in self.outgoing])


def _label(node: str, unit: tuple[int, ...], classes: list[str] | None) -> str:
    if len(unit) == 3:
        return f"{node} map {unit[0] + 1} (x {unit[2]}, y {unit[1]})"
    name = f" ({classes[unit[0]]})" if classes is not None and unit[0] < len(classes) else ""
    return f"{node} unit {unit[0]}{name}"


def _top(weights: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``weights`` (U, n), the indices of the ``k`` largest ``|w|``, strongest first
    (equals: the lower index first). A partition first, so a large matrix costs O(n), not
    O(n log n); which of several equal weights at the k-th place is kept is not defined."""
    strength = -np.abs(weights)
    if k < weights.shape[1]:
        picked = np.argpartition(strength, k - 1, axis=1)[:, :k]
    else:
        picked = np.broadcast_to(np.arange(weights.shape[1]), weights.shape)
    order = np.lexsort((picked, np.take_along_axis(strength, picked, axis=1)), axis=1)
    return np.take_along_axis(picked, order, axis=1)


def _source(by_name: dict[str, NodeFacts], node: str) -> str:
    """The node whose value ``node`` reads, named through the pass-through steps."""
    src = by_name[node].inputs[0]
    while by_name[src].kind in PASS_THROUGH:
        src = by_name[src].inputs[0]
    return src


def _dense_readers(facts: list[NodeFacts], node: str) -> list[str]:
    """The dense nodes reading ``node``'s value, directly or through pass-through steps."""
    found: list[str] = []
    todo = [node]
    while todo:
        current = todo.pop(0)
        for f in facts:
            if current in f.inputs:
                if f.kind == "dense":
                    found.append(f.name)
                elif f.kind in PASS_THROUGH:
                    todo.append(f.name)
    return found


def _check(by_name: dict[str, NodeFacts], node: str, k: int) -> None:
    if node not in by_name or by_name[node].kind != "dense":
        dense = [name for name, f in by_name.items() if f.kind == "dense"]
        raise ShapeError(f"{node!r} is not a fully connected node; choose one of {dense}")
    if k < 1:
        raise ShapeError(f"k must be >= 1, got {k}")


def _connections(
    model: Any, facts: list[NodeFacts], node: str, units: np.ndarray, k: int
) -> list[Connections]:
    """:class:`Connections` of ``units`` of dense ``node``: whole weight matrices sorted at
    once (one ``argsort`` per matrix, not one per unit), the picked weights and unit indices
    read out as whole matrices too (per link, ``np.unravel_index`` and ``float`` made the live
    view's refresh, which draws these for every unit, 5x slower than it had been)."""
    by_name = {f.name: f for f in facts}
    classes = list(getattr(model, "classes", []))

    def link(name: str, unit: tuple[int, ...], weight: float) -> Link:
        shown = classes if name == model.output else None
        return Link(name, unit, weight, _label(name, unit, shown))

    w = model.layer(node).params["weight"][units]  # (U, in): what each unit reads
    src = _source(by_name, node)
    shape = by_name[src].shape
    top_in = _top(w, k)
    at = np.stack(np.unravel_index(top_in, shape), axis=-1).tolist()  # (U, k, ndim) as ints
    w_in = np.take_along_axis(w, top_in, axis=1).tolist()
    readers = []
    for reader in _dense_readers(facts, node):
        column = model.layer(reader).params["weight"][:, units].T  # (U, out): what reads each
        top = _top(column, k)
        readers.append((reader, top.tolist(), np.take_along_axis(column, top, axis=1).tolist()))
    result = []
    for u, unit in enumerate(units.tolist()):
        incoming = [link(src, tuple(c), v) for c, v in zip(at[u], w_in[u], strict=True)]
        outgoing = [
            link(reader, (i,), v)
            for reader, picked, weights in readers
            for i, v in zip(picked[u], weights[u], strict=True)
        ]
        outgoing.sort(key=lambda link: -abs(link.weight))  # stable: a reader's order stays
        result.append(Connections(node, unit, incoming, outgoing[:k]))
    return result


def strongest_connections(model: Any, node: str, unit: int, k: int = 6) -> Connections:
    """The ``k`` strongest incoming and outgoing connections of unit ``unit`` of dense node
    ``node`` (see the module doc). ``ShapeError`` for a node that is not dense or a unit out of
    range."""
    facts = describe_model(model)
    by_name = {f.name: f for f in facts}
    _check(by_name, node, k)
    size = by_name[node].shape[0]
    if not 0 <= unit < size:
        raise ShapeError(f"{node} has units 0..{size - 1}; got {unit}")
    return _connections(model, facts, node, np.array([unit]), k)[0]


class LazyConnections(Mapping[str, list[Connections]]):
    """:func:`every_connection` as a mapping that works a dense node out when it is first
    asked for: the Train tab's live view gets one with each weight snapshot, several a second,
    and needs a node's connections only when one of its bars is hovered (all of LeNet-5's took
    9 ms, most of a refresh in the GUI thread). The model's weights are read then. ``facts``:
    the model's :func:`~engine.graph_layout.describe_model` when the caller has it already
    (35 ms of a 2,000-node network)."""

    def __init__(self, model: Any, k: int = 6, facts: list[NodeFacts] | None = None) -> None:
        self._model, self._k = model, k
        self._facts = facts if facts is not None else describe_model(model)
        self._sizes = {f.name: f.shape[0] for f in self._facts if f.kind == "dense"}
        self._done: dict[str, list[Connections]] = {}

    def __getitem__(self, node: str) -> list[Connections]:
        if node not in self._done:
            units = np.arange(self._sizes[node])  # KeyError for a node that is not dense
            self._done[node] = _connections(self._model, self._facts, node, units, self._k)
        return self._done[node]

    def __contains__(self, node: object) -> bool:  # (Mapping's would work the node out)
        return node in self._sizes

    def __iter__(self) -> Iterator[str]:
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)


def every_connection(model: Any, k: int = 6) -> dict[str, list[Connections]]:
    """:func:`strongest_connections` of every unit of every dense node: ``{node: [unit 0,
    unit 1, ...]}`` (what the views draw on hover, computed once per set of weights)."""
    return dict(LazyConnections(model, k))

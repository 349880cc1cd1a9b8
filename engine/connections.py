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
    ``(i,)`` for a vector) and its ``weight``."""

    node: str
    unit: tuple[int, ...]
    weight: float


@dataclass(frozen=True)
class Connections:
    """The strongest links of unit ``unit`` of dense node ``node``, strongest first:
    ``incoming`` from the units it reads, ``outgoing`` to the units of the dense nodes that read
    it (empty for the network's output)."""

    node: str
    unit: int
    incoming: list[Link]
    outgoing: list[Link]


def _strongest(weights: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``|w|``, strongest first (ties: the lower index first)."""
    order = np.argsort(-np.abs(weights), kind="stable")
    return order[:k]


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
    once (one ``argsort`` per matrix, not one per unit)."""
    by_name = {f.name: f for f in facts}
    w = model.layer(node).params["weight"][units]  # (U, in): what each unit reads
    src = _source(by_name, node)
    shape = by_name[src].shape
    top_in = np.argsort(-np.abs(w), axis=1, kind="stable")[:, :k]
    readers = []
    for reader in _dense_readers(facts, node):
        column = model.layer(reader).params["weight"][:, units].T  # (U, out): what reads each
        readers.append((reader, column, np.argsort(-np.abs(column), axis=1, kind="stable")[:, :k]))
    result = []
    for u, unit in enumerate(units):
        incoming = [
            Link(src, tuple(int(v) for v in np.unravel_index(int(i), shape)), float(w[u, i]))
            for i in top_in[u]
        ]
        outgoing = [
            Link(reader, (int(i),), float(column[u, i]))
            for reader, column, top in readers
            for i in top[u]
        ]
        outgoing.sort(key=lambda link: -abs(link.weight))  # stable: a reader's order stays
        result.append(Connections(node, int(unit), incoming, outgoing[:k]))
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


def every_connection(model: Any, k: int = 6) -> dict[str, list[Connections]]:
    """:func:`strongest_connections` of every unit of every dense node: ``{node: [unit 0,
    unit 1, ...]}`` (what the views draw on hover, computed once per set of weights)."""
    facts = describe_model(model)
    return {
        f.name: _connections(model, facts, f.name, np.arange(f.shape[0]), k)
        for f in facts
        if f.kind == "dense"
    }

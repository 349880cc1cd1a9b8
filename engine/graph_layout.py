"""What the views draw of a network: one description of its nodes and a layout of its graph.

:func:`describe` turns a graph spec (``model.graph_spec()``, ``architectures.build_spec(...)``)
into one :class:`NodeFacts` per node (the input first, then topological order): kind, inputs,
output shape, parameters, multiply-adds, window geometry and the receptive field in the input
through all paths. It is computed from the JSON alone (no weights) and is the one description
every view uses (the architecture diagram, the Train tab's live view, the Classify tab's network
view); GRAPH's ``engine/anatomy.py`` is meant to replace its body.

:func:`layout` places the nodes for a drawing: ``row`` is the longest path from the input (so
every edge goes to a later row), ``lane`` a column: a node continues the lane of its input when
it is that input's first reader, a further reader of a value opens a new lane (Inception's
branches side by side, ResNet's projection shortcuts), and a merge (add, concat) returns to the
leftmost lane it reads (ResNet's identity shortcuts and DenseNet's concatenations become arcs
along one lane). :func:`block_of` names the block a node belongs to (``layer1.0``,
``inception3a``), the unit the views group and collapse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.graphspec import node_params, spec_shapes

INPUT = "input"
MERGES = ("add", "concat")


@dataclass(frozen=True)
class Field:
    """Receptive field along one axis: unit ``u`` of a map sees input pixels
    ``u * jump + offset`` .. ``u * jump + offset + size - 1`` (before clipping to the image)."""

    size: int
    jump: int
    offset: int

    def window(self, u: int, limit: int) -> tuple[int, int]:
        """Half-open pixel range ``[lo, hi)`` of unit ``u``, clipped to ``0..limit``."""
        lo = u * self.jump + self.offset
        return max(0, lo), min(limit, lo + self.size)


@dataclass(frozen=True)
class NodeFacts:
    """One node as the views show it. ``shape`` excludes N; ``kernel``/``stride``/``padding``
    are 0 for nodes without a window; ``field`` is None once the maps are gone (a vector: every
    unit sees the whole image)."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    params: int
    macs: int
    kernel: int = 0
    stride: int = 0
    padding: int = 0
    field: Field | None = None

    @property
    def block(self) -> str:
        return block_of(self.name)

    def geometry(self) -> str:
        """``"3×3 stride 2 pad 1"`` for windows, ``""`` otherwise."""
        if not self.kernel:
            return ""
        text = f"{self.kernel}×{self.kernel}"
        if self.stride != 1:
            text += f" stride {self.stride}"
        return text + (f" pad {self.padding}" if self.padding else "")

    def shape_text(self) -> str:
        return "×".join(str(v) for v in self.shape)

    def details(self) -> str:
        """The hover text: kind, geometry, shape, parameters, multiply-adds, receptive field."""
        lines = [f"{self.name} ({self.kind})"]
        if self.inputs:
            lines.append("reads " + ", ".join(self.inputs))
        if self.geometry():
            lines.append(f"window {self.geometry()}")
        lines.append(f"output {self.shape_text()}")
        lines.append(f"{self.params:,} parameters · {self.macs:,} multiply-adds")
        if self.field is not None:
            lines.append(f"receptive field {self.field.size}×{self.field.size} input pixels")
        elif self.kind != INPUT:
            lines.append("receptive field: the whole image")
        return "\n".join(lines)


def block_of(name: str) -> str:
    """The block of a node: its first name part, with the second when that is an index
    (``layer1.0.conv1`` -> ``layer1.0``, ``inception3a.branch2.0`` -> ``inception3a``);
    ``""`` for a top-level node (``conv1``)."""
    parts = name.split(".")
    if len(parts) < 2:
        return ""
    if len(parts) > 2 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0]


def _window(node: dict[str, Any]) -> tuple[int, int, int]:
    if node["type"] == "conv2d":
        return int(node["kernel_size"][0]), int(node["stride"]), int(node["padding"])
    if node["type"] in ("maxpool2d", "avgpool2d"):
        return int(node["size"]), int(node["stride"]), int(node.get("padding", 0))
    return 0, 0, 0


def _macs(node: dict[str, Any], shape: tuple[int, ...]) -> int:
    if node["type"] == "conv2d":
        kh, kw = node["kernel_size"]
        return shape[1] * shape[2] * node["out_channels"] * node["in_channels"] * kh * kw
    if node["type"] == "dense":
        return int(node["in_features"] * node["out_features"])
    return 0


def _field(
    node: dict[str, Any], shape: tuple[int, ...], ins: Sequence[Field | None]
) -> Field | None:
    if len(shape) != 3 or any(f is None for f in ins):
        return None
    fields = [f for f in ins if f is not None]
    k, s, p = _window(node)
    if k:
        f = fields[0]
        return Field(f.size + (k - 1) * f.jump, f.jump * s, f.offset - p * f.jump)
    if len(fields) == 1:
        return fields[0]
    lo = min(f.offset for f in fields)  # a merge sees the union of what its inputs see
    hi = max(f.offset + f.size for f in fields)
    return Field(hi - lo, max(f.jump for f in fields), lo)


def describe(spec: dict[str, Any]) -> list[NodeFacts]:
    """The input and every node of a graph spec, in topological order (see the module doc).

    Accepts anything with the graph spec's keys; raises ``ShapeError`` for a spec that does not
    fit (``engine.graphspec.spec_shapes``)."""
    shapes = spec_shapes(spec)
    first = Field(1, 1, 0)
    facts = [NodeFacts(INPUT, INPUT, (), shapes[INPUT], 0, 0, field=first)]
    fields: dict[str, Field | None] = {INPUT: first if len(shapes[INPUT]) == 3 else None}
    for node in spec["nodes"]:
        name, shape = node["name"], shapes[node["name"]]
        inputs = tuple(node["inputs"])
        k, s, p = _window(node)
        fields[name] = _field(node, shape, [fields[i] for i in inputs])
        facts.append(
            NodeFacts(
                name, node["type"], inputs, shape, node_params(node), _macs(node, shape),
                k, s, p, fields[name],
            )
        )  # fmt: skip
    return facts


def describe_model(model: Any) -> list[NodeFacts]:
    """:func:`describe` of a built network (``model.graph_spec()``)."""
    return describe(model.graph_spec())


# ----- layout --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    name: str
    row: int
    lane: int


@dataclass(frozen=True)
class Layout:
    """Positions (``row``, ``lane``) of every node (the input included) and the edges
    ``(source, target)``; ``rows``/``lanes`` the grid's size."""

    nodes: list[Placed]
    edges: list[tuple[str, str]]
    rows: int
    lanes: int

    def position(self, name: str) -> Placed:
        return next(p for p in self.nodes if p.name == name)


def layout(facts: Sequence[NodeFacts]) -> Layout:
    """Rows and lanes of the nodes of :func:`describe` (see the module doc)."""
    readers: dict[str, list[str]] = {f.name: [] for f in facts}
    for f in facts:
        for i in f.inputs:
            readers[i].append(f.name)
    row: dict[str, int] = {}
    lane: dict[str, int] = {}
    waiting: dict[str, int] = {}  # placed nodes whose value still waits for readers: how many
    taken: set[tuple[int, int]] = set()
    for f in facts:
        row[f.name] = 1 + max((row[i] for i in f.inputs), default=-1)
        open_lanes = {lane[n] for n in waiting}  # a value waiting for a reader keeps its lane
        if not f.inputs:
            want = 0
        elif f.kind in MERGES or len(f.inputs) > 1:
            want = min(lane[i] for i in f.inputs)
        elif readers[f.inputs[0]][0] == f.name:
            want = lane[f.inputs[0]]
        else:
            want = lane[f.inputs[0]] + 1
            while want in open_lanes:
                want += 1
        while (row[f.name], want) in taken:
            want += 1
        lane[f.name] = want
        taken.add((row[f.name], want))
        for i in f.inputs:
            waiting[i] -= 1
            if not waiting[i]:
                del waiting[i]
        if readers[f.name]:
            waiting[f.name] = len(readers[f.name])
    nodes = [Placed(f.name, row[f.name], lane[f.name]) for f in facts]
    edges = [(i, f.name) for f in facts for i in f.inputs]
    return Layout(nodes, edges, max(row.values()) + 1, max(lane.values()) + 1)

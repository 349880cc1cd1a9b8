"""Writing graph specs by hand: a small builder that tracks every node's output shape.

A graph spec is the JSON-able form of a network (see ``docs/ARCHITECTURE.md``)::

    {"name": "graph", "input_shape": [C, H, W],
     "nodes": [{"type": "conv2d", "name": "conv1", "inputs": ["input"], ...}, ...],
     "output": "fc"}

Nodes are in topological order; ``"input"`` is the reserved name of the input; node names are
PyTorch module paths (``layer1.0.conv1``). :class:`SpecBuilder` lets the architecture builders
and the text form write such a spec one node at a time: it fills in what follows from the
shapes (a convolution's ``in_channels``, a dense layer's ``in_features``), checks that each
node fits its input, and names the node in the error when it does not.

Shapes here are without the batch axis: ``(C, H, W)`` for maps, ``(F,)`` for vectors.
Output sizes follow PyTorch (floor mode): ``H' = 1 + (H + 2*pad - K) // stride``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.errors import ShapeError

Shape = tuple[int, ...]


def _size(name: str, h: int, k: int, stride: int, pad: int, what: str) -> int:
    if h + 2 * pad < k:
        raise ShapeError(
            f"{name}: a {k}x{k} {what} does not fit its {h}x{h} input; use a smaller "
            "kernel, fewer pooling layers or a larger input"
        )
    return 1 + (h + 2 * pad - k) // stride


def node_output_shape(node: dict[str, Any], inputs: Sequence[Shape]) -> Shape:
    """The output shape of one spec node given its inputs' shapes; raises ShapeError naming the
    node when they do not fit (wrong channel count, window larger than the map, ...)."""
    kind, name = node["type"], node["name"]
    x = inputs[0]

    def maps() -> tuple[int, int, int]:
        if len(x) != 3:
            raise ShapeError(
                f"{name}: {kind} takes maps (C, H, W), got the vector {x}; put it before, not "
                "after a flatten, globalavgpool or dense layer (they make a vector of the maps)"
            )
        return x[0], x[1], x[2]

    if kind == "conv2d":
        c, h, w = maps()
        if c != node["in_channels"]:
            raise ShapeError(f"{name}: takes {node['in_channels']} channels, gets {c}")
        kh, kw = node["kernel_size"]
        s, p = node["stride"], node["padding"]
        ho = _size(name, h, kh, s, p, "kernel")
        return (node["out_channels"], ho, _size(name, w, kw, s, p, "kernel"))
    if kind in ("maxpool2d", "avgpool2d"):
        c, h, w = maps()
        k, s, p = node["size"], node["stride"], node.get("padding", 0)
        if 2 * p > k:
            raise ShapeError(f"{name}: padding {p} is more than half the {k}x{k} window")
        return (c, _size(name, h, k, s, p, "window"), _size(name, w, k, s, p, "window"))
    if kind == "batchnorm2d":
        c, _, _ = maps()
        if c != node["num_features"]:
            raise ShapeError(f"{name}: normalises {node['num_features']} channels, gets {c}")
        return x
    if kind == "globalavgpool":
        return (maps()[0],)
    if kind == "flatten":
        n = 1
        for v in x:
            n *= v
        return (n,)
    if kind == "dense":
        if len(x) != 1:
            raise ShapeError(f"{name}: a dense layer takes a vector; add a flatten before it")
        if x[0] != node["in_features"]:
            raise ShapeError(f"{name}: takes {node['in_features']} features, gets {x[0]}")
        return (node["out_features"],)
    if kind == "add":
        if any(s != x for s in inputs):
            raise ShapeError(f"{name}: adds tensors of different shapes {list(inputs)}")
        return x
    if kind == "concat":
        if any(len(s) != 3 or s[1:] != x[1:] for s in inputs):
            raise ShapeError(f"{name}: concatenates maps of different sizes {list(inputs)}")
        return (sum(s[0] for s in inputs), *x[1:])
    if kind in ("relu", "tanh", "sigmoid", "dropout"):
        return x
    raise ShapeError(f"{name}: unknown node type {kind!r}")


def spec_shapes(spec: dict[str, Any]) -> dict[str, Shape]:
    """Every node's output shape (and ``"input"``'s), checking the spec on the way: unique
    names, inputs defined before use (topological order), shapes that fit, an output node."""
    shapes: dict[str, Shape] = {"input": tuple(int(v) for v in spec["input_shape"])}
    for node in spec["nodes"]:
        name = node.get("name")
        if not name or name in shapes:
            raise ShapeError(f"node names must be unique and non-empty; repeated: {name!r}")
        missing = [i for i in node["inputs"] if i not in shapes]
        if missing or not node["inputs"]:
            raise ShapeError(f"{name}: reads {missing or 'nothing'}, not defined before it")
        shapes[name] = node_output_shape(node, [shapes[i] for i in node["inputs"]])
    if spec.get("output") not in shapes:
        raise ShapeError(f"the output {spec.get('output')!r} is not a node of the graph")
    return shapes


class SpecBuilder:
    """Append nodes to a graph spec; each method returns the new node's name (to feed the next).

    >>> b = SpecBuilder((1, 28, 28))
    >>> x = b.conv("conv1", "input", 8, 3)          # "same" padding: 8 x 28 x 28
    >>> x = b.dense("fc", b.flatten("flatten", x), 10)
    >>> b.shape(x)
    (10,)
    """

    def __init__(self, input_shape: Sequence[int]) -> None:
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ShapeError(f"input_shape must be (C, H, W) of positive sizes, got {shape}")
        self.input_shape: Shape = shape
        self.nodes: list[dict[str, Any]] = []
        self._shapes: dict[str, Shape] = {"input": shape}

    def shape(self, name: str) -> Shape:
        return self._shapes[name]

    def add(self, node: dict[str, Any]) -> str:
        """Append a complete node (``type``, ``name``, ``inputs`` and its settings)."""
        name = node["name"]
        if name in self._shapes:
            raise ShapeError(f"node name {name!r} is used twice")
        missing = [i for i in node["inputs"] if i not in self._shapes]
        if missing:
            raise ShapeError(f"{name}: reads {missing}, not defined before it")
        self._shapes[name] = node_output_shape(node, [self._shapes[i] for i in node["inputs"]])
        self.nodes.append(node)
        return name

    def conv(
        self,
        name: str,
        x: str,
        out: int,
        k: int,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
        init: str = "torch",
    ) -> str:
        """``out`` filters of ``k x k``; ``padding=None`` is "same" (``k // 2``, odd ``k``)."""
        return self.add(
            {
                "type": "conv2d",
                "name": name,
                "inputs": [x],
                "in_channels": self._shapes[x][0],
                "out_channels": int(out),
                "kernel_size": [int(k), int(k)],
                "stride": int(stride),
                "padding": int(k) // 2 if padding is None else int(padding),
                "bias": bool(bias),
                "init": init,
            }
        )

    def bn(self, name: str, x: str) -> str:
        c = self._shapes[x][0]
        node = {"type": "batchnorm2d", "name": name, "inputs": [x], "num_features": c}
        return self.add({**node, "eps": 1e-5, "momentum": 0.1})

    def act(self, name: str, x: str, kind: str = "relu") -> str:
        return self.add({"type": kind, "name": name, "inputs": [x]})

    def pool(
        self, name: str, x: str, size: int, stride: int | None = None, padding: int = 0, kind="max"
    ) -> str:
        return self.add(
            {
                "type": f"{kind}pool2d",
                "name": name,
                "inputs": [x],
                "size": int(size),
                "stride": int(stride or size),
                "padding": int(padding),
            }
        )

    def gap(self, name: str, x: str) -> str:
        return self.add({"type": "globalavgpool", "name": name, "inputs": [x]})

    def flatten(self, name: str, x: str) -> str:
        return self.add({"type": "flatten", "name": name, "inputs": [x]})

    def dropout(self, name: str, x: str, p: float) -> str:
        return self.add({"type": "dropout", "name": name, "inputs": [x], "p": float(p)})

    def dense(self, name: str, x: str, out: int, init: str = "torch") -> str:
        node = {"type": "dense", "name": name, "inputs": [x], "in_features": self._shapes[x][0]}
        return self.add({**node, "out_features": int(out), "init": init})

    def sum(self, name: str, a: str, b: str) -> str:
        return self.add({"type": "add", "name": name, "inputs": [a, b]})

    def concat(self, name: str, xs: Sequence[str]) -> str:
        return self.add({"type": "concat", "name": name, "inputs": list(xs)})

    def spec(self, output: str) -> dict[str, Any]:
        """The finished graph spec with ``output`` as its result."""
        return {
            "name": "graph",
            "input_shape": list(self.input_shape),
            "nodes": self.nodes,
            "output": output,
        }


def node_params(node: dict[str, Any]) -> int:
    """Trainable parameters of one node (BatchNorm's running statistics are buffers, not
    counted): conv ``F*C*KH*KW (+F)``, dense ``in*out + out``, BatchNorm ``2*C``."""
    kind = node["type"]
    if kind == "conv2d":
        kh, kw = node["kernel_size"]
        f = node["out_channels"]
        return f * node["in_channels"] * kh * kw + (f if node.get("bias", True) else 0)
    if kind == "dense":
        return node["in_features"] * node["out_features"] + node["out_features"]
    if kind == "batchnorm2d":
        return 2 * node["num_features"]
    return 0


def spec_stats(spec: dict[str, Any]) -> tuple[int, int]:
    """``(parameters, multiply-adds per image)`` of a graph spec: the totals of
    :func:`engine.graph_layout.describe`, the one per-node description (its multiply-adds count
    the convolutions ``H'*W'*F*C*KH*KW`` and dense layers ``in*out``, the bulk of the work)."""
    from engine.graph_layout import describe  # imports this module: imported on first use

    facts = describe(spec)
    return sum(f.params for f in facts), sum(f.macs for f in facts)

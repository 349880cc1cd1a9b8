"""How big a network is, from its architecture alone, before anything is built.

A model file is something people download and share, so its architecture is untrusted: it may
ask for 10^6 filters, a 10^9-wide dense layer, a 100000x100000 input or 100,000 layers. This
module reads the architecture's numbers (every field type-checked) and computes, by arithmetic
only, what building and running it would cost; :func:`check_architecture` refuses anything
beyond the documented limits below, so nothing is allocated for a hostile file.

Counted per sample (batch size 1):

- ``parameters``: weights, biases and buffers, exactly the model file's arrays;
- ``activations``: float32 values one forward pass keeps (the input, every node's output) plus
  the largest convolution workspace (im2col columns ``C*KH*KW x H'*W'``);
- ``multiply_adds``: of convolutions and dense layers;
- ``nodes``: layers or graph nodes.

Architectures understood: ``lenet5``, ``lenet-article``, ``custom``, ``sequential`` (a list of
layer configs), ``graph`` (the expanded graph form: nodes with ``inputs``) and the named family
members of :mod:`engine.architectures` when that module exists (through their graph spec).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import ShapeError, short_repr

#: Weights + biases + buffers (float32: 200 MB; training keeps three copies).
MAX_PARAMETERS = 50_000_000
#: float32 values kept by one sample's forward pass (64 MB; training multiplies by the batch).
MAX_ACTIVATIONS = 16_000_000
#: Multiply-adds of one sample's forward pass (about a second on one core).
MAX_MULTIPLY_ADDS = 5_000_000_000
#: Layers or graph nodes.
MAX_NODES = 2_000
#: Input height and width; input channels.
MAX_INPUT_SIDE = 2_048
MAX_INPUT_CHANNELS = 64
#: Any single count in an architecture (filters, features, kernel size, stride, padding).
MAX_DIMENSION = 1 << 24

#: A forward pass of one sample beyond either of these is "heavy": a window runs it off its GUI
#: thread (:func:`heavy_forward`). Measured on a loaded 2-core VM (CPU ms of ``activations``
#: of one 1-3x28-32 image, 1 BLAS thread, medians): LeNet-5 0.7 M multiply-adds 0.4 ms; the
#: family at 3x32x32 7.7-41 M, 2.4-10 ms; 'conv 128 3' twice 154 M, 8 ms; 'conv 512 3' twice
#: 2,430 M, 90 ms; 999 'conv 8 3, relu' on 28x28 (2,000 nodes) 451 M, 235 ms. Small convolutions
#: run far below BLAS speed (0.2 ms a node there), so the node count is a limit of its own.
HEAVY_MULTIPLY_ADDS = 100_000_000
HEAVY_NODES = 300

#: THE architecture names :mod:`engine.model` builds itself (the family registry adds its own);
#: the two LeNets first (the shipped model files hold them in their long form).
LENETS = ("lenet5", "lenet-article")
BUILDERS = (*LENETS, "custom", "sequential", "graph")


class TooLargeError(ShapeError):
    """An architecture is beyond the documented size limits (nothing was built)."""


@dataclass(frozen=True)
class ArchitectureSize:
    """What a network costs per sample, computed from its architecture."""

    parameters: int
    activations: int
    multiply_adds: int
    nodes: int
    output_shape: tuple[int, ...]


def family_names() -> tuple[str, ...]:
    """Names the family registry knows (none when :mod:`engine.architectures` is absent)."""
    try:
        from engine import architectures  # type: ignore[attr-defined]
    except ImportError:
        return ()
    return tuple(n for n in architectures.names() if n not in BUILDERS)


def known_names() -> tuple[str, ...]:
    return BUILDERS + family_names()


def check_architecture(arch: object, num_classes: int | None = None) -> ArchitectureSize:
    """:func:`architecture_size`, then refuse (:class:`TooLargeError`) beyond the limits."""
    size = architecture_size(arch, num_classes)
    for value, limit, what in (
        (size.parameters, MAX_PARAMETERS, "parameters"),
        (size.activations, MAX_ACTIVATIONS, "activation values per image"),
        (size.multiply_adds, MAX_MULTIPLY_ADDS, "multiply-adds per image"),
    ):
        if value > limit:
            raise TooLargeError(
                f"the architecture needs {_count(value)} {what}, more than the limit of "
                f"{_count(limit)}; it is not a network ConvScope can run"
            )
    return size


def heavy_forward(arch: object, num_classes: int | None = None) -> bool:
    """Whether one sample's forward pass of ``arch`` (a ``model.architecture``) is beyond
    :data:`HEAVY_MULTIPLY_ADDS` or :data:`HEAVY_NODES` (an architecture that cannot be sized
    counts as heavy: nothing is known of its cost)."""
    try:
        size = architecture_size(arch, num_classes)
    except ShapeError:
        return True
    return size.multiply_adds > HEAVY_MULTIPLY_ADDS or size.nodes > HEAVY_NODES


def architecture_size(arch: object, num_classes: int | None = None) -> ArchitectureSize:
    """Cost of ``arch`` (a ``model.architecture`` or graph spec). ``num_classes`` (from the
    class names) overrides the architecture's own. Raises :class:`ShapeError` naming a field of
    the wrong type, a layer that does not fit, or too many layers (:class:`TooLargeError`)."""
    if not isinstance(arch, dict):
        raise ShapeError(f"an architecture is a JSON object, got {_kind(arch)}")
    name = arch.get("name")
    if not isinstance(name, str) or name not in known_names():
        raise ShapeError(
            f"unknown architecture {short_repr(name)}; use one of {', '.join(known_names())}"
        )
    if num_classes is None and "num_classes" in arch:
        num_classes = _int(arch, "num_classes", "architecture", lo=1)
    if name in LENETS:
        return _walk_chain(_lenet(arch, name, num_classes or 10))
    if name == "custom":
        return _walk_chain(_custom(arch, num_classes or 10))
    if name == "sequential":
        layers = _list(arch, "layers", "architecture")
        _node_count(len(layers))
        return _walk_chain(
            (_shape(arch), [_dict(c, f"layer {i + 1}") for i, c in enumerate(layers)])
        )
    if name == "graph":
        return _walk_graph(arch)
    return _walk_graph(_family_spec(arch, name, num_classes))


# -- architectures as layer lists -------------------------------------------------------------


def _lenet(arch: dict, name: str, k: int) -> tuple[tuple[int, ...], list[dict]]:
    c = _int(arch, "in_channels", "architecture", lo=1, default=1, hi=MAX_INPUT_CHANNELS)
    side, pad, fc2 = (28, 2, 84) if name == "lenet5" else (32, 0, 100)
    relu = {"type": "relu"}
    layers = [
        _conv("conv1", c, 6, 5, pad),
        relu,
        {"type": "maxpool2d", "name": "pool1", "size": 2},
        _conv("conv2", 6, 16, 5, 0),
        relu,
        {"type": "maxpool2d", "name": "pool2", "size": 2},
        {"type": "flatten", "name": "flatten"},
        _dense("fc1", 400, 120),
        relu,
        _dense("fc2", 120, fc2),
        relu,
        _dense("fc3", fc2, k),
    ]
    return (c, side, side), layers


def _custom(arch: dict, k: int) -> tuple[tuple[int, ...], list[dict]]:
    where = "architecture"
    shape = _shape(arch, default=[1, 28, 28])
    filters = [_item(v, "conv_filters", where) for v in _list(arch, "conv_filters", where, [6, 16])]
    widths = [_item(v, "fc_widths", where) for v in _list(arch, "fc_widths", where, [120, 84])]
    _node_count(3 * len(filters) + 2 * len(widths) + 2)
    ks = _int(arch, "kernel_size", where, lo=1, default=5)
    pad = _int(arch, "padding", where, lo=0, default=0)
    pooling = arch.get("pooling", "max")
    layers: list[dict] = []
    cin = shape[0]
    for i, f in enumerate(filters, start=1):
        layers += [_conv(f"conv{i}", cin, f, ks, pad), {"type": "relu"}]
        if pooling != "none":
            layers.append({"type": "maxpool2d", "name": f"pool{i}", "size": 2})
        cin = f
    layers.append({"type": "flatten", "name": "flatten"})
    for i, width in enumerate(widths, start=1):
        layers += [{"type": "dense", "name": f"fc{i}", "out_features": width}, {"type": "relu"}]
    layers.append({"type": "dense", "name": "fc", "out_features": k})
    return shape, layers


def _family_spec(arch: dict, name: str, k: int | None) -> dict:
    from engine import architectures  # type: ignore[attr-defined]

    shape = _shape(arch) if "input_shape" in arch else None
    if shape is None:
        c = _int(arch, "in_channels", "architecture", lo=1, default=1, hi=MAX_INPUT_CHANNELS)
        shape = tuple(architectures.input_shape_for(name, c))
    try:
        return dict(architectures.build_spec(name, shape, k or 10))
    except ShapeError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ShapeError(f"bad architecture {name}: {exc}") from None


def _conv(name: str, cin: int, cout: int, k: int, pad: int) -> dict:
    return {"type": "conv2d", "name": name, "in_channels": cin, "out_channels": cout,
            "kernel_size": k, "padding": pad}  # fmt: skip


def _dense(name: str, fin: int, fout: int) -> dict:
    return {"type": "dense", "name": name, "in_features": fin, "out_features": fout}


# -- walking --------------------------------------------------------------------------------


class _Tally:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.params = 0
        self.acts = math.prod(shape)
        self.workspace = 0
        self.macs = 0
        self.nodes = 0

    def size(self, out: tuple[int, ...]) -> ArchitectureSize:
        return ArchitectureSize(self.params, self.acts + self.workspace, self.macs, self.nodes, out)


def _walk_chain(chain: tuple[tuple[int, ...], list[dict]]) -> ArchitectureSize:
    shape, layers = chain
    t = _Tally(shape)
    for layer in layers:
        shape = _node(layer, [shape], t)
    return t.size(shape)


def _walk_graph(spec: dict) -> ArchitectureSize:
    nodes = _list(spec, "nodes", "graph")
    _node_count(len(nodes))
    shapes: dict[str, tuple[int, ...]] = {"input": _shape(spec)}
    t = _Tally(shapes["input"])
    for i, raw in enumerate(nodes):
        node = _dict(raw, f"node {i + 1}")
        name = node.get("name")
        if not isinstance(name, str) or not name or len(name) > 200 or name in shapes:
            raise ShapeError(
                f"node {i + 1}: a name must be a new short text, got {short_repr(name)}"
            )
        inputs = node.get("inputs", ["input"] if i == 0 else [])
        if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_NODES:
            raise ShapeError(f"{name}: 'inputs' must be a list of node names")
        ins = []
        for src in inputs:
            if not isinstance(src, str) or src not in shapes:
                raise ShapeError(f"{name}: input {short_repr(src)} is not an earlier node")
            ins.append(shapes[src])
        shapes[name] = _node(node, ins, t)
    out = spec.get("output", name if nodes else "input")
    if not isinstance(out, str) or out not in shapes:
        raise ShapeError(f"graph: output {short_repr(out)} is not a node")
    return t.size(shapes[out])


def _node(layer: dict, ins: list[tuple[int, ...]], t: _Tally) -> tuple[int, ...]:
    where = str(layer.get("name"))[:60]
    kind = layer.get("type")
    if not isinstance(kind, str):
        raise ShapeError(f"{where}: a layer type must be a text, got {short_repr(kind)}")
    rule = _RULES.get(kind, _same)
    out = rule(layer, ins, where, t)
    t.nodes += 1
    t.acts += math.prod(out)
    return out


def _spatial(x: tuple[int, ...], where: str) -> tuple[int, int, int]:
    if len(x) != 3:
        raise ShapeError(f"{where}: needs a (C, H, W) input, gets {x}")
    return x[0], x[1], x[2]


def _out_side(size: int, k: int, s: int, p: int, where: str) -> int:
    out = (size + 2 * p - k) // s + 1
    if out < 1:
        raise ShapeError(f"{where}: a {k}x{k} window does not fit its {size}-pixel input")
    return out


def _conv_rule(layer: dict, ins: list, where: str, t: _Tally) -> tuple[int, ...]:
    c, h, w = _spatial(ins[0], where)
    cin = _int(layer, "in_channels", where, lo=1, default=c)
    cout = _int(layer, "out_channels", where, lo=1)
    kh, kw = _pair(layer, "kernel_size", where, lo=1)
    sh, sw = _pair(layer, "stride", where, lo=1, default=1)
    if layer.get("padding") in ("same", "valid"):
        ph, pw = (kh // 2, kw // 2) if layer["padding"] == "same" else (0, 0)
    else:
        ph, pw = _pair(layer, "padding", where, lo=0, default=0)
    ho, wo = _out_side(h, kh, sh, ph, where), _out_side(w, kw, sw, pw, where)
    bias = layer.get("bias", True) is not False
    t.params += cout * cin * kh * kw + (cout if bias else 0)
    t.macs += cout * cin * kh * kw * ho * wo
    t.workspace = max(t.workspace, cin * kh * kw * ho * wo)
    return cout, ho, wo


def _dense_rule(layer: dict, ins: list, where: str, t: _Tally) -> tuple[int, ...]:
    fin = _int(layer, "in_features", where, lo=1, default=math.prod(ins[0]))
    fout = _int(layer, "out_features", where, lo=1)
    t.params += fin * fout + fout
    t.macs += fin * fout
    return (fout,)


def _pool_rule(layer: dict, ins: list, where: str, t: _Tally) -> tuple[int, ...]:
    c, h, w = _spatial(ins[0], where)
    k = _int(layer, "size", where, lo=1, default=2)
    s = _int(layer, "stride", where, lo=1, default=k)
    p = _int(layer, "padding", where, lo=0, default=0)
    return c, _out_side(h, k, s, p, where), _out_side(w, k, s, p, where)


def _bn_rule(layer: dict, ins: list, where: str, t: _Tally) -> tuple[int, ...]:
    c = _int(layer, "num_features", where, lo=1, default=ins[0][0])
    t.params += 4 * c + 1  # weight, bias, running_mean, running_var, num_batches_tracked
    return ins[0]


def _concat_rule(layer: dict, ins: list, where: str, t: _Tally) -> tuple[int, ...]:
    return (sum(x[0] for x in ins), *ins[0][1:])


def _same(layer: dict, ins: list, where: str, t: _Tally) -> tuple[int, ...]:
    return ins[0]


_RULES: dict[str, Callable[[dict, list, str, _Tally], tuple[int, ...]]] = {
    "conv2d": _conv_rule,
    "dense": _dense_rule,
    "linear": _dense_rule,
    "maxpool2d": _pool_rule,
    "avgpool2d": _pool_rule,
    "batchnorm2d": _bn_rule,
    "concat": _concat_rule,
    "flatten": lambda layer, ins, where, t: (math.prod(ins[0]),),
    "globalavgpool": lambda layer, ins, where, t: (ins[0][0],),
}


# -- typed field access ----------------------------------------------------------------------


def _int(
    d: dict, key: str, where: str, lo: int = 0, default: int | None = None, hi: int = MAX_DIMENSION
) -> int:
    if key not in d and default is not None:
        return default
    return _item(d.get(key), key, where, lo, hi)


def _item(v: object, key: str, where: str, lo: int = 1, hi: int = MAX_DIMENSION) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ShapeError(f"{where}: {key} must be a whole number, got {short_repr(v)}")
    if not lo <= v <= hi:
        raise TooLargeError(f"{where}: {key} is {short_repr(v)}, outside {lo}..{_count(hi)}")
    return v


def _pair(d: dict, key: str, where: str, lo: int, default: int | None = None) -> tuple[int, int]:
    v = d.get(key, default)
    if isinstance(v, list) and len(v) == 2:
        return _item(v[0], key, where, lo), _item(v[1], key, where, lo)
    n = _item(v, key, where, lo)
    return n, n


def _shape(d: dict, default: list | None = None) -> tuple[int, ...]:
    v = d.get("input_shape", default)
    if not isinstance(v, list) or len(v) != 3:
        raise ShapeError(f"input_shape must be [C, H, W], got {short_repr(v)}")
    c = _item(v[0], "input channels", "input_shape", 1, MAX_INPUT_CHANNELS)
    return c, *(_item(s, "input side", "input_shape", 1, MAX_INPUT_SIDE) for s in v[1:])


def _list(d: dict, key: str, where: str, default: list | None = None) -> list:
    v = d.get(key, default)
    if not isinstance(v, list):
        raise ShapeError(f"{where}: {key} must be a list, got {short_repr(v)}")
    return v


def _dict(v: object, where: str) -> dict:
    if not isinstance(v, dict):
        raise ShapeError(f"{where}: a layer is a JSON object, got {_kind(v)}")
    return v


def _node_count(n: int) -> None:
    if n > MAX_NODES:
        raise TooLargeError(
            f"the architecture has {_count(n)} layers, more than the limit of {MAX_NODES:,}"
        )


def _kind(v: object) -> str:
    return {dict: "an object", list: "a list", str: "a text", bool: "true/false"}.get(
        type(v), "nothing" if v is None else "a number"
    )


def _count(n: int) -> str:
    if n >= 10**9:
        return f"{n / 1e9:.3g} billion"
    if n >= 10**6:
        return f"{n / 1e6:.3g} million"
    return f"{n:,}"

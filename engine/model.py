"""Models: the builders (LeNet-5, the article's LeNet, custom LeNet-like networks, chains and
graphs from JSON) and :class:`Sequential`, a chain of named layers.

Every model is an :class:`engine.graph.Network` (a graph of named nodes); parameters are reached
by ``"<node>.<param>"`` names that match the ``state_dict`` keys of the equivalent ``torch.nn``
model (``conv1.weight``, ..., ``fc3.bias``), so weights move between the two without renaming.
``build_model(architecture)`` rebuilds a model from ``model.architecture`` or from
``model.graph_spec()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.errors import EngineError, ShapeError
from engine.graph import INFERENCE_BLOCK, LayerInfo, Network
from engine.inputspec import InputSpec
from engine.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
    layer_from_config,
)
from engine.modelsize import BUILDERS, check_architecture

__all__ = [
    "BUILDERS",
    "INFERENCE_BLOCK",
    "InputSpec",
    "LayerInfo",
    "Network",
    "Sequential",
    "build_model",
    "custom",
    "lenet5",
    "lenet_article",
]


class Sequential(Network):
    """Layers applied in order: a :class:`~engine.graph.Network` whose node ``i`` reads node
    ``i - 1`` (the first reads ``"input"``). Its default ``architecture`` is the chain form
    ``{"name": "sequential", "input_shape", "layers": [layer configs]}``."""

    def __init__(
        self,
        layers: Sequence[Layer],
        input_spec: InputSpec,
        classes: Sequence[str] | None = None,
        architecture: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        layers = list(layers)
        names = ["input", *(layer.name for layer in layers)]
        nodes = [(layer, [names[i]]) for i, layer in enumerate(layers)]
        if architecture is None:
            architecture = {
                "name": "sequential",
                "input_shape": list(input_spec.shape),
                "layers": [layer.config() for layer in layers],
            }
        super().__init__(nodes, input_spec, classes, architecture, meta)


# -- builders ----------------------------------------------------------------------------

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
_POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


def lenet5(
    rng: np.random.Generator | None = None, num_classes: int = 10, in_channels: int = 1
) -> Sequential:
    """Classic LeNet-5 for 28x28 input (conv1 padded by 2), with ReLU and max-pooling.

    conv1 6@5x5 pad 2 -> relu1 -> pool1 2 -> conv2 16@5x5 -> relu2 -> pool2 2 -> flatten (400)
    -> fc1 120 -> relu3 -> fc2 84 -> relu4 -> fc3 K.
    """
    layers = _lenet_layers(rng, in_channels, conv1_padding=2, fc2=84, num_classes=num_classes)
    arch = {"name": "lenet5", "num_classes": int(num_classes), "in_channels": int(in_channels)}
    return Sequential(layers, InputSpec((in_channels, 28, 28)), architecture=arch)


def lenet_article(
    rng: np.random.Generator | None = None, num_classes: int = 10, in_channels: int = 1
) -> Sequential:
    """The article's network (its Figure 18): 32x32 input (MNIST padded by 2), conv 6@5x5,
    pool 2, conv 16@5x5, pool 2, FC 120, 100, K. Same layer names as :func:`lenet5`."""
    layers = _lenet_layers(rng, in_channels, conv1_padding=0, fc2=100, num_classes=num_classes)
    arch = {
        "name": "lenet-article",
        "num_classes": int(num_classes),
        "in_channels": int(in_channels),
    }
    return Sequential(layers, InputSpec((in_channels, 32, 32)), architecture=arch)


def _lenet_layers(rng, in_channels, conv1_padding, fc2, num_classes) -> list[Layer]:
    rng = rng if rng is not None else np.random.default_rng(0)
    return [
        Conv2D(in_channels, 6, 5, padding=conv1_padding, rng=rng, init="he", name="conv1"),
        ReLU(name="relu1"),
        MaxPool2D(2, name="pool1"),
        Conv2D(6, 16, 5, rng=rng, init="he", name="conv2"),
        ReLU(name="relu2"),
        MaxPool2D(2, name="pool2"),
        Flatten(name="flatten"),
        Dense(400, 120, rng=rng, init="he", name="fc1"),
        ReLU(name="relu3"),
        Dense(120, fc2, rng=rng, init="he", name="fc2"),
        ReLU(name="relu4"),
        Dense(fc2, num_classes, rng=rng, init="he", name="fc3"),
    ]


def custom(
    rng: np.random.Generator | None = None,
    *,
    input_shape: Sequence[int] = (1, 28, 28),
    conv_filters: Sequence[int] = (6, 16),
    kernel_size: int = 5,
    padding: int = 0,
    fc_widths: Sequence[int] = (120, 84),
    activation: str = "relu",
    pooling: str = "max",
    num_classes: int = 10,
) -> Sequential:
    """A LeNet-like network of your own: per conv layer ``conv{i}`` (``conv_filters[i-1]``
    filters, ``kernel_size``, ``padding``) -> activation -> 2x2 pooling (``"max"``, ``"avg"``
    or ``"none"``); then flatten and ``fc{i}`` layers of ``fc_widths`` with the activation, and a
    final ``fc`` of ``num_classes``. Activations are numbered like LeNet's (relu1, relu2, ...).

    Raises :class:`ShapeError` saying which layer does not fit, e.g. "conv2: a 5x5 kernel does
    not fit its 3x3 input; use a smaller kernel or fewer pooling layers".
    """
    if activation not in _ACTIVATIONS:
        raise ShapeError(f"unknown activation {activation!r}; use relu, tanh or sigmoid")
    if pooling not in (*_POOLS, "none"):
        raise ShapeError(f"unknown pooling {pooling!r}; use max, avg or none")
    conv_filters = [int(f) for f in conv_filters]
    fc_widths = [int(f) for f in fc_widths]
    if any(f < 1 for f in (*conv_filters, *fc_widths, num_classes)):
        raise ShapeError("filter counts, FC widths and num_classes must all be >= 1")
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3:
        raise ShapeError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    init = "he" if activation == "relu" else "xavier"  # see engine.layers.INIT_NOTE
    act = _ACTIVATIONS[activation]
    layers: list[Layer] = []
    cur: tuple[int, ...] = shape
    n_act = 0

    def add(layer: Layer) -> None:
        nonlocal cur
        cur = layer.output_shape(cur)  # raises ShapeError naming the layer
        layers.append(layer)

    for i, f in enumerate(conv_filters, start=1):
        add(Conv2D(cur[0], f, kernel_size, padding=padding, rng=rng, init=init, name=f"conv{i}"))
        n_act += 1
        add(act(name=f"{activation}{n_act}"))
        if pooling != "none":
            add(_POOLS[pooling](2, name=f"pool{i}"))
    add(Flatten(name="flatten"))
    widths = [*fc_widths, int(num_classes)]
    for i, width in enumerate(widths, start=1):
        last = i == len(widths)
        add(Dense(cur[0], width, rng=rng, init="xavier" if last else init, name=f"fc{i}"))
        if i < len(widths):
            n_act += 1
            add(act(name=f"{activation}{n_act}"))
    arch = {
        "name": "custom",
        "input_shape": list(shape),
        "conv_filters": conv_filters,
        "kernel_size": int(kernel_size),
        "padding": int(padding),
        "fc_widths": fc_widths,
        "activation": activation,
        "pooling": pooling,
        "num_classes": int(num_classes),
    }
    return Sequential(layers, InputSpec(shape), architecture=arch)  # type: ignore[arg-type]


def build_model(
    architecture: dict[str, Any] | str,
    rng: np.random.Generator | None = None,
    classes: Sequence[str] | None = None,
) -> Network:
    """Build a model with fresh weights from ``rng`` (seed 0 when None): ``"lenet5"``,
    ``"lenet-article"`` or an architecture dict: ``model.architecture`` (``{"name": "custom",
    ...}``, ``{"name": "sequential", "input_shape", "layers"}``) or ``model.graph_spec()``
    (``{"name": "graph", "input_shape", "nodes", "output"}``). Other names go to the family
    registry (``engine.architectures.builder(name)``) when it knows them. ``classes`` names the
    outputs (and sets their number). Raises :class:`ShapeError` naming what is wrong.

    The architecture's size (parameters, activations, multiply-adds, nodes, input) is checked
    by arithmetic before anything is allocated (:func:`engine.modelsize.check_architecture`:
    :class:`~engine.modelsize.TooLargeError` beyond the documented limits)."""
    if isinstance(architecture, str):
        arch: dict[str, Any] = {"name": architecture}
    elif isinstance(architecture, dict):
        arch = dict(architecture)
    else:
        raise ShapeError(
            f"an architecture is a name or a JSON object, got {type(architecture).__name__}"
        )
    check_architecture(arch, len(classes) if classes is not None else None)
    name = arch.pop("name", None)
    rng = rng if rng is not None else np.random.default_rng(0)
    if classes is not None:
        classes = [str(c) for c in classes]
        if "num_classes" in arch and arch["num_classes"] != len(classes):
            raise ShapeError(
                f"{len(classes)} class names given for an architecture with "
                f"{arch['num_classes']} outputs"
            )
        if name not in ("sequential", "graph"):
            arch["num_classes"] = len(classes)
    try:
        model = _build(name, arch, rng, classes)
    except EngineError:
        raise
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ShapeError(f"bad architecture {str(architecture)[:200]}: {exc}") from None
    except KeyError as exc:
        raise ShapeError(f"bad architecture {str(architecture)[:200]}: missing {exc}") from None
    if classes is not None:
        model.classes = list(classes)
    return model


def _build(
    name: Any, arch: dict[str, Any], rng: np.random.Generator, classes: list[str] | None
) -> Network:
    if name == "lenet5":
        return lenet5(rng, **arch)
    if name == "lenet-article":
        return lenet_article(rng, **arch)
    if name == "custom":
        return custom(rng, **arch)
    if name == "sequential":
        layers = [layer_from_config(c, rng) for c in _list(arch["layers"], "layers")]
        return Sequential(layers, InputSpec(_shape(arch["input_shape"])), classes)
    if name == "graph":
        return build_graph(arch, rng, classes)
    return _build_family(name, arch, rng, classes)


def build_graph(
    spec: dict[str, Any], rng: np.random.Generator, classes: Sequence[str] | None = None
) -> Network:
    """A :class:`Network` from the graph form (``spec`` without or with ``"name": "graph"``):
    ``{"input_shape": [C, H, W], "nodes": [{"type", "name", "inputs", ...config}], "output"}``."""
    unknown = set(spec) - {"name", "input_shape", "nodes", "output", "num_classes"}
    if unknown:
        raise ShapeError(f"unknown graph field(s): {', '.join(sorted(map(str, unknown)))}")
    nodes = []
    for cfg in _list(spec["nodes"], "nodes"):
        if not isinstance(cfg, dict):
            raise ShapeError(f"a graph node must be a JSON object, got {str(cfg)[:80]}")
        cfg = dict(cfg)
        inputs = _list(cfg.pop("inputs", None), f"the inputs of node {cfg.get('name')!r}")
        if not all(isinstance(i, str) for i in inputs):
            raise ShapeError(f"the inputs of node {cfg.get('name')!r} must be names")
        nodes.append((layer_from_config(cfg, rng), inputs))
    output = spec.get("output")
    if output is not None and not isinstance(output, str):
        raise ShapeError("the graph's output must be a node name")
    return Network(nodes, InputSpec(_shape(spec["input_shape"])), classes, output=output)


def _list(v: Any, what: str) -> list:
    if not isinstance(v, list):
        raise ShapeError(f"{what} must be a list, got {type(v).__name__}")
    return v


def _shape(v: Any) -> tuple[int, int, int]:
    shape = tuple(int(a) for a in _list(v, "input_shape"))
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(f"input_shape must be [C, H, W] of positive sizes, got {v}")
    return shape  # type: ignore[return-value]


def _build_family(
    name: Any, arch: dict[str, Any], rng: np.random.Generator, classes: list[str] | None
) -> Network:
    """A member of the family registry from its short form ``{"num_classes": K, "input_shape":
    [C, H, W]}`` (or ``"in_channels"``), through ``engine.architectures.builder(name)``; the
    model keeps that short form as its ``architecture``."""
    from engine import architectures

    build = architectures.builder(name) if isinstance(name, str) else None
    if build is None:
        known = ", ".join(dict.fromkeys([*architectures.names(), *BUILDERS]))
        raise ShapeError(f"unknown architecture {name!r}; use one of {known}")
    if "in_channels" in arch and "input_shape" not in arch:
        channels = arch.pop("in_channels")
        arch["input_shape"] = list(architectures.input_shape_for(name, int(channels)))
    model = build(rng, **arch)
    if classes is not None:
        model.classes = list(classes)
    return model

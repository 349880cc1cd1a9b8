"""Network sizes from the architecture alone: equal to what building gives, limits enforced."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import ShapeError
from engine.layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU
from engine.model import Sequential, build_model, custom, lenet5, lenet_article
from engine.modelsize import (
    MAX_NODES,
    TooLargeError,
    architecture_size,
    check_architecture,
    family_names,
    heavy_forward,
)


def _sequential(rng) -> Sequential:
    from engine.model import InputSpec

    layers = [
        Conv2D(3, 8, 3, stride=2, padding=1, rng=rng, name="c1"),
        ReLU(name="r1"),
        AvgPool2D(2, name="p1"),
        Conv2D(8, 4, (3, 1), rng=rng, name="c2"),
        MaxPool2D(2, stride=1, name="p2"),
        Flatten(name="f"),
        Dense(4 * 4 * 7, 5, rng=rng, name="fc"),
    ]
    return Sequential(layers, InputSpec((3, 28, 32)))


@pytest.mark.parametrize(
    "build",
    [
        lambda r: lenet5(r),
        lambda r: lenet_article(r, num_classes=4, in_channels=3),
        lambda r: custom(r, conv_filters=(8, 16, 32), padding=2, fc_widths=(64,)),
        lambda r: custom(r, input_shape=(3, 32, 32), pooling="none", kernel_size=3, fc_widths=()),
        _sequential,
    ],
)
def test_sizes_equal_the_built_model(build, rng):
    model = build(rng)
    size = architecture_size(model.architecture, len(model.classes))
    assert size.parameters == sum(p.size for p in model.parameters().values())
    assert size.nodes == len(model.summary())
    assert size.output_shape == (len(model.classes),)
    x = np.zeros((1, *model.input_spec.shape), dtype=np.float32)
    kept = sum(a.size for name, a in model.activations(x) if name != "softmax")  # with input
    convs = [(model.layer(i.name), i.output_shape) for i in model.summary() if i.kind == "conv2d"]
    workspace = max(c.in_channels * math.prod(c.kernel_size) * h * w for c, (_, h, w) in convs)
    assert size.activations == kept + workspace  # outputs, plus the largest im2col columns


@pytest.mark.parametrize("name", family_names())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_family_member_fits_the_limits(name, channels):
    from engine import architectures

    shape = list(architectures.input_shape_for(name, channels))
    size = check_architecture({"name": name, "num_classes": 10, "input_shape": shape})
    assert size.output_shape == (10,)
    spec_params, spec_macs = architectures.stats(name, channels, 10)  # the registry's own count
    spec = architectures.build_spec(name, tuple(shape), 10)
    buffers = sum(2 * n["num_features"] + 1 for n in spec["nodes"] if n["type"] == "batchnorm2d")
    assert (size.parameters, size.multiply_adds) == (spec_params + buffers, spec_macs)


@pytest.mark.parametrize(
    "arch, message",
    [
        ({"name": "sequential", "input_shape": [1, 28, 28], "layers": [{"type": "conv2d",
          "out_channels": 100_000, "kernel_size": [5, 5]}]}, "activation values"),
        ({"name": "custom", "fc_widths": [1_200_000]}, "parameters"),
        ({"name": "custom", "input_shape": [1, 32, 32], "conv_filters": [128] * 40,
          "kernel_size": 3, "padding": 1, "pooling": "none"}, "multiply-adds"),
        ({"name": "sequential", "input_shape": [1, 8, 8],
          "layers": [{"type": "relu"}] * (MAX_NODES + 1)}, "layers"),
    ],
)  # fmt: skip
def test_too_large_is_refused_before_building(arch, message):
    with pytest.raises(TooLargeError, match=message):
        check_architecture(arch)


@pytest.mark.parametrize(
    "arch, message",
    [
        ([1, 2], "JSON object"),
        ({"name": "custom", "conv_filters": "16"}, "conv_filters must be a list"),
        ({"name": "custom", "kernel_size": 2.5}, "kernel_size must be a whole number"),
        ({"name": "lenet5", "in_channels": True}, "in_channels must be a whole number"),
        ({"name": "custom", "conv_filters": [6, 16, 32, 64]}, "does not fit"),
        ({"name": "graph", "input_shape": [1, 8, 8], "nodes": [
            {"type": "relu", "name": "a", "inputs": ["nowhere"]}]}, "not an earlier node"),
    ],
)  # fmt: skip
def test_wrong_types_and_misfits_are_shape_errors(arch, message):
    with pytest.raises(ShapeError, match=message):
        architecture_size(arch)


def test_a_wide_custom_network_is_refused_quickly_where_building_would_allocate():
    arch = {"name": "custom", "conv_filters": [100_000], "fc_widths": [84]}
    with pytest.raises(TooLargeError):
        check_architecture(arch)
    assert build_model("lenet5").architecture["name"] == "lenet5"  # the small ones still build


def test_heavy_forward_tells_big_networks_from_the_usual_ones():
    from engine import architectures
    from engine.archtext import to_spec

    assert not heavy_forward({"name": "lenet5"})
    assert not heavy_forward({"name": "lenet-article", "in_channels": 3})
    for name in family_names():  # the family at its usual size stays instant
        assert not heavy_forward(architectures.choose(name, 3).architecture(10)), name
    wide = "conv 512 3, relu, conv 512 3, relu, globalavgpool, dense 10"
    assert heavy_forward(to_spec(wide, (3, 32, 32), 10))  # 2,430 M multiply-adds
    deep = ", ".join(["avgpool 1"] * 400) + ", flatten, dense 10"
    few = architecture_size(to_spec(deep, (1, 4, 4), 10))
    assert few.multiply_adds < 1000 and heavy_forward(to_spec(deep, (1, 4, 4), 10))  # 402 nodes
    assert heavy_forward({"name": "no such network"})  # its cost unknown

"""The registry of architectures: every member is a valid graph spec for grey 28x28 and colour
32x32 input and any number of classes, with the structure its paper describes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine import architectures as arch
from engine.errors import ShapeError
from engine.graphspec import spec_shapes, spec_stats
from engine.model import lenet5, lenet_article

FAMILY = [
    "lenet5",
    "lenet-article",
    "alexnet",
    "zfnet",
    "vgg",
    "googlenet",
    "resnet8",
    "resnet20",
    "densenet",
]
MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


def nodes(spec, kind=None):
    return [n for n in spec["nodes"] if kind is None or n["type"] == kind]


def by_name(spec):
    return {n["name"]: n for n in spec["nodes"]}


def test_the_registry_lists_the_family_once():
    assert arch.names() == FAMILY
    for name in FAMILY:
        assert len(arch.describe(name)) > 150, name  # a paragraph, not a label
        assert arch.get(name).title


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("classes", [1, 4, 10])
def test_every_member_is_a_valid_graph_for_grey_and_colour(name, channels, classes):
    shape = arch.input_shape_for(name, channels)
    assert shape[0] == channels
    spec = arch.build_spec(name, shape, classes)
    shapes = spec_shapes(spec)  # unique names, inputs defined before use, shapes that fit
    assert shapes[spec["output"]] == (classes,)
    assert spec["output"] == spec["nodes"][-1]["name"]
    assert spec["input_shape"] == list(shape)
    for node in spec["nodes"]:
        assert MODULE_PATH.fullmatch(node["name"]), node["name"]
        assert node["name"] != "input"
    # every node but the output is read by another node: no dead branches
    read = {i for n in spec["nodes"] for i in n["inputs"]}
    assert {n["name"] for n in spec["nodes"][:-1]} <= read
    params, macs = spec_stats(spec)
    assert 0 < params < 1_000_000 and 0 < macs < 50_000_000  # laptop-sized


def test_native_input_sizes():
    assert arch.input_shape_for("lenet5", 3) == (3, 28, 28)
    assert arch.input_shape_for("lenet-article", 1) == (1, 32, 32)
    assert arch.input_shape_for("resnet8", 1) == (1, 28, 28)
    assert arch.input_shape_for("resnet8", 3) == (3, 32, 32)
    with pytest.raises(ShapeError, match="lenet5 takes 28x28 input"):
        arch.build_spec("lenet5", (1, 32, 32), 10)
    # the family takes other sizes too
    assert spec_shapes(arch.build_spec("densenet", (3, 40, 36), 7))["fc"] == (7,)


def test_unknown_names_and_bad_arguments_say_what_to_use():
    with pytest.raises(ShapeError, match="unknown architecture 'resnet50'; use one of lenet5"):
        arch.build_spec("resnet50")
    with pytest.raises(ShapeError, match="num_classes"):
        arch.build_spec("vgg", (3, 32, 32), 0)
    with pytest.raises(ShapeError, match=r"\(C, H, W\)"):
        arch.build_spec("vgg", (32, 32), 4)


@pytest.mark.parametrize(("name", "build"), [("lenet5", lenet5), ("lenet-article", lenet_article)])
def test_lenet_specs_match_the_models_the_app_already_builds(name, build):
    model = build(num_classes=10)
    spec = arch.build_spec(name, model.input_spec.shape, 10)
    shapes = spec_shapes(spec)
    got = [(n["name"], n["type"], shapes[n["name"]]) for n in spec["nodes"]]
    want = [(info.name, info.kind, info.output_shape) for info in model.summary()]
    assert got == want
    assert spec_stats(spec)[0] == sum(p.size for p in model.parameters().values())


def test_resnet20_is_the_cifar_resnet_with_projection_shortcuts():
    spec = arch.build_spec("resnet20", (3, 32, 32), 10)
    # 0.27 M parameters: the CIFAR ResNet-20 of He et al. with 1x1 projection shortcuts
    assert spec_stats(spec)[0] == 272_474
    n = by_name(spec)
    weighted = [x for x in nodes(spec) if x["type"] in ("conv2d", "dense")]
    main_path = [x for x in weighted if "downsample" not in x["name"]]
    assert len(main_path) == 20  # 6n + 2 with n = 3
    assert n["layer1.0.conv1"]["bias"] is False
    assert n["layer1.0.bn1"]["inputs"] == ["layer1.0.conv1"]
    assert n["layer1.0.add"]["inputs"] == ["layer1.0.bn2", "relu"]  # identity shortcut
    assert "layer1.0.downsample.0" not in n
    down = n["layer2.0.downsample.0"]
    assert (down["kernel_size"], down["stride"], down["padding"]) == ([1, 1], 2, 0)
    assert n["layer2.0.downsample.1"]["type"] == "batchnorm2d"
    assert n["layer2.0.add"]["inputs"] == ["layer2.0.bn2", "layer2.0.downsample.1"]
    assert n["layer3.2.relu2"]["inputs"] == ["layer3.2.add"]
    shapes = spec_shapes(spec)
    assert shapes["layer1.2.relu2"] == (16, 32, 32)
    assert shapes["layer2.0.add"] == (32, 16, 16)
    assert shapes["layer3.2.relu2"] == (64, 8, 8)
    assert n["fc"]["inputs"] == ["avgpool"] and n["avgpool"]["type"] == "globalavgpool"


def test_resnet8_has_one_block_per_stage():
    n = by_name(arch.build_spec("resnet8", (1, 28, 28), 4))
    assert {"layer1.0.conv1", "layer2.0.downsample.0", "layer3.0.conv2"} <= set(n)
    assert not any(k.startswith("layer1.1") for k in n)


def test_alexnet_and_zfnet_differ_in_the_first_filter_only():
    a = arch.build_spec("alexnet", (3, 32, 32), 4)
    z = arch.build_spec("zfnet", (3, 32, 32), 4)
    ca, cz = by_name(a)["conv1"], by_name(z)["conv1"]
    assert ca["kernel_size"][0] > cz["kernel_size"][0] and ca["stride"] > cz["stride"]
    assert [x["name"] for x in a["nodes"]] == [x["name"] for x in z["nodes"]]
    for spec in (a, z):
        pools = nodes(spec, "maxpool2d")
        assert pools and all(p["size"] == 3 and p["stride"] == 2 for p in pools)  # overlapping
        assert all(x["type"] == "relu" for x in nodes(spec) if x["name"].startswith("relu"))
        drops = nodes(spec, "dropout")
        assert len(drops) == 2 and all(by_name(spec)[d["name"]]["p"] == 0.5 for d in drops)
        classifier = [x["type"] for x in spec["nodes"][spec["nodes"].index(drops[0]) :]]
        assert "conv2d" not in classifier  # dropout sits in the fully connected part


def test_vgg_stacks_3x3_convs_with_batchnorm_and_one_pool_per_stack():
    spec = arch.build_spec("vgg", (3, 32, 32), 4)
    convs = nodes(spec, "conv2d")
    assert all(c["kernel_size"] == [3, 3] and c["padding"] == 1 for c in convs)
    readers = {i: x for x in spec["nodes"] for i in x["inputs"]}
    assert all(readers[c["name"]]["type"] == "batchnorm2d" for c in convs)
    pools = nodes(spec, "maxpool2d")
    assert [p["name"] for p in pools] == ["block1.pool", "block2.pool", "block3.pool"]
    assert len(convs) == 2 * len(pools)


def test_googlenet_inception_modules_have_four_branches_concatenated():
    spec = arch.build_spec("googlenet", (3, 32, 32), 4)
    n = by_name(spec)
    shapes = spec_shapes(spec)
    cats = nodes(spec, "concat")
    assert [c["name"] for c in cats] == ["inception3a.cat", "inception3b.cat", "inception4a.cat"]
    for cat in cats:
        module = cat["name"].rsplit(".", 1)[0]
        assert len(cat["inputs"]) == 4
        assert shapes[cat["name"]][0] == sum(shapes[i][0] for i in cat["inputs"])
        assert n[f"{module}.branch1.0"]["kernel_size"] == [1, 1]
        assert n[f"{module}.branch2.0"]["kernel_size"] == [1, 1]
        assert n[f"{module}.branch2.2"]["kernel_size"] == [3, 3]
        assert n[f"{module}.branch3.2"]["kernel_size"] == [5, 5]
        pool = n[f"{module}.branch4.0"]
        assert (pool["type"], pool["size"], pool["stride"]) == ("maxpool2d", 3, 1)
        assert n[f"{module}.branch4.1"]["kernel_size"] == [1, 1]
        # all four branches read the module's input
        first = {n[f"{module}.branch{i}.0"]["inputs"][0] for i in range(1, 5)}
        assert len(first) == 1
    assert nodes(spec, "globalavgpool") and not nodes(spec, "flatten")


def test_densenet_grows_by_12_channels_per_layer_and_transitions_halve():
    spec = arch.build_spec("densenet", (3, 32, 32), 4)
    n = by_name(spec)
    shapes = spec_shapes(spec)
    for blk in (1, 2, 3):
        for i in range(1, 5):
            p = f"block{blk}.layer{i}"
            assert [n[f"{p}.norm"]["type"], n[f"{p}.relu"]["type"]] == ["batchnorm2d", "relu"]
            assert n[f"{p}.conv"]["out_channels"] == 12
            before = shapes[n[f"{p}.cat"]["inputs"][0]][0]
            assert shapes[f"{p}.cat"][0] == before + 12
    for t in ("trans1", "trans2"):
        assert n[f"{t}.conv"]["kernel_size"] == [1, 1]
        assert (n[f"{t}.pool"]["type"], n[f"{t}.pool"]["size"]) == ("avgpool2d", 2)
        c, h, _ = shapes[n[f"{t}.norm"]["inputs"][0]]
        assert shapes[f"{t}.pool"][:2] == (c // 2, h // 2)


def test_docs_family_is_the_registry():
    doc = Path(__file__).resolve().parents[2] / "docs" / "FAMILY.md"
    assert doc.read_text(encoding="utf-8") == arch.family_markdown(), (
        "docs/FAMILY.md is out of date: python -m engine.architectures > docs/FAMILY.md"
    )


def test_choose_reads_names_text_and_files(tmp_path):
    c = arch.choose("resnet8", channels=3)
    assert (c.kind, c.label, c.input_shape) == ("name", "resnet8", (3, 32, 32))
    assert c.architecture(4) == {"name": "resnet8", "num_classes": 4, "input_shape": [3, 32, 32]}
    c = arch.choose("lenet5", channels=1)
    assert c.architecture(10) == {"name": "lenet5", "num_classes": 10, "in_channels": 1}
    c = arch.choose("conv 8 3, relu, maxpool 2", channels=1)
    assert (c.kind, c.label, c.input_shape) == ("text", "custom", (1, 28, 28))
    spec = c.architecture(3)
    assert spec["name"] == "graph" and spec_shapes(spec)[spec["output"]] == (3,)
    path = tmp_path / "net.json"
    path.write_text(json.dumps(arch.choose("flatten, dense 5", 1).architecture(5)))
    c = arch.choose(str(path), channels=1)
    assert (c.kind, c.label, c.input_shape) == ("file", "net", (1, 28, 28))
    assert c.architecture(5)["name"] == "graph" and "num_classes" not in c.architecture(5)
    with pytest.raises(ShapeError, match="unknown architecture 'resnet 8'"):
        arch.choose("resnet 8")


@pytest.mark.parametrize("channels", [1, 3])
def test_pytorch_runs_every_spec_with_the_same_shapes_and_parameters(channels):
    """The bench's tiny interpreter of a spec in torch: every node's shape and the parameter
    count agree with the spec arithmetic (an independent check of it)."""
    torch = pytest.importorskip("torch")
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "zoo_epoch.py"
    loader = importlib.util.spec_from_file_location("zoo_epoch", path)
    zoo = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(zoo)
    for name in FAMILY:
        shape = arch.input_shape_for(name, channels)
        spec = arch.build_spec(name, shape, 3)
        net = zoo.torch_module(spec)
        assert sum(p.numel() for p in net.parameters()) == spec_stats(spec)[0], name
        keys = set(net.state_dict())
        for node in spec["nodes"]:
            if node["type"] == "conv2d":
                assert f"{node['name']}.weight" in keys
            if node["type"] == "batchnorm2d":
                assert f"{node['name']}.running_var" in keys
        net.eval()
        with torch.no_grad():
            out = net(torch.zeros(2, *shape))
        assert tuple(out.shape) == (2, 3), name

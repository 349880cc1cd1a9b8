"""The one registry of architectures: the ConvNet family the article names, each a graph spec.

Every member is registered once here, with its CLI name, a title, a paragraph (in our own words)
on the idea it adds, and a builder ``(input_shape, num_classes) -> graph spec``. The CLI's
``--arch`` choices and help, the Train tab's architecture list and ``docs/FAMILY.md`` all read
this registry: :func:`names`, :func:`describe`, :func:`build_spec`.

Each member takes grey ``(1, 28, 28)`` and colour ``(3, 32, 32)`` input (any size from 28x28 up
for the family; LeNet-5 is fixed at 28x28 and the article's LeNet at 32x32, and images are
resized to them) and any number of classes. They are scaled down from the papers (fewer
channels, fewer blocks) so that one epoch of a few thousand CIFAR-sized images runs in minutes
on a laptop CPU; the ideas, and the node names of the PyTorch equivalents, are kept.

Size: each member's builder sits beside its registry entry and paragraph, and the
paragraphs are a large part of the file; one registry is the point of the module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ShapeError, short_repr
from engine.graphspec import SpecBuilder, spec_stats
from engine.modelsize import LENETS, check_architecture  # LeNets: built by engine.model

SpecFn = Callable[[tuple[int, int, int], int], dict[str, Any]]


@dataclass(frozen=True)
class Architecture:
    """One registered architecture: ``build(input_shape, num_classes) -> graph spec``."""

    name: str
    title: str
    idea: str
    build: SpecFn
    input_size: tuple[int, int] | None = None  # a fixed (H, W), or None: any size >= 28x28


# -- LeNet (the chain the app started with) ---------------------------------------------------


def _lenet(conv1_padding: int, fc2: int) -> SpecFn:
    # LeNet keeps He initialisation (engine.layers.INIT_NOTE explains why)
    def build(shape: tuple[int, int, int], k: int) -> dict[str, Any]:
        b = SpecBuilder(shape)
        x = b.conv("conv1", "input", 6, 5, padding=conv1_padding, init="he")
        x = b.pool("pool1", b.act("relu1", x), 2)
        x = b.conv("conv2", x, 16, 5, padding=0, init="he")
        x = b.pool("pool2", b.act("relu2", x), 2)
        x = b.act("relu3", b.dense("fc1", b.flatten("flatten", x), 120, init="he"))
        x = b.act("relu4", b.dense("fc2", x, fc2, init="he"))
        return b.spec(b.dense("fc3", x, k, init="he"))

    return build


# -- AlexNet and ZF Net -----------------------------------------------------------------------


def _alexnet(conv1_kernel: int, conv1_stride: int) -> SpecFn:
    """Five convolutions (conv1 as given), overlapping 3x3/2 max pools, a dropout classifier."""

    def build(shape: tuple[int, int, int], k: int) -> dict[str, Any]:
        b = SpecBuilder(shape)
        x = b.conv("conv1", "input", 32, conv1_kernel, stride=conv1_stride)
        x = b.pool("pool1", b.act("relu1", x), 3, 2, padding=1)
        x = b.pool("pool2", b.act("relu2", b.conv("conv2", x, 64, 5)), 3, 2, padding=1)
        x = b.act("relu3", b.conv("conv3", x, 96, 3))
        x = b.act("relu4", b.conv("conv4", x, 96, 3))
        x = b.act("relu5", b.conv("conv5", x, 64, 3))
        x = b.flatten("flatten", b.pool("pool3", x, 3, 2, padding=1))
        x = b.act("relu6", b.dense("fc1", b.dropout("drop1", x, 0.5), 256))
        x = b.act("relu7", b.dense("fc2", b.dropout("drop2", x, 0.5), 256))
        return b.spec(b.dense("fc3", x, k))

    return build


# -- VGG ----------------------------------------------------------------------------------------


def _vgg(shape: tuple[int, int, int], k: int) -> dict[str, Any]:
    """Three stacks of two 3x3 conv + BatchNorm + ReLU, a 2x2 max pool after each stack."""
    b = SpecBuilder(shape)
    x = "input"
    for s, width in enumerate((16, 32, 64), start=1):
        for i in (1, 2):
            x = b.conv(f"block{s}.conv{i}", x, width, 3, bias=False)
            x = b.act(f"block{s}.relu{i}", b.bn(f"block{s}.bn{i}", x))
        x = b.pool(f"block{s}.pool", x, 2)
    x = b.act("relu", b.dense("fc1", b.flatten("flatten", x), 128))
    return b.spec(b.dense("fc2", b.dropout("dropout", x, 0.5), k))


# -- GoogLeNet ----------------------------------------------------------------------------------


def _inception(b: SpecBuilder, name: str, x: str, widths: Sequence[int]) -> str:
    """Four branches side by side, concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5;
    3x3 max pool -> 1x1. ``widths = (b1, b2 reduce, b2, b3 reduce, b3, b4)``."""
    w1, r3, w3, r5, w5, wp = widths
    one = b.act(f"{name}.branch1.1", b.conv(f"{name}.branch1.0", x, w1, 1))
    two = b.act(f"{name}.branch2.1", b.conv(f"{name}.branch2.0", x, r3, 1))
    two = b.act(f"{name}.branch2.3", b.conv(f"{name}.branch2.2", two, w3, 3))
    three = b.act(f"{name}.branch3.1", b.conv(f"{name}.branch3.0", x, r5, 1))
    three = b.act(f"{name}.branch3.3", b.conv(f"{name}.branch3.2", three, w5, 5))
    four = b.pool(f"{name}.branch4.0", x, 3, 1, padding=1)
    four = b.act(f"{name}.branch4.2", b.conv(f"{name}.branch4.1", four, wp, 1))
    return b.concat(f"{name}.cat", [one, two, three, four])


def _googlenet(shape: tuple[int, int, int], k: int) -> dict[str, Any]:
    b = SpecBuilder(shape)
    x = b.act("relu1", b.conv("conv1", "input", 32, 3))
    x = b.pool("pool1", x, 3, 2, padding=1)
    x = _inception(b, "inception3a", x, (16, 16, 32, 4, 8, 8))  # 64 channels
    x = _inception(b, "inception3b", x, (24, 24, 48, 8, 12, 12))  # 96
    x = b.pool("pool2", x, 3, 2, padding=1)
    x = _inception(b, "inception4a", x, (32, 24, 48, 8, 16, 16))  # 112
    x = b.dropout("dropout", b.gap("avgpool", x), 0.2)
    return b.spec(b.dense("fc", x, k))


# -- ResNet ----------------------------------------------------------------------------------


def _basic_block(b: SpecBuilder, name: str, x: str, width: int, stride: int) -> str:
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut (identity, or a 1x1 conv + BN projection
    when the shape changes), then ReLU."""
    y = b.conv(f"{name}.conv1", x, width, 3, stride=stride, bias=False)
    y = b.act(f"{name}.relu1", b.bn(f"{name}.bn1", y))
    y = b.bn(f"{name}.bn2", b.conv(f"{name}.conv2", y, width, 3, bias=False))
    shortcut = x
    if stride != 1 or b.shape(x)[0] != width:
        p = b.conv(f"{name}.downsample.0", x, width, 1, stride=stride, padding=0, bias=False)
        shortcut = b.bn(f"{name}.downsample.1", p)
    return b.act(f"{name}.relu2", b.sum(f"{name}.add", y, shortcut))


def _resnet(n: int) -> SpecFn:
    """The CIFAR ResNet of 6n+2 layers: conv1, three stages of n basic blocks (16, 32, 64
    channels, the last two starting with stride 2), global average pooling, fc."""

    def build(shape: tuple[int, int, int], k: int) -> dict[str, Any]:
        b = SpecBuilder(shape)
        x = b.act("relu", b.bn("bn1", b.conv("conv1", "input", 16, 3, bias=False)))
        for stage, width in enumerate((16, 32, 64), start=1):
            for i in range(n):
                stride = 2 if stage > 1 and i == 0 else 1
                x = _basic_block(b, f"layer{stage}.{i}", x, width, stride)
        return b.spec(b.dense("fc", b.gap("avgpool", x), k))

    return build


# -- DenseNet ------------------------------------------------------------------------------


def _densenet(shape: tuple[int, int, int], k: int) -> dict[str, Any]:
    """Three dense blocks of 4 layers (BN-ReLU-3x3 conv of 12 new channels, concatenated to
    everything before), transitions (BN-ReLU-1x1 conv halving the channels, 2x2 average pool)."""
    growth, layers = 12, 4
    b = SpecBuilder(shape)
    x = b.conv("conv1", "input", 2 * growth, 3, bias=False)
    for blk in (1, 2, 3):
        for i in range(1, layers + 1):
            p = f"block{blk}.layer{i}"
            y = b.act(f"{p}.relu", b.bn(f"{p}.norm", x))
            y = b.conv(f"{p}.conv", y, growth, 3, bias=False)
            x = b.concat(f"{p}.cat", [x, y])
        if blk < 3:
            t = f"trans{blk}"
            y = b.act(f"{t}.relu", b.bn(f"{t}.norm", x))
            y = b.conv(f"{t}.conv", y, b.shape(x)[0] // 2, 1, padding=0, bias=False)
            x = b.pool(f"{t}.pool", y, 2, kind="avg")
    x = b.act("relu", b.bn("norm", x))
    return b.spec(b.dense("fc", b.gap("avgpool", x), k))


# -- the registry -------------------------------------------------------------------------------

_REGISTRY: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "lenet5",
            "LeNet-5",
            "Two convolutions, each followed by ReLU and 2x2 max pooling, then three fully "
            "connected layers. This is the pattern every later network elaborates: learned "
            "local filters, a non-linearity, pooling that trades position for robustness, and a "
            "classifier on top. Takes 28x28 input (conv1 padded by 2).",
            _lenet(conv1_padding=2, fc2=84),
            input_size=(28, 28),
        ),
        Architecture(
            "lenet-article",
            "The article's LeNet",
            "The network drawn in the article's Figure 18: 32x32 input (a 28x28 digit padded "
            "by 2), conv 6@5x5, pool, conv 16@5x5, pool, then fully connected layers of 120, "
            "100 and one per class. The same layer names as LeNet-5.",
            _lenet(conv1_padding=0, fc2=100),
            input_size=(32, 32),
        ),
        Architecture(
            "alexnet",
            "AlexNet (small)",
            "Deeper and wider than LeNet: a large first filter with a stride (7x7, stride 2, "
            "here) looks at a big patch at once, ReLU everywhere makes deep training fast, max "
            "pooling windows overlap (3x3 every 2 pixels), and dropout in the fully connected "
            "classifier switches random units off while training so that no unit can rely on "
            "another.",
            _alexnet(conv1_kernel=7, conv1_stride=2),
        ),
        Architecture(
            "zfnet",
            "ZF Net (small)",
            "AlexNet with a smaller first filter and stride (3x3, stride 1, here). Looking at "
            "AlexNet's first-layer filters, Zeiler and Fergus saw that the big stride skipped "
            "detail and left dead filters; a finer first layer keeps more of the image for the "
            "layers after it, at the price of more computation.",
            _alexnet(conv1_kernel=3, conv1_stride=1),
        ),
        Architecture(
            "vgg",
            "VGG (small)",
            "Only 3x3 convolutions, stacked: two 3x3 layers see a 5x5 patch with fewer weights "
            "and one more non-linearity than a single 5x5 layer. Each stack is followed by one "
            "2x2 max pooling and doubles the channels. BatchNorm after every convolution "
            "normalises each channel over the batch, which makes such deep stacks easy to train.",
            _vgg,
        ),
        Architecture(
            "googlenet",
            "GoogLeNet (small)",
            "Inception modules: four branches look at the same input side by side (a 1x1 "
            "convolution; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pooling then 1x1) and their maps "
            "are concatenated, so the network chooses the filter size per feature. The 1x1 "
            "convolutions shrink the channels before the expensive filters. Global average "
            "pooling replaces the big fully connected layers.",
            _googlenet,
        ),
        Architecture(
            "resnet8",
            "ResNet-8",
            "Residual blocks: each block adds its input back to its output (a shortcut), so it "
            "only learns a correction, and gradients flow straight through the additions to "
            "the first layers. Basic blocks of two 3x3 convolutions with BatchNorm; where a "
            "stage halves the size and doubles the channels the shortcut is a 1x1 convolution "
            "(a projection). The CIFAR ResNet with 6n+2 layers, n = 1.",
            _resnet(1),
        ),
        Architecture(
            "resnet20",
            "ResNet-20",
            "The same residual design with three blocks per stage (6n+2 layers, n = 3): 20 "
            "layers that still train as easily as a shallow network, because every block "
            "can start as (almost) the identity.",
            _resnet(3),
        ),
        Architecture(
            "densenet",
            "DenseNet (small)",
            "Dense blocks: every layer (BatchNorm, ReLU, 3x3 convolution) adds 12 new channels "
            "(the growth rate) and passes on everything it received, concatenated, so each "
            "layer sees the maps of all layers before it in its block and features are reused "
            "instead of relearned. Transitions between blocks (1x1 convolution, 2x2 average "
            "pooling) halve the channels and the size.",
            _densenet,
        ),
    )
}

DEFAULT_INPUT = {1: (1, 28, 28), 3: (3, 32, 32)}


def names() -> list[str]:
    """The registered architecture names, in the order to show them."""
    return list(_REGISTRY)


def get(name: str) -> Architecture:
    """The registry entry; ShapeError listing the names when there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ShapeError(
            f"unknown architecture {name!r}; use one of {', '.join(names())}"
        ) from None


def describe(name: str) -> str:
    """The paragraph on the idea ``name`` adds, in our own words."""
    return get(name).idea


def input_shape_for(name: str, channels: int) -> tuple[int, int, int]:
    """The input ``(C, H, W)`` the member takes for ``channels``-channel images: its fixed size,
    else 28x28 for grey and 32x32 for colour."""
    fixed = get(name).input_size
    if fixed is not None:
        return (int(channels), *fixed)
    return DEFAULT_INPUT.get(int(channels), (int(channels), 32, 32))


def image_sizes(arch: str, channels: int | None = None) -> dict[int, tuple[int, int]]:
    """The (H, W) a dataset is read at for the network ``arch`` (a name, the text form or a
    FILE.json, as :func:`choose` reads it), per channel count: for ``channels`` only, or for
    grey and colour when the data's own colour decides. ``resnet8``: ``{1: (28, 28), 3: (32,
    32)}``; ``lenet5``: 28x28 for both. ``convscope train`` and the Train tab both read their
    data at these sizes (image folders decoded at them, IDX and CIFAR images resized)."""
    wanted = (int(channels),) if channels else (1, 3)
    name = arch.strip()
    if name.lower().endswith(".json"):
        return {c: _size(choose(name, c).input_shape) for c in wanted}
    if name in _REGISTRY:
        return {c: _size(input_shape_for(name, c)) for c in wanted}
    # the text form (checked elsewhere): the default input for the colour
    return {c: _size(DEFAULT_INPUT.get(c, (c, 32, 32))) for c in wanted}


def _size(shape: Sequence[int]) -> tuple[int, int]:
    return (int(shape[1]), int(shape[2]))


def build_spec(
    name: str, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10
) -> dict[str, Any]:
    """The graph spec of ``name`` for ``input_shape (C, H, W)`` and ``num_classes`` outputs."""
    arch = get(name)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(f"input_shape must be (C, H, W) of positive sizes, got {shape}")
    if int(num_classes) < 1:
        raise ShapeError(f"num_classes must be >= 1, got {num_classes}")
    if arch.input_size is not None and shape[1:] != arch.input_size:
        h, w = arch.input_size
        raise ShapeError(
            f"{name} takes {h}x{w} input, not {shape[1]}x{shape[2]}; images are resized to it"
        )
    return arch.build(shape, int(num_classes))  # type: ignore[arg-type]


def builder(name: str) -> Callable[..., Any] | None:
    """``build(rng, num_classes=10, input_shape=(3, 32, 32)) -> Network`` for a family member
    (what ``engine.model.build_model`` calls for a name it does not build itself), or None.

    The model keeps the short architecture ``{"name", "num_classes", "input_shape"}``;
    ``model.graph_spec()`` gives the expanded graph."""
    if name not in _REGISTRY or name in LENETS:
        return None

    def build(
        rng: Any = None, num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32)
    ) -> Any:
        import numpy as np

        from engine.model import build_graph

        shape = [int(v) for v in input_shape]
        spec = build_spec(name, shape, int(num_classes))
        model = build_graph(spec, rng if rng is not None else np.random.default_rng(0))
        model.architecture = {"name": name, "num_classes": int(num_classes), "input_shape": shape}
        return model

    return build


@dataclass(frozen=True)
class Choice:
    """What the user chose in ``--arch`` or the Train tab's architecture box.

    ``kind`` is ``"name"`` (a registered architecture), ``"text"`` (a custom network's text
    form) or ``"file"`` (a JSON file with a model file's architecture); ``label`` is a short
    name for file names and messages; ``input_shape`` what the network takes."""

    kind: str
    label: str
    input_shape: tuple[int, int, int]
    source: Any  # the name, the text, or the architecture dict read from the file

    def architecture(self, num_classes: int) -> dict[str, Any]:
        """The architecture dict :func:`engine.model.build_model` takes, for ``num_classes``."""
        k = int(num_classes)
        if self.kind == "name":
            if self.source in LENETS:
                return {"name": self.source, "num_classes": k, "in_channels": self.input_shape[0]}
            return {"name": self.source, "num_classes": k, "input_shape": list(self.input_shape)}
        if self.kind == "text":
            from engine.archtext import to_spec

            return to_spec(self.source, self.input_shape, k)
        arch = dict(self.source)
        if arch.get("name") != "graph":
            arch["num_classes"] = k  # a named architecture: the dataset sets the classes
            return arch
        out = check_architecture(arch).output_shape  # a graph keeps its own classifier
        if len(out) == 1 and out[0] != k:
            raise ShapeError(
                f"{self.label}.json: the network gives {out[0]} class scores but the dataset "
                f"has {k} classes; set the out_features of its last dense layer to {k}"
            )
        return arch


def choose(arch: str, channels: int | None = None) -> Choice:
    """Read an ``--arch`` value: a registered name, ``FILE.json`` (the ``architecture`` of a
    model file's metadata, or that whole metadata) or a custom network's text form (anything
    else; see :mod:`engine.archtext`). Checked now (ShapeError with the reason), before any
    data is loaded; the classes come later, in :meth:`Choice.architecture`. ``channels``: the
    images' colour; None when not fixed yet (a FILE.json then keeps its own, others are
    grey; a text network that only colour 32x32 input fits is read for colour: the data
    decides, and a grey dataset is refused when the text is chosen again for it)."""
    arch = arch.strip()
    if arch.lower().endswith(".json") and arch not in _REGISTRY:
        return _choose_file(Path(arch).expanduser(), channels)
    if channels is None and arch not in _REGISTRY:
        try:
            return choose(arch, 1)
        except ShapeError as grey:
            try:
                return choose(arch, 3)
            except ShapeError:
                raise grey from None
    channels = 1 if channels is None else channels
    if arch in _REGISTRY:
        return Choice("name", arch, input_shape_for(arch, channels), arch)
    from engine.archtext import LAYER_WORDS, non_ascii_note, to_spec

    shape = DEFAULT_INPUT.get(int(channels), (int(channels), 32, 32))
    first = arch.split(maxsplit=1)[0].lower() if arch else ""
    if arch and "," not in arch and "\n" not in arch and first not in LAYER_WORDS:
        # no layer of the text form: most likely a mistyped name
        raise ShapeError(
            f"unknown architecture {short_repr(arch)}; use one of {', '.join(names())}, a "
            "FILE.json or a network in the text form, e.g. 'conv 16 3, relu, maxpool 2, "
            "flatten, dense 10'" + non_ascii_note(arch)
        )
    to_spec(arch, shape, None)  # raises ArchTextError naming the bad token
    return Choice("text", "custom", shape, arch)


def _choose_file(path: Path, channels: int | None) -> Choice:
    from engine.errors import ModelFileError
    from engine.modelschema import MAX_META_CHARS, check_json_text, json_int

    try:
        if path.exists() and not path.is_file():  # a FIFO would block, a folder is no file
            raise ShapeError(f"{path}: not a regular file; give an architecture .json file")
        if path.exists() and path.stat().st_size > MAX_META_CHARS:
            raise ShapeError(f"{path}: too large for an architecture file (at most 8 MB)")
        text = path.read_text(encoding="utf-8-sig")  # Notepad starts UTF-8 with a BOM
        check_json_text(text, path, "the file")  # bounded before parsing (no RecursionError)
        data = json.loads(text, parse_constant=_no_constant, parse_int=json_int)
    except ModelFileError as exc:
        raise ShapeError(str(exc)) from None
    except ShapeError:
        raise
    except OSError as exc:
        raise ShapeError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShapeError(f"{path}: not a JSON file ({exc})") from None
    except ValueError as exc:  # NaN, a number of thousands of digits
        raise ShapeError(f"{path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("architecture"), dict):
        data = data["architecture"]  # a model file's whole metadata
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ShapeError(
            f'{path}: not an architecture; expected a JSON object with a "name" (the '
            '"architecture" of a model file\'s metadata)'
        )
    name = data["name"]
    if name in LENETS:
        channels_in = data.get("in_channels", 1)
        if not isinstance(channels_in, int) or isinstance(channels_in, bool) or channels_in < 1:
            raise ShapeError(f"{path}: in_channels must be a whole number >= 1")
        shape = input_shape_for(name, channels_in)
    elif "input_shape" in data:
        try:
            shape = tuple(int(v) for v in data["input_shape"])  # type: ignore[assignment]
        except (TypeError, ValueError, OverflowError):
            shape = ()  # type: ignore[assignment]
        if len(shape) != 3 or min(shape) < 1:
            raise ShapeError(
                f"{path}: input_shape must be [C, H, W], got {str(data['input_shape'])[:60]}"
            )
    elif name in _REGISTRY:
        shape = input_shape_for(name, 1 if channels is None else channels)
    else:
        raise ShapeError(f"{path}: architecture {name!r} has no input_shape")
    if channels is not None and shape[0] != int(channels):
        raise ShapeError(
            f"{path}: the network takes {shape[0]}-channel input; add --channels {shape[0]}"
        )
    try:  # by arithmetic, before any data is read: a cycle, a missing node, a huge layer
        check_architecture(data)
    except ShapeError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return Choice("file", path.stem, shape, data)  # type: ignore[arg-type]


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def stats(name: str, channels: int = 3, num_classes: int = 10) -> tuple[int, int]:
    """``(parameters, multiply-adds per image)`` of ``name`` for its input of ``channels``."""
    return spec_stats(build_spec(name, input_shape_for(name, channels), num_classes))


def family_markdown() -> str:
    """``docs/FAMILY.md``, written from this registry and the text form's grammar (a test
    checks the file against it; regenerate with ``python -m engine.architectures``)."""
    from engine.archtext import GRAMMAR

    lines = [
        "# The ConvNet family",
        "",
        "<!-- Generated: python -m engine.architectures > docs/FAMILY.md (a test checks it) -->",
        "",
        "The networks ConvScope builds by name (`convscope train --arch NAME`, the Train",
        "tab's architecture list). Each is a graph of named nodes whose names are the PyTorch",
        "module paths of the equivalent `torch.nn` module. Figures for 10 classes;",
        "multiply-adds per image (convolutions and dense layers).",
        "",
        "| name | network | grey input | parameters | multiply-adds | colour input "
        "| parameters | multiply-adds |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for name in names():
        row = [f"`{name}`", get(name).title]
        for channels in (1, 3):
            p, m = stats(name, channels)
            row += ["x".join(map(str, input_shape_for(name, channels))), f"{p:,}", f"{m:,}"]
        lines.append("| " + " | ".join(row) + " |")
    for name in names():
        lines += ["", f"## `{name}`: {get(name).title}", "", describe(name)]
    lines += [
        "",
        "## Your own network: the text form",
        "",
        '`convscope train --arch "conv 16 3, relu, maxpool 2, flatten, dense 64, relu, dense 10"`',
        "and the Train tab's architecture box take a network written as layers separated by",
        "commas:",
        "",
        "```",
        GRAMMAR,
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(family_markdown(), end="")

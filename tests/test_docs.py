"""The docs' checkable facts stay true: docs/ARCHITECTURE.md's map names every module that
exists and none that does not. No Qt import: files are only read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The packages whose modules the map lists one by one (desktop/cli's subcommands are named
#: by their pattern, ``<name>_cmd.py``).
MAPPED = ("engine", "engine/filters", "desktop", "desktop/cli", "desktop/widgets")


def _layout() -> str:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return text.split("## Layout", 1)[1].split("```", 2)[1]


def test_architecture_map_names_every_module_and_no_missing_one():
    layout = _layout()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", layout))
    unnamed = [
        f"{folder}/{path.name}"
        for folder in MAPPED
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.stem not in words
        and path.name not in ("__init__.py", "__main__.py")
        and not path.stem.endswith("_cmd")
    ]
    assert not unnamed, f"docs/ARCHITECTURE.md's layout does not name {unnamed}"
    modules = {p.stem for top in ("engine", "desktop", "tests") for p in (ROOT / top).rglob("*.py")}
    named = set(re.findall(r"\b([a-z_]+)\.py\b", layout)) - {"_cmd"}
    assert named <= modules, f"the layout names modules that do not exist: {named - modules}"
    widgets = layout.split("widgets/", 1)[1].split("resources/", 1)[0]
    listed = set(re.findall(r"\b([a-z][a-z_]+[a-z])\b", widgets))
    stems = {p.stem for p in (ROOT / "desktop" / "widgets").glob("*.py")}
    stale = {w for w in listed if "_" in w and w not in stems}
    assert not stale, f"the layout's widgets/ names modules that do not exist: {stale}"


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


_SCALE = {"": 1, "million": 10**6, "billion": 10**9}


def _quoted(pattern: str) -> int:
    """The number the README writes where ``pattern``'s group ``n`` (and optional ``scale``)
    stands, as an int: "2,000" -> 2000, "8 million" -> 8000000."""
    found = re.search(pattern, _readme())
    assert found, f"the README no longer says {pattern!r}"
    scale = found.groupdict().get("scale") or ""
    return int(found["n"].replace(",", "")) * _SCALE[scale]


def test_readme_limits_table_quotes_the_constants():
    from engine import archtext, dataset_types, idx, imageio, modelschema, modelsize, modelzip
    from engine.filters import kernelfile, kernels

    n = r"(?P<n>[0-9][0-9,]*)(?: (?P<scale>million|billion))?"
    quoted = {
        rf"Image files \| {n} megapixels": imageio.MAX_PIXELS // 10**6,
        rf"Model file \| {n} MB on disk": modelzip.MAX_MODEL_BYTES >> 20,
        rf"at most {n} archive entries": modelzip.MAX_MEMBERS,
        rf"Model metadata \| {n} characters": modelschema.MAX_META_CHARS,
        rf"nesting depth {n},": modelschema.MAX_META_DEPTH,
        rf"depth [0-9]+, {n} JSON values": modelschema.MAX_META_VALUES,
        rf"1 to {n} classes of at most": modelschema.MAX_CLASSES,
        rf"classes of at most {n} printable": modelschema.MAX_CLASS_NAME,
        rf"thinned to {n} points": modelschema.MAX_HISTORY_POINTS,
        rf"before building \(`modelsize.py`\): {n} parameters": modelsize.MAX_PARAMETERS,
        rf"buffers, {n} activation values": modelsize.MAX_ACTIVATIONS,
        rf"values and {n} multiply-adds per image": modelsize.MAX_MULTIPLY_ADDS,
        rf"per image, {n} layers": modelsize.MAX_NODES,
        rf"input sides up to {n} pixels": modelsize.MAX_INPUT_SIDE,
        rf"pixels and {n} channels \|": modelsize.MAX_INPUT_CHANNELS,
        rf"Datasets \| {n} classes": dataset_types.MAX_CLASSES,
        rf"may be big \(up to {n} layers": modelsize.MAX_NODES,
        rf"layers, {n} channels a layer\)": archtext.MAX_WIDTH,
        rf"datasets may\s+have up to {n} classes": dataset_types.MAX_CLASSES,
        rf"images up to {n} pixels a side and": dataset_types.MAX_IMAGE_SIDE,
        rf"better than {n}:1 refused": idx._MAX_GZIP_RATIO,
        rf"class names of {n} characters": dataset_types.MAX_CLASS_NAME,
        rf"with an odd side of 1 to {n}": max(kernels.KERNEL_SIZES),
        rf"at most {n} per job": kernels.MAX_KERNELS,
        rf"numbers of at most {n} characters": kernels.MAX_CELL_CHARS,
    }
    wrong = {p: (_quoted(p), v) for p, v in quoted.items() if _quoted(p) != v}
    assert not wrong, f"README quotes (quoted, code): {wrong}"
    assert kernelfile.MAX_FILE_BYTES == 1 << 20 and "kernel files of 1 MB" in _readme()


def test_readme_family_table_quotes_each_members_size():
    """The performance section's family table: parameters and millions of multiply-adds of
    each member at its colour input, as engine.architectures.stats computes them."""
    from engine import architectures

    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([0-9,]+) \| ([0-9.]+) \|", _readme(), re.M)
    assert [r[0] for r in rows] == architectures.names()
    for name, params, macs in rows:
        p, m = architectures.stats(name, 3)
        assert (int(params.replace(",", "")), macs) == (p, f"{m / 1e6:.1f}"), name


def test_readme_download_sizes_are_the_ones_the_download_announces():
    from engine.download import CIFAR10, FASHION_MNIST

    readme = _readme()
    assert re.search(rf"download cifar10 +# optional, {CIFAR10.approx_mb} MB;", readme)
    assert f"official binary archive ({CIFAR10.approx_mb} MB, MD5-checked)" in readme
    assert f"MIT licence, about {FASHION_MNIST.approx_mb} MB)" in readme


def test_architecture_md_lists_every_train_config_field_with_its_default():
    import ast
    import dataclasses

    from engine.training import TrainConfig

    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("class TrainConfig:", 1)[1].split("# optim.DEFAULT_LR", 1)[0]
    listed = dict(re.findall(r"(\w+): \w+ = ([^;#\n]+)", block))
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(listed) == set(fields)
    for name, written in listed.items():
        if name != "lr":  # written as DEFAULT_LR["momentum"]
            assert ast.literal_eval(written.strip()) == fields[name], name

"""Hostile model files, generated on demand (small: the bombs are a few MB at most).

    from hostile.models import crafted_models, mutated_metas, write_model
    files = crafted_models(tmp_path)   # name -> (Path, a regex the ModelFileError must match)

``write_model(path, meta, arrays)`` writes a model file from a metadata dict (or JSON text) and
arrays, without ConvScope's checks, so any document can be tried. ``zip_with_member`` writes
an archive with one member given as a header and a repeated body, deflated in a stream: a
member may inflate to gigabytes without the test ever holding more than a megabyte.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "crafted_models",
    "good_meta_and_arrays",
    "mutated_metas",
    "npy_header",
    "write_model",
    "zip_with_member",
]


def good_meta_and_arrays() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a small valid model (LeNet-5, 3 classes)."""
    from engine.model import lenet5
    from engine.modelfile import model_meta

    model = lenet5(np.random.default_rng(0), num_classes=3)
    model.classes = ["cat", "dog", "owl"]
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in model.parameters().items()}
    return model_meta(model), arrays


def write_model(path: Path, meta: dict | str, arrays: dict[str, np.ndarray]) -> Path:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(text), **arrays)
    return path


def npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    """A version-1 ``.npy`` header (magic, length, dict) for ``shape`` and ``descr``."""
    d = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    d += " " * (-(10 + len(d) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode("latin1")


def zip_with_member(
    path: Path,
    others: dict[str, bytes],
    name: str,
    head: bytes,
    chunk: bytes,
    repeats: int,
    declared_size: int | None = None,
) -> Path:
    """An archive with ``others`` (stored as given) and member ``name`` = ``head`` followed by
    ``chunk * repeats``, deflated by compressing ``chunk`` once (each copy after a full flush
    compresses to the same bytes). ``declared_size`` lies about the size in the directory.
    The CRC is not computed (0): readers must refuse before they would check it."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    body = first + again * repeats + comp.flush()
    size = len(head) + len(chunk) * repeats if declared_size is None else declared_size
    with zipfile.ZipFile(path, "w") as z:
        for other, data in others.items():
            z.writestr(other, data)
    # append the bomb member by hand (zipfile would inflate-check nothing, but needs the data)
    with open(path, "r+b") as f:
        data = f.read()
        cd_at = struct.unpack("<I", data[-6:-2])[0]
        entries, cd = struct.unpack("<H", data[-12:-10])[0], data[cd_at:-22]
        fname = name.encode()
        local = struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(body), size, len(fname), 0
        )
        central = struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, len(body), size, len(fname), 0, 0, 0, 0, 0,
            cd_at,
        )  # fmt: skip
        out = data[:cd_at] + local + fname + body
        new_cd = cd + central + fname
        eocd = struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, entries + 1, entries + 1, len(new_cd), len(out), 0
        )
        f.seek(0)
        f.write(out + new_cd + eocd)
        f.truncate()
    return path


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def crafted_models(folder: Path) -> dict[str, tuple[Path, str]]:
    """The campaign's crafted model files: name -> (path, regex of the expected message)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good, arrays = good_meta_and_arrays()
    files: dict[str, tuple[Path, str]] = {}

    def meta_case(name: str, message: str, **changes: Any) -> None:
        meta = copy.deepcopy(good)
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            target = meta
            for p in parents:
                target = target[p]
            target[last] = value
        files[name] = (write_model(folder / f"{name}.npz", meta, arrays), message)

    meta_case("arch_list", "'architecture' must be a JSON object", architecture=[1, 2])
    meta_case("arch_int", "'architecture' must be a JSON object", architecture=7)
    meta_case(
        "arch_unknown", "unknown architecture 'resnet5000'", architecture={"name": "resnet5000"}
    )
    meta_case("classes_ten", "'ten' outputs", architecture__num_classes="ten")
    meta_case("classes_null", "'classes' must be a list", classes=None)
    meta_case("classes_many", "classes; a model has 1 to", classes=[str(i) for i in range(20_000)])
    meta_case("class_newline", "control characters", classes=["cat", "dog\nrm -rf", "owl"])
    meta_case("version_huge", "unknown model format version", version=10**30)
    meta_case("version_text", "no format version", version="1")
    meta_case("version_newer", "newer ConvScope", version=99)
    meta_case("in_channels_text", "whole number", architecture__in_channels="1")
    meta_case("input_scale_huge", "input scale", input__scale=1e308)
    meta_case("input_std_tiny", "input std", input__std=1e-308)
    meta_case("input_mean_text", "input mean", input__mean="0.1")
    meta_case("input_shape_text", "input shape", input__shape="1x28x28")
    meta_case("history_list", "'history' must be an object", history=[1, 2, 3])
    custom = {"name": "custom", "input_shape": [1, 28, 28], "num_classes": 3}
    meta_case(
        "filters_text", "conv_filters must be a list", architecture={**custom, "conv_filters": "16"}
    )
    meta_case(
        "filters_million", "parameters|activation", architecture={**custom, "conv_filters": [10**6]}
    )
    meta_case(
        "fc_billion", "fc_widths is|parameters", architecture={**custom, "fc_widths": [10**9]}
    )
    meta_case(
        "input_huge", "input side", architecture={**custom, "input_shape": [1, 100000, 100000]}
    )
    meta_case(
        "layers_100000",
        "100,000 layers",
        architecture={"name": "sequential", "input_shape": [1, 28, 28],
                      "layers": [{"type": "relu", "name": f"r{i}"} for i in range(100_000)]},
    )  # fmt: skip
    meta_case(
        "thousand_wide_convs",
        "parameters|activation|multiply-adds",
        architecture={**custom, "conv_filters": [512] * 500, "padding": 2, "pooling": "none"},
    )

    def text_case(name: str, text: str, message: str) -> None:
        files[name] = (write_model(folder / f"{name}.npz", text, arrays), message)

    text_case("deep_json", "[" * 100_000 + "]" * 100_000, "nested 100000 levels")
    meta_text = json.dumps(good)
    text_case("nan_in_meta", meta_text.replace('"history": null', '"history": NaN'), "NaN")
    text_case(
        "huge_int", meta_text.replace('"version": 2', '"version": 2' + "0" * 5000), "cannot be read"
    )
    text_case("not_json", "{'format': 'convscope-model'}", "not valid JSON")
    many = '{"format": "convscope-model", "history": [' + "0," * 3_000_000 + "0]}"
    text_case("three_million_values", many, "values, more than the limit")

    # zip bombs and lies: the 20-million entry history (about 2.5 GB of UTF-32 text) and a weight
    # member inflating to 2 GB, each about 2.5 MB on disk; headers that ask for 1 GB of weights
    others = {f"{k}.npy": _npy(v) for k, v in arrays.items()}
    chunk, repeats = "0, ".encode("utf-32-le") * 65536, 305  # 20 million "0, "
    files["history_20M"] = (
        zip_with_member(folder / "history_20M.npz", others, "meta.npy",
                        npy_header((), f"<U{len(chunk) // 4 * repeats}"), chunk, repeats),
        "million characters, more than the limit",
    )  # fmt: skip
    meta_npy = _npy(np.array(json.dumps(good)))
    rest = {f"{k}.npy": _npy(v) for k, v in arrays.items() if k != "fc1.weight"}
    head = npy_header((120, 400), "<f4")
    files["weight_bomb"] = (
        zip_with_member(folder / "weight_bomb.npz", {"meta.npy": meta_npy, **rest},
                        "fc1.weight.npy", head, b"\0" * (1 << 20), 2048),
        "fc1.weight declares .* bytes but its array needs",
    )  # fmt: skip
    files["weight_header_1GB"] = (
        zip_with_member(folder / "weight_header_1GB.npz", {"meta.npy": meta_npy, **rest},
                        "fc1.weight.npy", npy_header((16384, 16384), "<f4"), b"\0" * 4096, 100),
        r"fc1.weight has shape \(16384, 16384\), the architecture needs \(120, 400\)",
    )  # fmt: skip
    files["size_lie"] = (
        zip_with_member(folder / "size_lie.npz", {"meta.npy": meta_npy, **rest},
                        "fc1.weight.npy", head, b"\0" * (1 << 20), 64,
                        declared_size=len(head) + 120 * 400 * 4),
        "fc1.weight.*(truncated or corrupt|CRC)",
    )  # fmt: skip
    files["object_array"] = (
        _raw_zip(folder / "object_array.npz", {"meta.npy": meta_npy, **rest,
                 "fc1.weight.npy": npy_header((120, 400), "|O") + b"\0" * 64}),
        "holds object data",
    )  # fmt: skip
    files["duplicate_member"] = (
        _raw_zip(folder / "duplicate_member.npz",
                 [("meta.npy", meta_npy), *others.items(),
                  ("fc1.weight.npy", others["fc1.weight.npy"])]),
        "twice",
    )  # fmt: skip
    many_entries = bytearray((folder / "arch_int.npz").read_bytes())
    many_entries[-14:-10] = struct.pack("<HH", 0xFFFE, 0xFFFE)
    (folder / "many_entries.npz").write_bytes(bytes(many_entries))
    files["many_entries"] = (folder / "many_entries.npz", "65,534 entries, more than the limit")
    return files


def _raw_zip(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    import warnings

    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in items:
                z.writestr(name, data)
    return path


# -- seeded mutations --------------------------------------------------------------------------

_HOSTILE_VALUES: list[Any] = [
    None, True, -1, 0, 10**40, 1e308, -1e308, 5e-324, "", "ten", "x" * 300, [], [1, 2], {},
    {"name": "graph"}, [[[[[]]]]], 2.5, "NaN",
]  # fmt: skip


def _paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):
            yield from _paths(v, (*prefix, i))


def mutated_metas(seed: int, count: int) -> Iterator[dict[str, Any]]:
    """``count`` copies of a valid metadata document, each with one to three values (anywhere
    in it, chosen by ``seed``) replaced by a hostile one or deleted."""
    good, _ = good_meta_and_arrays()
    good.pop("history", None)
    rng = np.random.default_rng(seed)
    paths = [p for p in _paths(good) if p]
    for _ in range(count):
        meta = copy.deepcopy(good)
        for _ in range(int(rng.integers(1, 4))):
            path = paths[int(rng.integers(len(paths)))]
            target = meta
            try:
                for p in path[:-1]:
                    target = target[p]
                if rng.random() < 0.15 and isinstance(target, dict):
                    target.pop(path[-1], None)
                else:
                    target[path[-1]] = copy.deepcopy(
                        _HOSTILE_VALUES[int(rng.integers(len(_HOSTILE_VALUES)))]
                    )
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed this path
        yield meta

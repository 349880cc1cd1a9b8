"""Model files: one ``.npz`` with an array per parameter and buffer plus a JSON ``meta`` entry.

Layout (``version`` 2)::

    conv1.weight (6,1,5,5) float32, conv1.bias (6,), ..., fc3.bias (10,)   # torch state_dict names
    bn1.running_mean (C,) float32, bn1.running_var (C,) float32, bn1.num_batches_tracked () int64
    meta  0-d unicode array holding JSON:
          {"format": "convscope-model", "version": 2,
           "architecture": {...},            # build_model(architecture) rebuilds the network
           "graph": {"name": "graph", ...},  # model.graph_spec(): every node, for any reader
           "classes": ["0", ..., "9"],
           "input": {"shape": [1, 28, 28], "scale": 1/255, "mean": 0.1307, "std": 0.3081},
           "history": {...} | null, "evaluation": {...} | null, ...}   # plus model.meta

The arrays are exactly the ``state_dict()`` of the equivalent ``torch.nn`` module (parameters
float32, BatchNorm's counters int64). Version 1 (parameters only, no ``graph``, numbers for mean
and std) is still read; in version 2 mean and std may be per-channel lists.

Into PyTorch in three lines (with a matching ``torch.nn`` module ``net``)::

    z = numpy.load("model.npz")
    net.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files if k != "meta"})
    # the net sees (pixel*scale - mean)/std, see json.loads(z["meta"][()])["input"]

Saving is atomic: the file is written under a temporary name in the same folder, flushed to
disk, then renamed over the target, so a crash mid-save leaves the old file intact.
Loading never unpickles (``allow_pickle=False``) and checks everything it reads.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine import __version__
from engine.atomic import atomic_write, not_saved, write_or_rescue
from engine.errors import EngineError, ModelFileError
from engine.graph import Network
from engine.inputspec import InputSpec
from engine.model import build_model
from engine.modelschema import FORMAT, MAX_META_CHARS, parse_meta_text, trim_history, validate_meta
from engine.modelzip import ModelArchive, check_values, open_archive

VERSION = 2
_RESERVED = ("format", "version", "architecture", "graph", "classes", "input")


def _jsonable(v: Any) -> Any:
    """JSON-safe copy: NumPy scalars/arrays to Python, NaN/inf to None, tuples to lists."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if hasattr(v, "to_json"):
        return _jsonable(v.to_json())
    return str(v)


def model_meta(model: Network) -> dict[str, Any]:
    """The JSON document stored as ``meta`` for ``model``."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.architecture,
        "graph": model.graph_spec(),
        "classes": list(model.classes),
        "input": model.input_spec.to_json(),
        "history": None,
        "evaluation": None,
        "engine_version": __version__,
    }
    for key, value in model.meta.items():
        if key not in _RESERVED:
            meta[key] = value
    if isinstance(meta.get("history"), dict):
        meta["history"] = trim_history(meta["history"])  # files stay within the read limits
    return _jsonable(meta)


def save_model(model: Network, path: str | os.PathLike, rescue: bool = False) -> Path:
    """Write ``model`` to ``path`` (.npz) atomically; returns the path.

    Raises :class:`ModelFileError` if the folder is missing or not writable; the previous file
    at ``path``, if any, is then untouched. With ``rescue`` (the end of a training run, with
    no one to choose another place), the model is then written to a rescue file instead
    (:func:`engine.atomic.write_or_rescue`), which the error names.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not rescue and not folder.is_dir():
        raise ModelFileError(f"cannot save {path}: the folder {folder} does not exist")
    arrays = {  # floats as float32; integer buffers (num_batches_tracked) keep int64
        k: np.asarray(a, dtype=np.float32 if a.dtype.kind == "f" else a.dtype)
        for k, a in model.state_dict().items()
    }
    meta = json.dumps(model_meta(model), allow_nan=False)

    def write(f: BinaryIO) -> None:
        # ignore: mypy cannot tell that no key of **arrays (parameter names) is allow_pickle
        np.savez(f, meta=np.array(meta), **arrays)  # type: ignore[arg-type]

    try:
        if not rescue:
            atomic_write(path, write)
            return path
        written, failure = write_or_rescue(path, write)
    except OSError as exc:
        raise ModelFileError(not_saved(path, exc)) from exc
    if failure is not None:
        raise ModelFileError(not_saved(path, failure, written))
    return path


def _parse_meta(data: ModelArchive, path: Path) -> dict[str, Any]:
    if "meta" not in data.names:
        names = ", ".join(data.names[:6]) + (", ..." if len(data.names) > 6 else "")
        raise ModelFileError(
            f"{path} is not a ConvScope model file: an .npz without ConvScope metadata "
            f"(it holds {names or 'nothing'})"
        )
    text = data.read_text("meta", MAX_META_CHARS)
    return validate_meta(parse_meta_text(text, path), path, newest=VERSION)


def load_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata of a model file (validated format/version), without the weights."""
    path = Path(path)
    with open_archive(path) as data:
        return _parse_meta(data, path)


def load_model(path: str | os.PathLike) -> Network:
    """Read and validate a model file; the metadata beyond the architecture is in ``model.meta``.

    Raises :class:`ModelFileError` naming the problem for a missing, empty, truncated, corrupt,
    foreign (another kind of file, or an .npz of other arrays) or mismatched file, and for
    arrays no training makes: NaN or infinite values, a BatchNorm ``running_var`` below 0.
    """
    path = Path(path)
    with open_archive(path) as data:
        meta = _parse_meta(data, path)  # types, ranges and sizes checked: building is safe
        classes = meta["classes"]
        try:
            model = build_model(meta["architecture"], classes=classes)
            spec = InputSpec.from_json(meta.get("input") or {})
        except EngineError as exc:
            raise ModelFileError(
                f"{path}: the architecture does not describe a model ({exc})"
            ) from None
        if spec.shape != model.input_spec.shape:
            raise ModelFileError(
                f"{path}: the input shape {list(spec.shape)} does not match the architecture's "
                f"{list(model.input_spec.shape)}"
            )
        graph = meta.get("graph") if meta["version"] >= 2 else None
        if graph is not None and graph != model.graph_spec():
            raise ModelFileError(
                f"{path}: the graph in the metadata does not match its architecture "
                f"{str(meta['architecture'])[:80]}; the file was edited or written elsewhere"
            )
        # version 1 holds the parameters only (no network of then had buffers)
        state = model.state_dict() if meta["version"] >= 2 else model.parameters()
        names = set(data.names) - {"meta"}
        missing = sorted(set(state) - names)
        extra = sorted(names - set(state))
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []
            )
            raise ModelFileError(
                f"{path}: the weights do not match the architecture: {'; '.join(parts)}"
            )
        weights = {}
        for key, p in state.items():
            # header checked against the architecture before any data is inflated
            kinds = (np.float32, np.float64) if p.dtype.kind == "f" else (p.dtype.type,)
            a = data.read_array(key, p.shape, kinds)
            check_values(path, key, a)
            weights[key] = a
    model.set_weights(weights)  # buffers too, when the file has them
    model.input_spec = spec
    model.meta = {k: v for k, v in meta.items() if k not in _RESERVED}
    return model

"""Model files: one ``.npz`` with an array per parameter plus a JSON ``meta`` entry.

Layout (``version`` 1)::

    conv1.weight (6,1,5,5) float32, conv1.bias (6,), ..., fc3.bias (10,)   # torch state_dict names
    meta  0-d unicode array holding JSON:
          {"format": "convscope-model", "version": 1,
           "architecture": {...},            # build_model(architecture) rebuilds the network
           "classes": ["0", ..., "9"],
           "input": {"shape": [1, 28, 28], "scale": 1/255, "mean": 0.1307, "std": 0.3081},
           "history": {...} | null, "evaluation": {...} | null, ...}   # plus model.meta

Into PyTorch in three lines (with a matching ``torch.nn`` module ``net``)::

    z = numpy.load("model.npz")
    net.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files if k != "meta"})
    # the net sees (pixel*scale - mean)/std, see json.loads(z["meta"][()])["input"]

Saving is atomic: the file is written under a temporary name in the same folder, flushed to
disk, then renamed over the target, so a crash mid-save leaves the old file intact.
Loading never unpickles (``allow_pickle=False``) and checks everything it reads.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.atomic import atomic_write
from engine.errors import EngineError, ModelFileError
from engine.model import InputSpec, Sequential, build_model

# A LeNet is well under 1 MB; anything this large is not one of ours (and is not read).
MAX_MODEL_BYTES = 512 * 1024 * 1024

FORMAT = "convscope-model"
VERSION = 1
_RESERVED = ("format", "version", "architecture", "classes", "input")

_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip file",
    b"\x93NUMPY": "a single NumPy array (.npy), not a model archive",
}


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


def model_meta(model: Sequential) -> dict[str, Any]:
    """The JSON document stored as ``meta`` for ``model``."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.architecture,
        "classes": list(model.classes),
        "input": model.input_spec.to_json(),
        "history": None,
        "evaluation": None,
        "engine_version": __version__,
    }
    for key, value in model.meta.items():
        if key not in _RESERVED:
            meta[key] = value
    return _jsonable(meta)


def save_model(model: Sequential, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (.npz) atomically; returns the path.

    Raises :class:`ModelFileError` if the folder is missing or not writable; the previous file
    at ``path``, if any, is then untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot save {path}: the folder {folder} does not exist")
    arrays = {k: np.asarray(p, dtype=np.float32) for k, p in model.parameters().items()}
    meta = json.dumps(model_meta(model), allow_nan=False)
    try:
        # ignore: mypy cannot tell that no key of **arrays (parameter names) is allow_pickle
        atomic_write(path, lambda f: np.savez(f, meta=np.array(meta), **arrays))  # type: ignore[arg-type]
    except OSError as exc:
        raise ModelFileError(f"cannot save {path}: {exc.strerror or exc}") from exc
    return path


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    return None


def _open(path: Path):
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes); save the model again")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path} is {path.stat().st_size / 1e6:.0f} MB, far larger than any ConvScope model; "
            "it is not a model file"
        )
    try:
        # read into memory: np.load leaves the file open when the archive turns out corrupt
        data = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ModelFileError(
            f"{path} is truncated or corrupt ({exc}); save or download it again"
        ) from None
    except ValueError:
        what = _sniff(path)
        raise ModelFileError(
            f"{path} is not a ConvScope model file"
            + (f" (it looks like {what})" if what else " (not a NumPy .npz archive)")
        ) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ModelFileError(
            f"{path} is not a ConvScope model file (it holds a single NumPy array, "
            "not a model archive)"
        )
    return data


def _read(data, key: str, path: Path) -> np.ndarray:
    try:
        return data[key]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ModelFileError(f"{path}: entry {key!r} is truncated or corrupt ({exc})") from None
    except ValueError as exc:
        raise ModelFileError(f"{path}: entry {key!r} cannot be read safely ({exc})") from None


def _parse_meta(data, path: Path) -> dict[str, Any]:
    if "meta" not in data.files:
        names = ", ".join(data.files[:6]) + (", ..." if len(data.files) > 6 else "")
        raise ModelFileError(
            f"{path} is not a ConvScope model file: an .npz without ConvScope metadata "
            f"(it holds {names or 'nothing'})"
        )
    raw = _read(data, "meta", path)
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise ModelFileError(f"{path}: the 'meta' entry is not a JSON text")
    try:
        meta = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a ConvScope model file (format is not {FORMAT!r})")
    version = meta.get("version")
    if not isinstance(version, int):
        raise ModelFileError(f"{path}: the metadata has no format version")
    if version > VERSION:
        raise ModelFileError(
            f"{path} was written by a newer ConvScope (model format {version}, this one reads "
            f"{VERSION}); update ConvScope"
        )
    if version < 1:
        raise ModelFileError(f"{path}: unknown model format version {version}")
    return meta


def load_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata of a model file (validated format/version), without the weights."""
    path = Path(path)
    with _open(path) as data:
        return _parse_meta(data, path)


def load_model(path: str | os.PathLike) -> Sequential:
    """Read and validate a model file; the metadata beyond the architecture is in ``model.meta``.

    Raises :class:`ModelFileError` naming the problem for a missing, empty, truncated, corrupt,
    foreign (another kind of file, or an .npz of other arrays) or mismatched file.
    """
    path = Path(path)
    with _open(path) as data:
        meta = _parse_meta(data, path)
        classes = meta.get("classes")
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ModelFileError(f"{path}: 'classes' must be a list of names")
        try:
            model = build_model(meta.get("architecture") or {}, classes=classes)
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
        params = model.parameters()
        names = set(data.files) - {"meta"}
        missing = sorted(set(params) - names)
        extra = sorted(names - set(params))
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []
            )
            raise ModelFileError(
                f"{path}: the weights do not match the architecture: {'; '.join(parts)}"
            )
        weights = {}
        for key, p in params.items():
            a = _read(data, key, path)
            if a.shape != p.shape:
                raise ModelFileError(
                    f"{path}: {key} has shape {a.shape}, the architecture needs {p.shape}"
                )
            if a.dtype not in (np.float32, np.float64):
                raise ModelFileError(f"{path}: {key} has dtype {a.dtype}, expected float32")
            if not np.isfinite(a).all():
                raise ModelFileError(
                    f"{path}: {key} contains NaN or infinite values (did training diverge?)"
                )
            weights[key] = a
    model.set_weights(weights)
    model.input_spec = spec
    model.meta = {k: v for k, v in meta.items() if k not in _RESERVED}
    return model

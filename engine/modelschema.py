"""The metadata of a model file, checked as the untrusted text it is.

A model file's ``meta`` entry is JSON written by ConvScope, or by anyone. Before any of it is
used, :func:`parse_meta_text` bounds the text (length, nesting depth, number of values) *before*
``json.loads`` runs, so a deeply nested document cannot raise RecursionError and a 20-million
entry history cannot take a gigabyte; then :func:`validate_meta` checks the type and range of
every field the engine reads (format, version, architecture and its size, classes, input
normalisation) and trims over-long training histories. Every refusal is a
:class:`~engine.errors.ModelFileError` whose message names the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

import numpy as np

from engine.dataset_types import MAX_MODEL_CLASS_NAME, unsavable_class_name
from engine.errors import ModelFileError, ShapeError, short_repr
from engine.modelsize import check_architecture

FORMAT = "convscope-model"
#: Characters of metadata JSON (a LeNet's is about 110 thousand, mostly its training history).
MAX_META_CHARS = 8_000_000
#: Nesting of objects and lists (ConvScope writes 6 at most).
MAX_META_DEPTH = 32
#: JSON values in the metadata (numbers, texts, lists, objects). The largest ConvScope wrote
#: is a 1,000-class model saved before its test confusion matrix was left out of the file
#: (about 1,004,282 values): twice that, so old files keep loading.
MAX_META_VALUES = 2_000_000
#: Output classes, and the length of one class name.
MAX_CLASSES = 10_000
MAX_CLASS_NAME = MAX_MODEL_CLASS_NAME
#: Points kept of each list in a training history (longer ones are thinned evenly).
MAX_HISTORY_POINTS = 100_000
#: Input normalisation ``x = (pixel*scale - mean)/std``: ranges that keep every value finite.
SCALE_RANGE = (1e-6, 1e3)
STD_RANGE = (1e-6, 1e6)
MAX_MEAN = 1e6

_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_MARKS = bytes(sorted(set(range(256)) - set(b'"[]{},')))


def parse_meta_text(text: str, path: str | os.PathLike) -> object:
    """``json.loads(text)`` within the limits of :func:`check_json_text`; NaN and Infinity are
    refused (ConvScope writes null for them)."""
    check_json_text(text, path)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=json_int)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the metadata is not valid JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:  # huge integers, NaN, depth (belt and braces)
        raise ModelFileError(f"{path}: the metadata cannot be read ({exc})") from None


def json_int(digits: str) -> int:
    """An integer of a JSON text (``json.loads``'s ``parse_int``), refused past
    :data:`MAX_INT_DIGITS` digits in words of its own (Python's, at the same limit, spoke of
    ``sys.set_int_max_str_digits()``); a shorter absurd value is left to the checks of its
    field ("unknown model format version ...")."""
    count = len(digits.lstrip("-"))
    if count > MAX_INT_DIGITS:
        raise ValueError(f"a number of {count:,} digits; no value needs so many")
    return int(digits)


MAX_INT_DIGITS = 4_300  # Python's own limit on converting digits to int


def check_json_text(text: str, path: str | os.PathLike, what: str = "the metadata") -> None:
    """Refuse JSON text longer than MAX_META_CHARS, nested deeper than MAX_META_DEPTH or
    holding more than MAX_META_VALUES values, before any parser sees it (ModelFileError)."""
    if len(text) > MAX_META_CHARS:
        raise ModelFileError(
            f"{path}: {what} is {len(text) / 1e6:.1f} million characters, more than the "
            f"limit of {MAX_META_CHARS / 1e6:.0f} million"
        )
    depth, values = _structure(text)
    if depth > MAX_META_DEPTH:
        raise ModelFileError(
            f"{path}: {what} is nested {depth} levels deep, more than the limit of {MAX_META_DEPTH}"
        )
    if values > MAX_META_VALUES:
        raise ModelFileError(
            f"{path}: {what} holds about {values:,} values, more than the limit of "
            f"{MAX_META_VALUES:,}"
        )


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _structure(text: str) -> tuple[int, int]:
    """(deepest nesting, approximate number of values) of JSON text, strings skipped.

    Linear and in C: escapes dropped, then everything but quotes, brackets and commas, then
    the strings; what is left is a short list of brackets and commas."""
    plain = _ESCAPE.sub("", text).encode("utf-8", "surrogatepass")
    marks = _STRING.sub(b"", plain.translate(None, _NOT_MARKS))
    code = np.frombuffer(marks, dtype=np.uint8)
    step = (np.isin(code, (ord("["), ord("{")))).astype(np.int32)
    step -= np.isin(code, (ord("]"), ord("}")))
    depth = int(np.cumsum(step).max(initial=0))
    return depth, marks.count(b",") + int(np.count_nonzero(step == 1)) + 1


def validate_meta(meta: object, path: str | os.PathLike, newest: int = 1) -> dict[str, Any]:
    """Check a parsed ``meta`` document; returns it (a copy, histories trimmed).

    ``newest`` is the newest model format version this ConvScope reads. Checks: format,
    version (1..newest), ``architecture`` (an object naming a known architecture, every field
    of the right type, parameters, activations and multiply-adds within the limits of
    :mod:`engine.modelsize`), ``graph`` likewise when present, ``classes`` (1..MAX_CLASSES
    short names without control characters, matching the architecture's ``num_classes``),
    ``input`` (shape, finite scale/mean/std in range), ``history``/``evaluation`` (objects or
    null). Raises :class:`ModelFileError` naming the file and the field.
    """
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a ConvScope model file (format is not {FORMAT!r})")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{path}: the metadata has no format version")
    if newest < version < 1000:
        raise ModelFileError(
            f"{path} was written by a newer ConvScope (model format {version}, this one reads "
            f"{newest}); update ConvScope"
        )
    if not 1 <= version <= newest:
        raise ModelFileError(f"{path}: unknown model format version {short_repr(version)}")
    out = dict(meta)
    out["classes"] = _classes(meta.get("classes"), path)
    _architecture(meta.get("architecture"), "architecture", len(out["classes"]), path)
    if meta.get("graph") is not None and version >= 2:
        _architecture(meta["graph"], "graph", len(out["classes"]), path)
    _input(meta.get("input"), path)
    for key in ("history", "evaluation"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise ModelFileError(f"{path}: '{key}' must be an object or null")
    if isinstance(meta.get("history"), dict):
        out["history"] = trim_history(meta["history"])
    return out


def trim_history(history: dict[str, Any]) -> dict[str, Any]:
    """``history`` with every list longer than MAX_HISTORY_POINTS thinned to that many evenly
    spaced points (first and last kept). Also used when saving, so files stay readable."""
    out = dict(history)
    for key, value in history.items():
        if isinstance(value, list) and len(value) > MAX_HISTORY_POINTS:
            keep = np.linspace(0, len(value) - 1, MAX_HISTORY_POINTS).round().astype(np.int64)
            out[key] = [value[i] for i in keep]
    return out


def _classes(classes: object, path: str | os.PathLike) -> list[str]:
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ModelFileError(f"{path}: 'classes' must be a list of names")
    if not 1 <= len(classes) <= MAX_CLASSES:
        raise ModelFileError(
            f"{path}: 'classes' names {len(classes):,} classes; a model has 1 to {MAX_CLASSES:,}"
        )
    for c in classes:
        if unsavable_class_name(c):
            raise ModelFileError(
                f"{path}: the class name {short_repr(c)} is too long or holds control characters "
                f"(at most {MAX_CLASS_NAME} printable characters)"
            )
    return list(classes)


def _architecture(arch: object, key: str, k: int, path: str | os.PathLike) -> None:
    if not isinstance(arch, dict):
        raise ModelFileError(f"{path}: '{key}' must be a JSON object, got {short_repr(arch)}")
    declared = arch.get("num_classes")
    if declared is not None and declared != k:
        raise ModelFileError(
            f"{path}: the {key} has {short_repr(declared)} outputs but the file names {k} classes"
        )
    try:
        check_architecture(arch, k)
    except ShapeError as exc:
        raise ModelFileError(f"{path}: the {key} cannot be used: {exc}") from None


def _input(spec: object, path: str | os.PathLike) -> None:
    if not isinstance(spec, dict):
        raise ModelFileError(f"{path}: 'input' must be an object with shape, scale, mean, std")
    shape = spec.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    ):
        raise ModelFileError(f"{path}: the input shape must be [C, H, W], got {short_repr(shape)}")
    _number(spec.get("scale", 1 / 255), "scale", *SCALE_RANGE, 1, path)
    _number(spec.get("mean", 0.0), "mean", -MAX_MEAN, MAX_MEAN, shape[0], path)
    _number(spec.get("std", 1.0), "std", *STD_RANGE, shape[0], path)


def _number(v: object, key: str, lo: float, hi: float, channels: int, path) -> None:
    values = v if isinstance(v, list) and len(v) in (1, channels) else [v]
    for x in values:
        # comparing an int with a float is exact in Python, even for a 400-digit int
        if (
            not isinstance(x, (int, float))
            or isinstance(x, bool)
            or not lo <= x <= hi
            or (isinstance(x, float) and not math.isfinite(x))
        ):
            raise ModelFileError(
                f"{path}: the input {key} {short_repr(v)} is not a number between {lo:g} and {hi:g}"
            )

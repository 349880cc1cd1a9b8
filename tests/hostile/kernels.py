"""Hostile kernel text and kernel files, seeded: the Filters tab's editor and ``--kernel``,
``--kernel-file`` and the tab's Open all meet these."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["KNOWN_BAD_CELLS", "hostile_kernel_files", "random_kernel_texts"]

#: Cells the campaign found, each refused with one line.
KNOWN_BAD_CELLS = [
    "1/1e-320", "1e10000000/1", "9" * 400, "1/3/4", "1e38*10", "1e39", "-1e39", "nan", "inf",
    "-inf", "1/0", "0/0", "abc", "1..2", "--1", "0x10", "1_000", "\u00bd", "1e", "",
    "1" * 40, "/", "1/", "/2",
]  # fmt: skip

_CELLS = [
    "0", "1", "-1", "2", "-0.5", ".25", "1/9", "-1/16", "1e-3", "3.4e38", "-3.4e38", "1e38",
    "\u22121", "1e-45", "+2", "7.", *KNOWN_BAD_CELLS,
]  # fmt: skip


def random_kernel_texts(seed: int, count: int) -> Iterator[str]:
    """Kernel texts: square, ragged or empty rows of 1x1 to 11x11 (sizes 1..7 odd are the
    accepted ones), random separators, cells mostly good with a chance of a bad one."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        rows = int(rng.choice([0, 1, 2, 3, 5, 7, 9, 11]))
        width = rows if rng.random() < 0.8 else int(rng.integers(1, 12))
        bad = rng.random() < 0.4
        pool = _CELLS if bad else _CELLS[:16]
        lines = []
        for _ in range(rows):
            cells = [pool[int(rng.integers(len(pool)))] for _ in range(width)]
            sep = [" ", ", ", "  ", "\t", ","][int(rng.integers(5))]
            lines.append(sep.join(cells))
        joiner = ["; ", "\n", ";", "\r\n"][int(rng.integers(4))]
        yield joiner.join(lines)


def hostile_kernel_files(folder: Path) -> dict[str, Path]:
    """Kernel files that must be refused with one KernelError line."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, str | bytes] = {
        "deep.json": "[" * 50_000 + "]" * 50_000,
        "huge_int.json": "[[" + "9" * 5000 + "]]",
        "size_51.json": json.dumps([[0] * 51] * 51),
        "size_101.json": json.dumps([[1] * 101] * 101),
        "size_2.json": json.dumps([[1, 2], [3, 4]]),
        "overflow.json": json.dumps([[1e38, 1e38, 1e38]] * 3).replace("1e+38", "1e39"),
        "nan.json": "[[NaN, 0, 0], [0, 1, 0], [0, 0, 0]]",
        "words.json": json.dumps([["one", "2", "3"]] * 3),
        "ragged.json": json.dumps([[1, 2, 3], [1, 2], [1]]),
        "too_many.json": json.dumps({"kernels": [[[1]]] * 100}),
        "not_utf8.json": b"\xff\xfe[[1]]",
        "empty.json": "",
        "object_list.json": json.dumps({"kernels": 7}),
        "large.json": "[" + " " * (2 << 20) + "]",
    }
    files = {}
    for name, content in cases.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        files[name] = path
    return files

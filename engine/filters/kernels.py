"""Kernels as the user types them: the number grammar, kernel text, :class:`KernelSpec`, and
the facts the editor shows (separability, the "identity plus a separable kernel" split).

Pure NumPy. Files of kernels live in :mod:`engine.filters.kernelfile`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from engine.errors import EngineError

#: the kernel sides the editor, ``--kernel`` and kernel files accept (one limit for all)
KERNEL_SIZES = (1, 3, 5, 7)
T = TypeVar("T")
MAX_KERNELS = 8

__all__ = [
    "KERNEL_SIZES",
    "MAX_KERNELS",
    "KernelError",
    "KernelSpec",
    "cell_text",
    "check_size",
    "format_number",
    "kernel_cells",
    "kernel_to_text",
    "parse_kernel",
    "parse_number",
    "resize_cells",
    "separable_factors",
    "split_centre",
]


class KernelError(EngineError, ValueError):
    """A kernel's text, file or values cannot be used (not a number, not square, divisor 0)."""


# The number grammar of a cell: a decimal (sign, digits, point, exponent) or one fraction a/b
# of two decimals. No "nan", "inf", "1_000", hex or a second "/" ("1/3/4" is refused).
_DECIMAL = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = re.compile(rf"\s*({_DECIMAL})\s*(?:/\s*({_DECIMAL})\s*)?")
#: longest cell text: enough for -0.0000123456789 or 12345/67890, not for a number of 5000 digits
MAX_CELL_CHARS = 32
#: largest magnitude of a weight, an offset or a divisor: float32's range
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: a kernel whose results could exceed this is refused: kept below float32's 3.4e38 with room
#: for an 8x8 sum pooling (x64), so no result is ever Infinity
MAX_RESULT = 1e36


def parse_number(text: str) -> float:
    """A cell's value: ``"2"``, ``"-0.5"``, ``".25"``, ``"1e-3"``, ``"1/9"``, ``"-1/16"``.

    The grammar: a decimal number, or one fraction ``a/b`` of two decimals (``1/3/4`` is not
    one), at most :data:`MAX_CELL_CHARS` characters; the value must be finite and within
    float32's range (``1e39``, ``1/1e-320``, ``1e10000000/1`` are refused). Raises
    :class:`KernelError` with one line for anything else (empty, ``"abc"``, ``"1/0"``, ``"nan"``).
    """
    shown = text.strip()[:40]
    s = text.strip().replace("\u2212", "-")  # a typographic minus counts as a minus
    if not s:
        raise KernelError("empty cell; type a number such as 1, -0.5 or 1/9")
    if len(s) > MAX_CELL_CHARS:
        raise KernelError(
            f"{shown!r}... is too long for a number (at most {MAX_CELL_CHARS} characters)"
        )
    match = _NUMBER.fullmatch(s)
    if match is None:
        if s.count("/") > 1:
            hint = "one fraction a/b only"
        elif "," in s:  # a decimal comma: 0,5 (never read as 5 or as two numbers)
            hint = "a point, not a comma, for decimals: 0.5"
        else:
            hint = "e.g. 1, -0.5 or 1/9"
        raise KernelError(f"{shown!r} is not a number; type {hint}")
    num, den = match.group(1), match.group(2)
    with np.errstate(all="ignore"):
        value = float(num) if den is None else float(np.float64(num) / np.float64(den))
    if den is not None and float(den) == 0:
        raise KernelError(f"{shown!r} divides by 0; a fraction needs a non-zero denominator")
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise KernelError(
            f"{shown!r} is too large: a weight must lie within +-3.4e38 (float32's range)"
        )
    return value


def parse_kernel(text: str) -> np.ndarray:
    """Parse ``"a b c; d e f; g h i"`` (rows split by ``;`` or new lines, cells by spaces or
    commas, numbers as in :func:`parse_number`) into a float64 ``(F, F)`` array with F one of
    :data:`KERNEL_SIZES` (odd, 1 to 7).

    Raises :class:`KernelError` naming the bad cell or the bad shape.
    """
    if len(text) > 100_000:
        raise KernelError(f"kernel text of {len(text)} characters: a 7x7 kernel needs far fewer")
    rows = kernel_cells(text)
    if not rows:
        raise KernelError("empty kernel; type rows like '0 -1 0; -1 5 -1; 0 -1 0'")
    if len(rows) > max(KERNEL_SIZES):
        raise KernelError(
            f"kernel has {len(rows)} rows; it must be square with an odd side from 1 to 7"
        )
    values: list[list[float]] = []
    for i, cells in enumerate(rows, 1):
        try:
            values.append([parse_number(c) for c in cells])
        except KernelError as exc:
            raise KernelError(f"kernel row {i}: {exc}") from None
    widths = {len(r) for r in values}
    if len(widths) != 1:
        raise KernelError(
            f"kernel rows have different lengths {sorted(widths)}; every row needs "
            f"{len(values)} numbers"
        )
    k = np.array(values, dtype=np.float64)
    check_size(k.shape)
    return k


def kernel_cells(text: str) -> list[list[str]]:
    """The cell texts of kernel text, row by row, split as :func:`parse_kernel` splits them
    (rows by ``;`` or new lines, cells by spaces, tabs or commas; empty rows dropped), not
    checked: what the editor puts in its cells when a kernel is pasted."""
    rows = text.replace("\n", ";").split(";")
    return [cells for cells in (r.replace(",", " ").split() for r in rows) if cells]


def check_size(shape: tuple[int, ...]) -> None:
    """Raise :class:`KernelError` unless ``shape`` is ``(F, F)`` with F in :data:`KERNEL_SIZES`."""
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] not in KERNEL_SIZES:
        size = "x".join(str(n) for n in shape) or "a single number"
        raise KernelError(f"kernel is {size}; it must be square with an odd side from 1 to 7")


def resize_cells(cells: Sequence[T], size: int, new: int, fill: T) -> list[T]:
    """The row-major cells of a ``size`` x ``size`` kernel centred in a ``new`` x ``new`` one
    (``fill`` around it) or cropped to its centre: what the editor does when the size changes.
    Both sizes are odd, so the centre stays the centre."""
    if len(cells) != size * size:
        raise KernelError(f"{len(cells)} cells do not make a {size}x{size} kernel")
    d = (new - size) // 2
    out = []
    for r in range(new):
        for c in range(new):
            rr, cc = r - d, c - d
            inside = 0 <= rr < size and 0 <= cc < size
            out.append(cells[rr * size + cc] if inside else fill)
    return out


def format_number(value: float) -> str:
    """Short text for a cell: ``1``, ``-0.5``, ``0.1111`` (up to 4 decimals, no trailing 0)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


def cell_text(value: float) -> str:
    """A cell's text that :func:`parse_number` reads back as exactly ``value``: the short
    :func:`format_number` when it does (``1``, ``-0.5``), else the shortest exact decimal
    (``0.123456``, ``3.1e-05``), so a kernel file or a learned filter loads unrounded."""
    text = format_number(value)
    return text if parse_number(text) == value else repr(float(value))


def kernel_to_text(kernel: np.ndarray) -> str:
    """The inverse of :func:`parse_kernel`: ``"0 -1 0; -1 5 -1; 0 -1 0"``."""
    return "; ".join(" ".join(format_number(v) for v in row) for row in np.asarray(kernel))


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class KernelSpec:
    """One kernel as the user edits it.

    The weights applied are ``kernel / d`` where ``d`` is the sum of the kernel when
    ``normalize`` is set and the sum is not 0, else ``divisor``; ``offset`` is added after.
    """

    kernel: np.ndarray
    divisor: float = 1.0
    normalize: bool = False
    offset: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        try:
            k = np.asarray(self.kernel, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise KernelError("the kernel must be a square matrix of numbers") from None
        check_size(k.shape)
        if not np.all(np.isfinite(k)) or np.abs(k).max() > FLOAT32_MAX:
            raise KernelError("a kernel value is not a number within +-3.4e38 (float32's range)")
        for what in ("divisor", "offset"):
            value = getattr(self, what)
            if not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
                raise KernelError(f"{what} {value!r}: it must be a finite number")
            if abs(float(value)) > FLOAT32_MAX:
                raise KernelError(f"{what} {value:g}: it must lie within +-3.4e38")
        if self.divisor == 0:
            raise KernelError("divisor 0: it must be a non-zero number")
        object.__setattr__(self, "kernel", k)
        bound = self.output_bound()
        if not bound <= MAX_RESULT:
            raise KernelError(
                f"kernel weights too large: a result could reach {bound:.2g}, beyond what "
                "float32 holds safely (1e36); use smaller weights or a larger divisor"
            )

    @property
    def size(self) -> int:
        return int(self.kernel.shape[0])

    def effective_divisor(self) -> float:
        total = float(self.kernel.sum())
        if self.normalize and abs(total) > 1e-12:
            return total
        return float(self.divisor)

    def output_bound(self) -> float:
        """The largest magnitude a result can have on 0..255 pixels: ``255 sum|w| + |offset|``."""
        with np.errstate(all="ignore"):
            return float(np.abs(self.weights()).sum()) * 255 + abs(float(self.offset))

    def weights(self) -> np.ndarray:
        """The weights applied: float64 ``kernel / effective_divisor()``."""
        return self.kernel / self.effective_divisor()

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kernel": self.kernel.tolist(),
            "divisor": self.divisor,
            "normalize": self.normalize,
            "offset": self.offset,
        }

    @classmethod
    def from_json(cls, d: object, where: str = "kernel") -> KernelSpec:
        if isinstance(d, list):
            d = {"kernel": d}
        if not isinstance(d, dict) or "kernel" not in d:
            raise KernelError(f"{where}: expected an object with a 'kernel' matrix")
        try:
            spec = cls(
                np.array(d["kernel"], dtype=np.float64),
                divisor=float(d.get("divisor", 1.0)),
                normalize=bool(d.get("normalize", False)),
                offset=float(d.get("offset", 0.0)),
                name=str(d.get("name", ""))[:200],
            )
        except KernelError as exc:
            raise KernelError(f"{where}: {exc}") from None
        except (TypeError, ValueError, OverflowError):
            raise KernelError(f"{where}: the kernel must be a square matrix of numbers") from None
        return spec


def separable_factors(
    kernel: np.ndarray, tol: float = 1e-6
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(col, row)`` with ``np.outer(col, row) == kernel`` when the kernel has rank 1, else None.

    Rank is judged by the SVD (``s[1] <= tol * s[0]``). The factors are scaled to read well:
    ``col`` has smallest non-zero magnitude 1 and a positive first non-zero entry, e.g. the
    Gaussian 3x3 gives ``[1 2 1]`` and ``[1 2 1]``; Sobel x gives ``[1 2 1]`` and ``[-1 0 1]``.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if not np.any(k):
        return None
    if k.shape == (1, 1):
        return np.ones(1), k[0].copy()
    s = np.linalg.svd(k, compute_uv=False)
    if s[1] > tol * s[0]:
        return None
    j = int(np.argmax(np.abs(k).sum(axis=0)))
    col = k[:, j].copy()
    nz = np.abs(col[col != 0])
    col /= nz.min()
    if col[np.flatnonzero(col)[0]] < 0:
        col = -col
    i = int(np.argmax(np.abs(col)))
    row = k[i, :] / col[i]
    if not np.allclose(np.outer(col, row), k, rtol=1e-6, atol=1e-9 * s[0]):
        return None
    return col, row


def split_centre(
    weights: np.ndarray,
) -> tuple[tuple[np.ndarray, np.ndarray] | None, float]:
    """``((col, row), d)`` with ``weights = outer(col, row) + d * centre``, or ``(None, 0)``.

    Catches rank-1 kernels (d = 0) and the "identity times a, minus a blur" family
    (Outline/Edge detection 3 = 9*identity - box, Unsharp = 2*identity - Gaussian), which then
    run as two 1-D passes plus one multiply-add of the centre pixel.
    """
    factors = separable_factors(weights)
    if factors is not None:
        return factors, 0.0
    f = weights.shape[0]
    m = (f - 1) // 2
    off = np.abs(weights).copy()
    off[m, :] = 0
    off[:, m] = 0
    if not off.any():
        return None, 0.0
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    centre = weights[m, j] * weights[i, m] / weights[i, j]  # what a rank-1 kernel needs there
    rest = weights.copy()
    rest[m, m] = centre
    factors = separable_factors(rest)
    if factors is None:
        return None, 0.0
    return factors, float(weights[m, m] - centre)

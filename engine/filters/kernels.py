"""Kernels as the user types them: the number grammar, kernel text, :class:`KernelSpec`, and
the facts the editor shows (separability, the "identity plus a separable kernel" split).

Pure NumPy. Files of kernels live in :mod:`engine.filters.kernelfile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from engine.errors import EngineError

KERNEL_SIZES = (3, 5, 7)
MAX_KERNELS = 8

__all__ = [
    "KERNEL_SIZES",
    "MAX_KERNELS",
    "KernelError",
    "KernelSpec",
    "format_number",
    "kernel_to_text",
    "parse_kernel",
    "parse_number",
    "separable_factors",
    "split_centre",
]


class KernelError(EngineError, ValueError):
    """A kernel's text, file or values cannot be used (not a number, not square, divisor 0)."""


def parse_number(text: str) -> float:
    """A cell's value: ``"2"``, ``"-0.5"``, ``".25"``, ``"1e-3"``, ``"1/9"``, ``"-1/16"``.

    Raises :class:`KernelError` for anything else (empty, ``"abc"``, ``"1/0"``, ``"nan"``).
    """
    s = text.strip().replace("\u2212", "-")  # a typographic minus counts as a minus
    if not s:
        raise KernelError("empty cell; type a number such as 1, -0.5 or 1/9")
    try:
        if "/" in s:
            num, _, den = s.partition("/")
            value = float(Fraction(num.strip()) / Fraction(den.strip()))
        else:
            value = float(s)
    except (ValueError, ZeroDivisionError):
        raise KernelError(
            f"{text.strip()!r} is not a number; type e.g. 1, -0.5 or a fraction like 1/9"
        ) from None
    if not math.isfinite(value):
        raise KernelError(f"{text.strip()!r} is not a finite number; type e.g. 1, -0.5 or 1/9")
    return value


def parse_kernel(text: str) -> np.ndarray:
    """Parse ``"a b c; d e f; g h i"`` (rows split by ``;`` or new lines, cells by spaces or
    commas, fractions allowed) into a float64 ``(F, F)`` array with F in 3, 5, 7.

    Raises :class:`KernelError` naming the bad cell or the bad shape.
    """
    rows = [r for r in text.replace("\n", ";").split(";") if r.strip()]
    if not rows:
        raise KernelError("empty kernel; type rows like '0 -1 0; -1 5 -1; 0 -1 0'")
    values: list[list[float]] = []
    for i, row in enumerate(rows, 1):
        cells = row.replace(",", " ").split()
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
    if k.shape[0] != k.shape[1] or k.shape[0] not in KERNEL_SIZES:
        raise KernelError(
            f"kernel is {k.shape[0]}x{k.shape[1]}; it must be square: 3x3, 5x5 or 7x7"
        )
    return k


def format_number(value: float) -> str:
    """Short text for a cell: ``1``, ``-0.5``, ``0.1111`` (up to 4 decimals, no trailing 0)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


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
        k = np.asarray(self.kernel, dtype=np.float64)
        if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
            raise KernelError(f"kernel shape {k.shape}: it must be square and odd, e.g. 3x3")
        if not np.all(np.isfinite(k)):
            raise KernelError("kernel has a value that is not a finite number")
        if self.divisor == 0 or not math.isfinite(self.divisor):
            raise KernelError(f"divisor {self.divisor}: it must be a non-zero number")
        if not math.isfinite(self.offset):
            raise KernelError(f"offset {self.offset}: it must be a finite number")
        object.__setattr__(self, "kernel", k)

    @property
    def size(self) -> int:
        return int(self.kernel.shape[0])

    def effective_divisor(self) -> float:
        total = float(self.kernel.sum())
        if self.normalize and abs(total) > 1e-12:
            return total
        return float(self.divisor)

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
            k = np.array(d["kernel"], dtype=np.float64)
            spec = cls(
                k,
                divisor=float(d.get("divisor", 1.0)),
                normalize=bool(d.get("normalize", False)),
                offset=float(d.get("offset", 0.0)),
                name=str(d.get("name", "")),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, KernelError):
                raise KernelError(f"{where}: {exc}") from None
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

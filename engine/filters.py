"""The kernel editor's maths: presets, parsing, borders, stride, divisor/offset, display, pooling.

Everything the Filters tab and ``convscope convolve`` compute comes from here, so the window and
the command line give the same numbers. Pure NumPy; no Qt.

Convolution, as in the article and in CNNs, is *cross-correlation*: the kernel is not flipped::

    out[y, x] = sum_{i,j} K[i, j] * P[y*S + i, x*S + j] / divisor + offset

where ``P`` is the image padded by ``pad = (F - 1) // 2`` pixels with the border mode (``np.pad``
semantics: zero = ``constant``, extend = ``edge``, reflect, symmetric, wrap), or not padded at all
for ``"valid"``. The output size is ``W' = (W - F + 2P) // S + 1`` (and the same for H).

Shapes: images are ``uint8`` ``(H, W)`` (grayscale) or ``(H, W, C)``; results are ``float32``
``(H', W')`` or ``(H', W', C)``; a stack of N kernels gives ``(N, H', W', C)`` feature maps.

Speed (the preview must update in <= 16 ms for a 1920x1080 RGB photo on 2 cores): the image is
processed in bands of rows that fit in the L2 cache. Each band is converted from uint8 to float32
and padded in a preallocated buffer, then every non-zero tap is one in-place ufunc on a shifted
view (taps with the same weight are summed first and multiplied once; +-1 needs no multiply).
A rank-1 kernel (box, Gaussian, Sobel) runs as two 1-D passes when that takes fewer ufunc
passes. NumPy releases the GIL inside ufuncs, so bands are shared between the calling thread and
the threads of a small module-level ``ThreadPoolExecutor`` (``parallel=False`` turns it off).
This is the one place the engine uses threads: the work is split inside a single call and joined
before it returns, so callers still see a plain function (or generator).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write
from engine.errors import EngineError, ShapeError

__all__ = [
    "BORDERS",
    "DISPLAYS",
    "FIGURE5_IMAGE",
    "FIGURE5_KERNEL",
    "KERNEL_SIZES",
    "MAX_KERNELS",
    "POOLS",
    "PRESETS",
    "ConvStep",
    "ConvSteps",
    "FilterProgress",
    "FilterResult",
    "FilterSettings",
    "Inspection",
    "KernelError",
    "KernelSpec",
    "Preset",
    "conv_steps",
    "correlate",
    "display",
    "format_number",
    "histogram",
    "inspect_pixel",
    "iter_filter",
    "kernel_to_text",
    "load_kernels",
    "output_size",
    "padding_for",
    "parse_kernel",
    "parse_number",
    "pool",
    "relu",
    "run_filter",
    "save_kernels",
    "separable_factors",
    "size_formula",
    "split_centre",
    "subsampled_maps",
    "tile_maps",
    "to_gray",
]

BORDERS = ("zero", "extend", "reflect", "symmetric", "wrap", "valid")
_NP_PAD = {
    "zero": "constant",
    "extend": "edge",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "wrap": "wrap",
}
DISPLAYS = ("clip", "abs", "normalize", "diverging")
POOLS = ("none", "max", "avg", "sum")
KERNEL_SIZES = (3, 5, 7)
MAX_KERNELS = 8
MAX_STRIDE = 4


class KernelError(EngineError, ValueError):
    """A kernel's text, file or values cannot be used (not a number, not square, divisor 0)."""


# ---------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class Preset:
    """A named kernel; the effective weights are ``kernel / divisor``."""

    name: str
    kernel: tuple[tuple[float, ...], ...]
    divisor: float = 1.0
    description: str = ""

    def array(self) -> np.ndarray:
        """The kernel as typed in the grid: float64 ``(F, F)``."""
        return np.array(self.kernel, dtype=np.float64)

    def spec(self) -> KernelSpec:
        return KernelSpec(self.array(), divisor=self.divisor, name=self.name)


def _gauss5() -> tuple[tuple[float, ...], ...]:
    row = np.array([1, 4, 6, 4, 1])
    return tuple(tuple(float(v) for v in r) for r in np.outer(row, row))


def _unsharp5() -> tuple[tuple[float, ...], ...]:
    # 2*identity - Gaussian 5x5: -G everywhere, and 512 - 36 = 476 in the centre (divisor 256).
    k = -np.array(_gauss5())
    k[2, 2] = 476.0
    return tuple(tuple(float(v) for v in r) for r in k)


def _t(rows: list[list[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in r) for r in rows)


_PRESET_LIST = [
    Preset(
        "Identity",
        _t([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
        1,
        "Leaves the image unchanged: only the centre pixel counts.",
    ),
    Preset(
        "Edge detection 1",
        _t([[1, 0, -1], [0, 0, 0], [-1, 0, 1]]),
        1,
        "Diagonal differences: bright where the image changes along the diagonals.",
    ),
    Preset(
        "Edge detection 2",
        _t([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        1,
        "Laplacian: the centre against its four neighbours.",
    ),
    Preset(
        "Edge detection 3",
        _t([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
        1,
        "The centre against all eight neighbours: strong outlines.",
    ),
    Preset(
        "Sharpen",
        _t([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
        1,
        "The pixel plus its difference to its neighbours: crisper edges.",
    ),
    Preset(
        "Box blur",
        _t([[1, 1, 1], [1, 1, 1], [1, 1, 1]]),
        9,
        "The mean of the 3x3 neighbourhood (1/9 each).",
    ),
    Preset(
        "Gaussian blur 3x3",
        _t([[1, 2, 1], [2, 4, 2], [1, 2, 1]]),
        16,
        "A weighted mean: close pixels count more (1/16).",
    ),
    Preset(
        "Sobel x",
        _t([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
        1,
        "Horizontal gradient: responds to vertical edges (separable).",
    ),
    Preset(
        "Sobel y",
        _t([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
        1,
        "Vertical gradient: responds to horizontal edges (separable).",
    ),
    Preset(
        "Emboss",
        _t([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
        1,
        "Light from the top left: a relief effect.",
    ),
    Preset(
        "Outline",
        _t([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
        1,
        "Same weights as Edge detection 3, as image-kernel pages call it.",
    ),
    Preset(
        "Gaussian blur 5x5",
        _gauss5(),
        256,
        "Binomial 5x5 blur, [1 4 6 4 1] in both directions (1/256).",
    ),
    Preset(
        "Unsharp 5x5",
        _unsharp5(),
        256,
        "Unsharp masking: twice the image minus its 5x5 Gaussian blur (1/256).",
    ),
]

#: The presets by name, in menu order.
PRESETS: dict[str, Preset] = {p.name: p for p in _PRESET_LIST}


# ---------------------------------------------------------------------------------------------
# Kernels: parsing, formatting, files


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


def save_kernels(path: str | os.PathLike[str], specs: Sequence[KernelSpec]) -> Path:
    """Write kernels as JSON ``{"format": "convscope-kernels", "version": 1, "kernels": [...]}``."""
    doc = {"format": "convscope-kernels", "version": 1, "kernels": [s.to_json() for s in specs]}
    text = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    return atomic_write(path, lambda f: f.write(text))


def load_kernels(path: str | os.PathLike[str]) -> list[KernelSpec]:
    """Read kernels saved by :func:`save_kernels` (also a single kernel object or a bare
    matrix ``[[...], ...]``). Raises :class:`KernelError` naming the file."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KernelError(f"{p.name}: cannot be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KernelError(
            f"{p.name}: not a JSON kernel file; save one from the Filters tab"
        ) from None
    items = doc.get("kernels") if isinstance(doc, dict) and "kernels" in doc else [doc]
    if (
        isinstance(doc, list)
        and doc
        and all(isinstance(r, list) for r in doc)
        and all(not isinstance(v, list) for r in doc for v in r)
    ):
        items = [doc]  # a bare matrix
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_KERNELS:
        raise KernelError(f"{p.name}: expected 1 to {MAX_KERNELS} kernels")
    return [KernelSpec.from_json(d, f"{p.name} kernel {i + 1}") for i, d in enumerate(items)]


# ---------------------------------------------------------------------------------------------
# Kernel facts: sum, separability, sizes


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


def padding_for(border: str, size: int) -> int:
    """Pixels added on each side: ``(F - 1) // 2`` for the padding modes, 0 for ``"valid"``."""
    _check_border(border)
    return 0 if border == "valid" else (size - 1) // 2


def output_size(n: int, f: int, padding: int, stride: int) -> int:
    """``(n - f + 2*padding) // stride + 1``; raises :class:`ShapeError` when it is below 1."""
    span = n - f + 2 * padding
    if span < 0:
        raise ShapeError(
            f"a {f}x{f} kernel does not fit an image side of {n} px with padding {padding}; "
            "use a smaller kernel or a padding border mode"
        )
    return span // stride + 1


def size_formula(n: int, f: int, padding: int, stride: int) -> str:
    """The output-size formula filled in: ``"(1920 − 3 + 2·1)/1 + 1 = 1920"``."""
    out = output_size(n, f, padding, stride)
    exact = (n - f + 2 * padding) % stride == 0
    slash = "/" if exact else "//"
    return f"({n} − {f} + 2·{padding}){slash}{stride} + 1 = {out}"


def _check_border(border: str) -> None:
    if border not in BORDERS:
        raise KernelError(f"border {border!r}: use one of {', '.join(BORDERS)}")


def _check_stride(stride: int) -> None:
    if not isinstance(stride, (int, np.integer)) or not 1 <= stride <= MAX_STRIDE:
        raise KernelError(f"stride {stride!r}: use a whole number from 1 to {MAX_STRIDE}")


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W)`` luma ``0.299 R + 0.587 G + 0.114 B`` (alpha ignored); gray passes."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[2] == 1:
        return a[:, :, 0]
    rgb = a[:, :, :3].astype(np.float32)
    y = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# The fast correlation: bands, grouped taps, optional separable passes, threads

_BAND_BYTES = 1 << 20  # one band's padded float32 buffer: about 1 MB, well inside L2
_POOL: ThreadPoolExecutor | None = None
# helper threads besides the caller's: one per extra core, at most 3
_POOL_THREADS = max(1, min(4, os.cpu_count() or 1) - 1)
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_POOL_THREADS, thread_name_prefix="convscope-filter")
        return _POOL


def _run_parallel(
    bands: Sequence[tuple[int, int]],
    work: Callable[..., None],
    make_scratch: Callable[[], object],
    parallel: bool,
) -> None:
    """Call ``work(y0, y1, scratch)`` for every band, on the calling thread and the pool's
    threads (each with its own scratch buffers); returns when all bands are done."""
    if not bands:
        return
    workers = 1 if not parallel else min(len(bands), _POOL_THREADS + 1)
    it = iter(bands)
    lock = threading.Lock()

    def loop() -> None:
        scratch = make_scratch()
        while True:
            with lock:
                band = next(it, None)
            if band is None:
                return
            work(*band, scratch)

    futures = [_pool().submit(loop) for _ in range(workers - 1)]
    try:
        loop()
    finally:
        for fut in futures:
            fut.result()


def _groups(taps: dict[tuple[int, int], float]) -> list[tuple[float, list[tuple[int, int]]]]:
    """Non-zero taps grouped by equal weight, best first group first (see :func:`_apply`)."""
    by_weight: dict[float, list[tuple[int, int]]] = {}
    for pos, w in taps.items():
        if w != 0:
            by_weight.setdefault(float(w), []).append(pos)
    groups = list(by_weight.items())

    def rank(g: tuple[float, list]) -> tuple[int, int]:
        w, members = g
        return (0 if abs(w) != 1 else (1 if w == 1 else 2), -len(members))

    groups.sort(key=rank)
    return groups


def _passes(groups: list[tuple[float, list]]) -> int:
    """How many full-size ufunc passes :func:`_apply` makes for these groups."""
    if not groups:
        return 1
    w0, first = groups[0]
    n = 1 if len(first) == 1 else len(first) - 1 + (w0 != 1)
    for w, members in groups[1:]:
        n += len(members) if abs(w) == 1 else (2 if len(members) == 1 else len(members) + 1)
    return n


def _apply(
    out: np.ndarray, groups, view: Callable[[tuple[int, int]], np.ndarray], tmp: np.ndarray
) -> None:
    """``out = sum(w * view(tap))`` with in-place ufuncs: taps of equal weight are summed first
    and multiplied once; a weight of +-1 needs no multiply."""
    if not groups:
        out.fill(0)
        return
    w0, first = groups[0]
    if len(first) == 1:
        np.multiply(view(first[0]), np.float32(w0), out=out)
    else:
        np.add(view(first[0]), view(first[1]), out=out)
        for pos in first[2:]:
            np.add(out, view(pos), out=out)
        if w0 != 1:
            np.multiply(out, np.float32(w0), out=out)
    for w, members in groups[1:]:
        if w == 1 or w == -1:
            op = np.add if w == 1 else np.subtract
            for pos in members:
                op(out, view(pos), out=out)
        elif len(members) == 1:
            np.multiply(view(members[0]), np.float32(w), out=tmp)
            np.add(out, tmp, out=out)
        else:
            np.add(view(members[0]), view(members[1]), out=tmp)
            for pos in members[2:]:
                np.add(tmp, view(pos), out=tmp)
            np.multiply(tmp, np.float32(w), out=tmp)
            np.add(out, tmp, out=out)


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


def _index_map(n: int, pad: int, border: str) -> np.ndarray:
    """Source index of every padded position (np.pad semantics); -1 where zero padding."""
    if pad == 0:
        return np.arange(n)
    if border == "zero":
        return np.pad(np.arange(n), pad, mode="constant", constant_values=-1)
    return np.pad(np.arange(n), pad, mode=_NP_PAD[border])


class _Correlator:
    """One correlation job split into bands of output rows (see the module docstring)."""

    def __init__(
        self,
        image: np.ndarray,
        weights: np.ndarray,
        border: str,
        stride: int,
        offset: float,
        out: np.ndarray | None = None,
        max_band: int = 0,
    ) -> None:
        img = image if image.ndim == 3 else image[:, :, None]
        h, w, c = img.shape
        f = weights.shape[0]
        self.img, self.f, self.s, self.c, self.offset = img, f, stride, c, np.float32(offset)
        self.pad = padding_for(border, f)
        self.oh = output_size(h, f, self.pad, stride)
        self.ow = output_size(w, f, self.pad, stride)
        self.rows = _index_map(h, self.pad, border)
        self.cols = _index_map(w, self.pad, border)
        self.wp = w + 2 * self.pad
        self.w = w
        shape = (self.oh, self.ow, c)
        self.out = np.empty(shape, np.float32) if out is None else out
        taps = {(i, j): float(weights[i, j]) for i in range(f) for j in range(f)}
        self.groups2d = _groups(taps)
        self.sep = None
        self.delta = 0.0  # a centre weight added to a separable kernel (see split_centre)
        rank1, delta = split_centre(weights)
        if rank1 is not None:
            col, row = rank1
            g_row = _groups({(0, j): float(v) for j, v in enumerate(row)})
            g_col = _groups({(i, 0): float(v) for i, v in enumerate(col)})
            # the row pass runs on the (band + F - 1) input rows, the column pass on the band
            cost = _passes(g_row) * 1.15 + _passes(g_col) + (0 if delta == 0 else 2)
            if cost < _passes(self.groups2d):
                self.sep = (g_col, g_row)
                self.delta = delta
        row_bytes = self.wp * c * 4
        in_rows = max(f + stride, _BAND_BYTES // max(row_bytes, 1))
        self.band = max(1, (in_rows - f) // stride + 1)
        if max_band:
            self.band = min(self.band, max_band)
        self.bands = [(y, min(y + self.band, self.oh)) for y in range(0, self.oh, self.band)]

    def _scratch(self) -> tuple[np.ndarray, ...]:
        """One thread's preallocated buffers: padded band, temp, and the separable pass's."""
        in_rows = (self.band - 1) * self.s + self.f
        buf = np.empty((in_rows, self.wp, self.c), np.float32)
        tmp = np.empty((self.band, self.ow, self.c), np.float32)
        if self.sep is None:
            return buf, tmp, tmp, tmp
        hbuf = np.empty((in_rows, self.ow, self.c), np.float32)
        htmp = np.empty_like(hbuf) if len(self.sep[1]) > 1 else hbuf  # unused when 1 group
        return buf, tmp, hbuf, htmp

    def run_band(self, y0: int, y1: int, scratch) -> None:
        buf_all, tmp_all, hbuf_all, htmp_all = scratch
        s, f, p, n = self.s, self.f, self.pad, y1 - y0
        r0, r1 = y0 * s, (y1 - 1) * s + f  # padded input rows needed
        buf = buf_all[: r1 - r0]
        src = self.rows[r0:r1]
        inner = buf[:, p : p + self.w]
        if src[0] >= 0 and src[-1] - src[0] == len(src) - 1 and np.all(np.diff(src) == 1):
            inner[...] = self.img[src[0] : src[-1] + 1]  # uint8 -> float32, fused per band
        else:
            for k, r in enumerate(src):
                if r < 0:
                    inner[k] = 0
                else:
                    inner[k] = self.img[r]
        if p:
            for j in (*range(p), *range(p + self.w, self.wp)):
                sc = self.cols[j]
                if sc < 0:
                    buf[:, j] = 0
                else:
                    buf[:, j] = buf[:, p + sc]
        out = self.out[y0:y1]
        tmp = tmp_all[:n]
        oh_span, ow_span = (n - 1) * s + 1, (self.ow - 1) * s + 1
        if self.sep is None:

            def view(pos: tuple[int, int]) -> np.ndarray:
                i, j = pos
                return buf[i : i + oh_span : s, j : j + ow_span : s]

            _apply(out, self.groups2d, view, tmp)
        else:
            g_col, g_row = self.sep
            hb = hbuf_all[: r1 - r0]
            _apply(
                hb, g_row, lambda pos: buf[:, pos[1] : pos[1] + ow_span : s], htmp_all[: r1 - r0]
            )
            _apply(out, g_col, lambda pos: hb[pos[0] : pos[0] + oh_span : s], tmp)
            if self.delta:
                m = (f - 1) // 2
                centre = buf[m : m + oh_span : s, m : m + ow_span : s]
                np.multiply(centre, np.float32(self.delta), out=tmp)
                np.add(out, tmp, out=out)
        if self.offset:
            np.add(out, self.offset, out=out)

    def run(self, bands: Sequence[tuple[int, int]], parallel: bool) -> None:
        _run_parallel(bands, self.run_band, self._scratch, parallel)


def _as_image(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 2, 3, 4)):
        raise ShapeError(f"image shape {a.shape}: expected (H, W) or (H, W, C)")
    if a.dtype != np.uint8 and a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


def correlate(
    image: np.ndarray,
    weights: np.ndarray,
    *,
    border: str = "zero",
    stride: int = 1,
    offset: float = 0.0,
    parallel: bool = True,
) -> np.ndarray:
    """Cross-correlate every channel of ``image`` with ``weights`` (the fast path).

    Args:
        image: uint8 or float32 ``(H, W)`` or ``(H, W, C)``.
        weights: ``(F, F)``, F odd; applied as given (divide by the divisor before).
        border: one of :data:`BORDERS`. stride: 1..4. offset: added to every output value.
    Returns:
        float32 ``(H', W')`` or ``(H', W', C)`` with ``H' = (H - F + 2P) // S + 1``.
    """
    _check_border(border)
    _check_stride(stride)
    img = _as_image(image)
    w = np.asarray(weights, dtype=np.float64)
    job = _Correlator(img, w, border, int(stride), offset)
    job.run(job.bands, parallel)
    return job.out if img.ndim == 3 else job.out[:, :, 0]


# ---------------------------------------------------------------------------------------------
# Next stages: ReLU, pooling


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` as a new float32 array."""
    return np.maximum(x, np.float32(0))


def pool(x: np.ndarray, kind: str, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Max, average or sum pooling of float ``(H, W)`` or ``(H, W, C)`` over ``size x size``
    windows moved by ``stride`` (default ``size``): ``H' = (H - size) // stride + 1``."""
    if kind not in ("max", "avg", "sum"):
        raise KernelError(f"pooling {kind!r}: use max, avg or sum")
    stride = size if stride is None else stride
    if not 1 <= size <= 8 or not 1 <= stride <= 8:
        raise KernelError(f"pool size {size} / stride {stride}: use whole numbers from 1 to 8")
    a = np.asarray(x, dtype=np.float32)
    h, w = a.shape[:2]
    oh, ow = output_size(h, size, 0, stride), output_size(w, size, 0, stride)
    out = None
    for i in range(size):
        for j in range(size):
            v = a[i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride]
            if out is None:
                out = v.copy()
            elif kind == "max":
                np.maximum(out, v, out=out)
            else:
                np.add(out, v, out=out)
    if kind == "avg":
        out *= np.float32(1.0 / (size * size))
    return out


# ---------------------------------------------------------------------------------------------
# The pipeline the tab and the CLI run: convolution -> ReLU -> pooling, for 1..8 kernels


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class FilterSettings:
    """Everything that defines a result. ``color`` is ``"gray"`` or ``"rgb"``."""

    kernels: tuple[KernelSpec, ...]
    border: str = "zero"
    stride: int = 1
    color: str = "gray"
    relu: bool = False
    pool: str = "none"
    pool_size: int = 2
    pool_stride: int = 2

    def __post_init__(self) -> None:
        if not 1 <= len(self.kernels) <= MAX_KERNELS:
            raise KernelError(f"{len(self.kernels)} kernels: use 1 to {MAX_KERNELS}")
        _check_border(self.border)
        _check_stride(self.stride)
        if self.color not in ("gray", "rgb"):
            raise KernelError(f"colour {self.color!r}: use gray or rgb")
        if self.pool not in POOLS:
            raise KernelError(f"pooling {self.pool!r}: use one of {', '.join(POOLS)}")
        sizes = sorted({k.size for k in self.kernels})
        if self.border == "valid" and len(sizes) > 1:
            raise KernelError(
                f"kernels of sizes {', '.join(f'{n}x{n}' for n in sizes)} give maps of "
                "different sizes without padding; use one size or a padding border"
            )

    def check_fits(self, height: int, width: int) -> None:
        """Raise :class:`ShapeError` when a kernel (or the pooling) does not fit the image."""
        for k in self.kernels:
            p = padding_for(self.border, k.size)
            oh, ow = (output_size(n, k.size, p, self.stride) for n in (height, width))
            if self.pool != "none":
                for n in (oh, ow):
                    if n < self.pool_size:
                        raise ShapeError(
                            f"the {self.pool_size}x{self.pool_size} pooling window does not "
                            f"fit the {oh}x{ow} convolution output; use a smaller pool size"
                        )


@dataclass(frozen=True)
class FilterProgress:
    """Emitted while a big image is filtered: ``done`` of ``total`` output rows (all kernels)."""

    done: int
    total: int


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class FilterResult:
    """``maps``: float32 ``(N, H', W', C)`` after all stages (C = 1 gray, 3 RGB).
    ``stages``: ``[("input", (H, W, C)), ("conv", ...), ("relu", ...), ("max pool", ...)]``.
    ``source``: the image the kernels ran on (uint8, gray ``(H, W)`` or RGB ``(H, W, 3)``)."""

    maps: np.ndarray
    stages: list[tuple[str, tuple[int, ...]]]
    source: np.ndarray = field(repr=False)
    settings: FilterSettings | None = None

    def raw(self) -> np.ndarray:
        """The float32 values before any display mapping, without size-1 axes of the stack
        and channel: ``(H', W')`` for one gray kernel, ``(N, H', W', 3)`` for an RGB stack."""
        raw = self.maps[..., 0] if self.maps.shape[-1] == 1 else self.maps
        return np.ascontiguousarray(raw[0] if raw.shape[0] == 1 else raw, dtype=np.float32)


def save_raw(result: FilterResult, path: str | os.PathLike[str]) -> Path:
    """Write ``result.raw()`` to ``path`` (.npy) atomically."""
    return atomic_write(path, lambda f: np.save(f, result.raw()))


def prepare_source(image: np.ndarray, color: str) -> np.ndarray:
    """The image the kernels run on: gray ``(H, W)`` uint8 or RGB ``(H, W, 3)`` (alpha dropped)."""
    a = np.asarray(image)
    if color == "gray":
        return to_gray(a)
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    return a[:, :, :3]


def iter_filter(
    image: np.ndarray,
    settings: FilterSettings,
    *,
    cancel: threading.Event | None = None,
    parallel: bool = True,
    rows_per_step: int = 256,
) -> Iterator[FilterProgress | FilterResult]:
    """Run the pipeline, yielding :class:`FilterProgress` every ``rows_per_step`` output rows
    and finally a :class:`FilterResult`. When ``cancel`` is set between steps the generator
    returns without a result. For 12 MP photos off the GUI thread."""
    src = prepare_source(image, settings.color)
    img = src if src.ndim == 3 else src[:, :, None]
    jobs = [
        _Correlator(
            img, k.weights(), settings.border, settings.stride, k.offset, max_band=rows_per_step
        )
        for k in settings.kernels
    ]
    total = sum(j.oh for j in jobs)
    done = 0
    for job in jobs:
        step = max(1, rows_per_step // job.band) if rows_per_step else len(job.bands)
        for i in range(0, len(job.bands), step):
            if cancel is not None and cancel.is_set():
                return
            chunk = job.bands[i : i + step]
            job.run(chunk, parallel)
            done += chunk[-1][1] - chunk[0][0]
            if done < total:
                yield FilterProgress(done, total)
    yield _finish(src, img.shape, [j.out for j in jobs], settings)


def subsampled_maps(
    image: np.ndarray, settings: FilterSettings, step: int, *, parallel: bool = True
) -> np.ndarray:
    """Every ``step``-th row and column of the maps, exactly, at about 1/step² of the cost:
    ``subsampled_maps(img, s, k) == run_filter(img, s).maps[:, ::k, ::k]`` (no pooling).

    The quick first picture of a big photo while the full result is computed: output pixel
    ``y*k`` of stride S is output pixel ``y`` of stride ``S*k``. Returns float32
    ``(N, ceil(H'/k), ceil(W'/k), C)``.
    """
    if settings.pool != "none":
        raise KernelError("a subsampled preview needs every convolution output: no pooling")
    src = prepare_source(image, settings.color)
    img = src if src.ndim == 3 else src[:, :, None]
    maps = []
    for k in settings.kernels:
        job = _Correlator(img, k.weights(), settings.border, settings.stride * step, k.offset)
        job.run(job.bands, parallel)
        maps.append(job.out)
    out = np.stack(maps)
    if settings.relu:
        np.maximum(out, np.float32(0), out=out)
    return out


def run_filter(
    image: np.ndarray, settings: FilterSettings, *, parallel: bool = True
) -> FilterResult:
    """The whole pipeline at once (the preview and the CLI)."""
    result = None
    for event in iter_filter(image, settings, parallel=parallel, rows_per_step=0):
        result = event
    assert isinstance(result, FilterResult)
    return result


def _finish(
    src: np.ndarray, in_shape: tuple[int, ...], convs: list[np.ndarray], settings: FilterSettings
) -> FilterResult:
    stages: list[tuple[str, tuple[int, ...]]] = [("input", tuple(in_shape))]
    n = len(convs)
    depth = (n,) if n > 1 else ()
    stages.append(("conv", (*depth, *convs[0].shape)))
    maps = convs
    if settings.relu:
        for m in maps:
            np.maximum(m, np.float32(0), out=m)
        stages.append(("ReLU", stages[-1][1]))
    if settings.pool != "none":
        maps = [pool(m, settings.pool, settings.pool_size, settings.pool_stride) for m in maps]
        stages.append((f"{settings.pool} pool", (*depth, *maps[0].shape)))
    return FilterResult(np.stack(maps) if n > 1 else maps[0][None], stages, src, settings)


# ---------------------------------------------------------------------------------------------
# Display: signed float results -> uint8 RGB; histogram; mosaic


def _diverging_lut() -> np.ndarray:
    """256 colours: blue (most negative) -> near white (0) -> red (most positive)."""
    anchors = np.array(
        [[40, 80, 170], [120, 170, 215], [245, 245, 245], [225, 130, 100], [175, 30, 40]],
        dtype=np.float64,
    )
    t = np.linspace(0, len(anchors) - 1, 256)
    lo = np.floor(t).astype(int).clip(0, len(anchors) - 2)
    frac = (t - lo)[:, None]
    return np.rint(anchors[lo] * (1 - frac) + anchors[lo + 1] * frac).astype(np.uint8)


_LUT = _diverging_lut()


def display(
    values: np.ndarray,
    mode: str = "clip",
    *,
    value_range: tuple[float, float] | None = None,
    parallel: bool = True,
) -> np.ndarray:
    """Map float results to uint8 RGB ``(H, W, 3)`` for the screen or a PNG.

    ``values``: ``(H, W)`` or ``(H, W, C)`` with C = 1 or 3. Modes: ``clip`` (round, then
    clip to 0..255), ``abs`` (``|v|`` clipped), ``normalize`` (``(v - min) * 255 / (max - min)``,
    all 0 when flat), ``diverging`` (blue < 0 < red, scaled by ``max |v|``; an RGB result is
    averaged over its channels first). ``value_range`` overrides the measured (min, max).
    """
    if mode not in DISPLAYS:
        raise KernelError(f"display {mode!r}: use one of {', '.join(DISPLAYS)}")
    v = np.asarray(values, dtype=np.float32)
    if v.ndim == 2:
        v = v[:, :, None]
    if mode == "diverging":
        g = v.mean(axis=2) if v.shape[2] > 1 else v[:, :, 0]
        lo, hi = value_range or (float(g.min()), float(g.max()))
        m = max(abs(lo), abs(hi)) or 1.0
        idx = np.clip(g * np.float32(127.5 / m) + np.float32(128.0), 0, 255).astype(np.uint8)
        return _LUT[idx]
    if mode == "normalize":
        lo, hi = value_range or (float(v.min()), float(v.max()))
        scale = np.float32(255.0 / (hi - lo)) if hi > lo else np.float32(0)
        shift = np.float32(-lo * scale + 0.5) if hi > lo else np.float32(0)
    else:
        scale, shift = np.float32(1), np.float32(0.5)
    out = np.empty((*v.shape[:2], 3), np.uint8)
    rows = max(8, _BAND_BYTES // max(1, v.shape[1] * v.shape[2] * 4))

    def band(y0: int, y1: int, t: np.ndarray) -> None:
        t = t[: y1 - y0]
        src = v[y0:y1]
        if mode == "abs":
            np.abs(src, out=t)
            np.add(t, shift, out=t)
        else:
            np.multiply(src, scale, out=t)
            np.add(t, shift, out=t)
        np.clip(t, 0, 255, out=t)
        out[y0:y1] = t  # float32 -> uint8 (truncation of v + 0.5: rounding); gray -> R = G = B

    _run_parallel(
        [(y, min(y + rows, v.shape[0])) for y in range(0, v.shape[0], rows)],
        band,
        lambda: np.empty((rows, *v.shape[1:]), np.float32),
        parallel,
    )
    return out


def histogram(
    values: np.ndarray, bins: int = 64, max_samples: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the output values over ``[min, max]``; big arrays are sampled on
    a regular grid of about ``max_samples`` values (enough for the shape of the histogram)."""
    v = np.asarray(values)
    step = max(1, math.ceil(math.sqrt(v.size / max_samples)))
    sample = v[::step, ::step] if v.ndim >= 2 else v[::step]
    lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(sample, bins=bins, range=(lo, hi))
    return counts, edges


def tile_maps(
    maps: Sequence[np.ndarray], columns: int | None = None, gap: int = 6, background: int = 40
) -> np.ndarray:
    """Lay out N uint8 ``(H, W, 3)`` maps of one size in a grid (depth-N feature maps)."""
    n = len(maps)
    if n == 0:
        raise KernelError("no maps to lay out")
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = maps[0].shape[:2]
    canvas = np.full(
        (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), background, np.uint8
    )
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = m
    return canvas


# ---------------------------------------------------------------------------------------------
# Teaching: the pixel inspector and the step-through of the article's Figure 5

#: The article's 5x5 binary image and 3x3 kernel; their valid convolution is
#: ``[[4, 3, 4], [2, 4, 3], [2, 3, 4]]``.
FIGURE5_IMAGE = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
    dtype=np.float64,
)
FIGURE5_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float64)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class Inspection:
    """What is under the kernel at one output pixel: the input ``patch`` (F, F) (padding
    included), ``weights`` (kernel / divisor), ``products = patch * weights``, their ``total``
    and the output ``value = total + offset``; ``source_rc`` is the top-left input pixel
    (may be negative in the padding)."""

    patch: np.ndarray
    weights: np.ndarray
    products: np.ndarray
    total: float
    value: float
    source_rc: tuple[int, int]


def inspect_pixel(
    image: np.ndarray,
    spec: KernelSpec,
    *,
    border: str,
    stride: int,
    row: int,
    col: int,
    channel: int = 0,
) -> Inspection:
    """The Figure 5 view of output pixel ``(row, col)`` of one channel of ``image``."""
    _check_border(border)
    a = np.asarray(image)
    plane = a if a.ndim == 2 else a[:, :, channel]
    f = spec.size
    p = padding_for(border, f)
    oh = output_size(plane.shape[0], f, p, stride)
    ow = output_size(plane.shape[1], f, p, stride)
    if not (0 <= row < oh and 0 <= col < ow):
        raise ShapeError(f"output pixel ({row}, {col}) is outside the {oh}x{ow} result")
    rmap = _index_map(plane.shape[0], p, border)[row * stride : row * stride + f]
    cmap = _index_map(plane.shape[1], p, border)[col * stride : col * stride + f]
    patch = plane[np.clip(rmap, 0, None)[:, None], np.clip(cmap, 0, None)[None, :]]
    patch = patch.astype(np.float64) * ((rmap >= 0)[:, None] & (cmap >= 0)[None, :])
    w = spec.weights()
    products = patch * w
    total = float(products.sum())
    return Inspection(
        patch, w, products, total, total + spec.offset, (row * stride - p, col * stride - p)
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class ConvStep:
    """One position of the sliding window: output cell ``(out_row, out_col)`` is filled with
    ``total = sum(patch * kernel)``; the window's top-left is ``(row0, col0)`` in the padded
    matrix."""

    out_row: int
    out_col: int
    row0: int
    col0: int
    patch: np.ndarray
    products: np.ndarray
    total: float


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class ConvSteps:
    """The whole step-through: the (padded) ``matrix``, ``pad``, the ``kernel``, the ``steps``
    in raster order and the final ``output`` (out_h, out_w)."""

    matrix: np.ndarray
    pad: int
    kernel: np.ndarray
    steps: list[ConvStep]
    output: np.ndarray


def conv_steps(
    matrix: np.ndarray, kernel: np.ndarray, *, stride: int = 1, border: str = "valid"
) -> ConvSteps:
    """The window positions of a small 2-D convolution, in the order the animation shows them.

    ``conv_steps(FIGURE5_IMAGE, FIGURE5_KERNEL).output`` is the article's
    ``[[4, 3, 4], [2, 4, 3], [2, 3, 4]]``.
    """
    _check_border(border)
    _check_stride(stride)
    m = np.asarray(matrix, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    if m.ndim != 2 or m.size > 64 * 64:
        raise ShapeError(f"step-through matrix shape {m.shape}: use a small 2-D crop (<= 64x64)")
    f = k.shape[0]
    p = padding_for(border, f)
    padded = np.pad(m, p, mode=_NP_PAD[border]) if p else m
    oh = output_size(m.shape[0], f, p, stride)
    ow = output_size(m.shape[1], f, p, stride)
    output = np.zeros((oh, ow))
    steps = []
    for r in range(oh):
        for c in range(ow):
            patch = padded[r * stride : r * stride + f, c * stride : c * stride + f].copy()
            products = patch * k
            total = float(products.sum())
            output[r, c] = total
            steps.append(ConvStep(r, c, r * stride, c * stride, patch, products, total))
    return ConvSteps(padded, p, k, steps, output)

"""The pipeline the tab and the CLI run: convolution -> ReLU -> pooling, for 1..8 kernels.

Convolution, as in the article and in CNNs, is *cross-correlation*: the kernel is not flipped::

    out[y, x] = sum_{i,j} K[i, j] * P[y*S + i, x*S + j] / divisor + offset

where ``P`` is the image padded by ``pad = (F - 1) // 2`` pixels with the border mode, or not
padded at all for ``"valid"``. Shapes: images are ``uint8`` ``(H, W)`` or ``(H, W, C)``; a stack
of N kernels gives float32 ``(N, H', W', C)`` feature maps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write
from engine.errors import EngineError, ShapeError
from engine.filters.correlate import Correlator
from engine.filters.geometry import (
    check_border,
    check_stride,
    fitted_output_size,
    output_size,
    padding_for,
    placement,
)
from engine.filters.kernels import MAX_KERNELS, KernelError, KernelSpec
from engine.imageio import convert_array
from engine.imageops import to_gray
from engine.progress import Cancellable, Progress

POOLS = ("none", "max", "avg", "sum")
MAX_POOL = 8

__all__ = [
    "POOLS",
    "FilterResult",
    "FilterSaveError",
    "FilterSettings",
    "iter_filter",
    "iter_maps",
    "pool",
    "prepare_source",
    "relu",
    "run_filter",
    "save_raw",
    "save_raw_stream",
    "stages",
    "subsampled_maps",
]


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` as a new float32 array."""
    return np.maximum(x, np.float32(0))


def pool(x: np.ndarray, kind: str, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Max, average or sum pooling of float ``(H, W)`` or ``(H, W, C)`` over ``size x size``
    windows moved by ``stride`` (default ``size``): ``H' = (H - size) // stride + 1``."""
    if kind not in ("max", "avg", "sum"):
        raise KernelError(f"pooling {kind!r}: use max, avg or sum")
    stride = size if stride is None else stride
    if not 1 <= size <= MAX_POOL or not 1 <= stride <= MAX_POOL:
        raise KernelError(
            f"pooling window size {size} / stride {stride}: use whole numbers from 1 to {MAX_POOL}"
        )
    a = np.asarray(x, dtype=np.float32)
    h, w = a.shape[:2]
    if min(h, w) < size:
        raise ShapeError(
            f"the {size}x{size} pooling window does not fit the {h}x{w} map it pools; "
            "use a smaller pool size, a smaller stride or a padding border before it"
        )
    oh, ow = output_size(h, size, stride, 0), output_size(w, size, stride, 0)
    out = a[0 : (oh - 1) * stride + 1 : stride, 0 : (ow - 1) * stride + 1 : stride].copy()
    for i in range(size):
        for j in range(size):
            if i == j == 0:
                continue
            v = a[i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride]
            if kind == "max":
                np.maximum(out, v, out=out)
            else:
                np.add(out, v, out=out)
    if kind == "avg":
        out *= np.float32(1.0 / (size * size))
    return out


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
        check_border(self.border)
        check_stride(self.stride)
        if self.color not in ("gray", "rgb"):
            raise KernelError(f"colour {self.color!r}: use gray or rgb")
        if self.pool not in POOLS:
            raise KernelError(f"pooling {self.pool!r}: use one of {', '.join(POOLS)}")
        if self.pool != "none":
            for what, n in (("size", self.pool_size), ("stride", self.pool_stride)):
                if not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_POOL:
                    raise KernelError(
                        f"pooling window {what} {n!r}: use a whole number from 1 to {MAX_POOL}"
                    )
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
            oh, ow = (fitted_output_size(n, k.size, self.stride, p) for n in (height, width))
            if self.pool != "none":
                for n in (oh, ow):
                    if n < self.pool_size:
                        raise ShapeError(
                            f"the {self.pool_size}x{self.pool_size} pooling window does not "
                            f"fit the {oh}x{ow} convolution output; use a smaller pooling "
                            "window, or a padding border and stride 1 before it"
                        )

    def placement(self, step: int = 1) -> tuple[float, float]:
        """``(scale, offset)`` of result pixels over input pixels (:func:`geometry.placement`);
        ``step``: a preview of every step-th result pixel."""
        pooled = self.pool != "none"
        return placement(
            self.kernels[0].size,
            self.border,
            self.stride,
            pool_size=self.pool_size if pooled else 0,
            pool_stride=self.pool_stride if pooled else 0,
            step=step,
        )

    def output_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(N, H', W', C)`` of the maps for an image of ``height`` x ``width`` (after every
        stage), without computing anything; raises like :meth:`check_fits`."""
        self.check_fits(height, width)
        f = self.kernels[0].size
        p = padding_for(self.border, f)
        oh, ow = (fitted_output_size(n, f, self.stride, p) for n in (height, width))
        if self.pool != "none":
            oh = output_size(oh, self.pool_size, self.pool_stride, 0)
            ow = output_size(ow, self.pool_size, self.pool_stride, 0)
        return len(self.kernels), oh, ow, 3 if self.color == "rgb" else 1


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
    """Write ``result.raw()`` to ``path`` (.npy) atomically; :class:`FilterSaveError` names
    ``path`` when it cannot be written."""
    return save_raw_stream(path, result.raw().shape, [result.raw()])


class FilterSaveError(EngineError, OSError):
    """A result or kernel file cannot be written where the user asked (the message names it)."""


def save_raw_stream(
    path: str | os.PathLike[str], shape: tuple[int, ...], parts: Iterable[np.ndarray]
) -> Path:
    """Write a float32 ``.npy`` of ``shape`` from ``parts`` (C-order pieces, e.g. one map per
    kernel) without holding them all: the memory of one part. Atomic; on failure
    (:class:`FilterSaveError` naming ``path``) nothing is left at ``path``."""
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
        "fortran_order": False,
        "shape": tuple(shape),
    }

    def write(f) -> None:
        np.lib.format.write_array_header_1_0(f, header)
        written = 0
        for part in parts:
            data = np.ascontiguousarray(part, dtype=np.float32)
            f.write(data.data)  # the array's own bytes: no copy of a map
            written += data.size
            del part, data  # before the next part is made
        if written != math.prod(shape):
            raise ShapeError(f"raw values: wrote {written} values for shape {shape}")

    try:
        return atomic_write(path, write)
    except OSError as exc:
        raise FilterSaveError(
            f"{os.fspath(path)}: cannot be written ({exc.strerror or type(exc).__name__})"
        ) from None


def prepare_source(image: np.ndarray, color: str) -> np.ndarray:
    """The image the kernels run on: gray ``(H, W)`` uint8 or RGB ``(H, W, 3)``.

    An RGBA image's transparent parts are white paper, as the Filters tab opens a file
    (:func:`engine.imageio.load_image` with ``mode="RGB"``): the colour stored under them is
    not what anyone sees, so ``convscope convolve`` must not filter it."""
    a = np.asarray(image)
    if color == "gray":
        return to_gray(a, alpha="white")
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:
        return convert_array(a, "RGB")
    return a[:, :, :3]


def iter_filter(
    image: np.ndarray,
    settings: FilterSettings,
    *,
    cancel: Cancellable | None = None,
    parallel: bool = True,
    rows_per_step: int = 256,
) -> Iterator[Progress | FilterResult]:
    """Run the pipeline, yielding :class:`~engine.progress.Progress` (stage ``"filter"``, output
    rows of all kernels) every ``rows_per_step`` output rows and finally a
    :class:`FilterResult`. When ``cancel.cancelled`` turns true between steps the generator
    returns without a result. For 12 MP photos off the GUI thread."""
    src = prepare_source(image, settings.color)
    img = src if src.ndim == 3 else src[:, :, None]
    stack = _stack(img.shape, settings)
    h = img.shape[0]
    total = sum(
        fitted_output_size(h, k.size, settings.stride, padding_for(settings.border, k.size))
        for k in settings.kernels
    )
    done = 0
    maps: list[np.ndarray] = []
    conv_shape: tuple[int, ...] = ()
    for n, k in enumerate(settings.kernels):
        job = Correlator(
            img,
            k.weights(),
            settings.border,
            settings.stride,
            k.offset,
            out=None if stack is None else stack[n],
            max_band=rows_per_step,
        )
        step = max(1, rows_per_step // job.band) if rows_per_step else len(job.bands)
        for i in range(0, len(job.bands), step):
            if cancel is not None and cancel.cancelled:
                return
            chunk = job.bands[i : i + step]
            job.run(chunk, parallel)
            done += chunk[-1][1] - chunk[0][0]
            if done < total:
                yield Progress("filter", done, total)
        conv_shape = job.out.shape
        # ReLU and pooling now: a pooled kernel's convolution goes before the next is made
        maps.append(_after_conv(job.out, settings))
        del job
    yield _finish(src, img.shape, conv_shape, maps, settings, stack)


def _after_conv(conv: np.ndarray, settings: FilterSettings) -> np.ndarray:
    """One kernel's map after ReLU (in place) and pooling (a new, smaller array)."""
    if settings.relu:
        np.maximum(conv, np.float32(0), out=conv)
    if settings.pool != "none":
        return pool(conv, settings.pool, settings.pool_size, settings.pool_stride)
    return conv


def _stack(shape: tuple[int, ...], settings: FilterSettings) -> np.ndarray | None:
    """The ``(N, H', W', C)`` result each kernel's convolution writes its map into, so the
    maps are never stacked by a copy (twice the result's memory at the end: 1.7 GB for 3
    RGB kernels on a 24 MP photo); None for one kernel, or when pooling makes the result."""
    if settings.pool != "none" or len(settings.kernels) == 1:
        return None
    h, w, c = shape
    sizes = {
        (
            fitted_output_size(h, k.size, settings.stride, padding_for(settings.border, k.size)),
            fitted_output_size(w, k.size, settings.stride, padding_for(settings.border, k.size)),
        )
        for k in settings.kernels
    }
    if len(sizes) > 1:
        return None
    return np.empty((len(settings.kernels), *sizes.pop(), c), np.float32)


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
        job = Correlator(img, k.weights(), settings.border, settings.stride * step, k.offset)
        job.run(job.bands, parallel)
        maps.append(job.out)
    out = np.stack(maps)
    if settings.relu:
        np.maximum(out, np.float32(0), out=out)
    return out


def iter_maps(
    image: np.ndarray,
    settings: FilterSettings,
    *,
    cancel: Cancellable | None = None,
    parallel: bool = True,
) -> Iterator[np.ndarray]:
    """Each kernel's final map (convolution, ReLU, pooling), float32 ``(H', W', C)``, one at a
    time: the memory of one map, not N (``convscope convolve`` on a big image). A caller that
    lets go of each map before asking for the next never holds two."""
    src = prepare_source(image, settings.color)
    img = src if src.ndim == 3 else src[:, :, None]
    for k in settings.kernels:
        if cancel is not None and cancel.cancelled:
            return
        job = Correlator(img, k.weights(), settings.border, settings.stride, k.offset)
        job.run(job.bands, parallel)
        m = job.out
        del job  # it holds the map too
        if settings.relu:
            np.maximum(m, np.float32(0), out=m)
        if settings.pool != "none":
            m = pool(m, settings.pool, settings.pool_size, settings.pool_stride)
        yield m
        del m  # before the next map is made


def stages(image_shape: tuple[int, ...], settings: FilterSettings) -> list[tuple[str, tuple]]:
    """The stage names and shapes of :class:`FilterResult`, without computing anything."""
    h, w = image_shape[:2]
    c = 3 if settings.color == "rgb" else 1
    n = len(settings.kernels)
    depth = (n,) if n > 1 else ()
    f = settings.kernels[0].size
    p = padding_for(settings.border, f)
    conv = (
        fitted_output_size(h, f, settings.stride, p),
        fitted_output_size(w, f, settings.stride, p),
    )
    out: list[tuple[str, tuple]] = [("input", (h, w, c)), ("conv", (*depth, *conv, c))]
    if settings.relu:
        out.append(("ReLU", out[-1][1]))
    if settings.pool != "none":
        _, oh, ow, _ = settings.output_shape(h, w)
        out.append((f"{settings.pool} pool", (*depth, oh, ow, c)))
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
    src: np.ndarray,
    in_shape: tuple[int, ...],
    conv_shape: tuple[int, ...],
    maps: list[np.ndarray],
    settings: FilterSettings,
    stack: np.ndarray | None = None,
) -> FilterResult:
    """The result of the final ``maps`` (views of ``stack`` when it is given) of convolutions
    whose outputs had the shape ``conv_shape``."""
    stages: list[tuple[str, tuple[int, ...]]] = [("input", tuple(in_shape))]
    n = len(maps)
    depth = (n,) if n > 1 else ()
    stages.append(("conv", (*depth, *conv_shape)))
    if settings.relu:
        stages.append(("ReLU", stages[-1][1]))
    if settings.pool != "none":
        stages.append((f"{settings.pool} pool", (*depth, *maps[0].shape)))
    if stack is None:
        stack = np.stack(maps) if n > 1 else maps[0][None]
    return FilterResult(stack, stages, src, settings)

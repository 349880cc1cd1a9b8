"""Where a kernel goes: border modes, padding, stride, output sizes, and where results sit.

The output size is im2col's formula (:func:`engine.im2col.output_size`, one home for it, argument
order ``(size, kernel, stride, padding)``): ``W' = (W - F + 2P) // S + 1``. Here it is checked
(a kernel that does not fit is a :class:`~engine.errors.ShapeError` with advice) and filled in
for the tab's formula line. :func:`placement` says where result pixels sit over input pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import ShapeError, short_repr
from engine.filters.kernels import KernelError
from engine.im2col import output_size

BORDERS = ("zero", "extend", "reflect", "symmetric", "wrap", "valid")
NP_PAD: dict[str, Any] = {  # border -> np.pad mode
    "zero": "constant",
    "extend": "edge",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "wrap": "wrap",
}
MAX_STRIDE = 4

__all__ = [
    "BORDERS",
    "MAX_STRIDE",
    "NP_PAD",
    "check_border",
    "check_stride",
    "fitted_output_size",
    "index_map",
    "output_size",
    "padding_for",
    "placement",
    "size_formula",
]


def check_border(border: str) -> None:
    if border not in BORDERS:
        raise KernelError(f"border {border!r}: use one of {', '.join(BORDERS)}")


def check_stride(stride: int) -> None:
    if not isinstance(stride, (int, np.integer)) or not 1 <= stride <= MAX_STRIDE:
        raise KernelError(f"stride {short_repr(stride)}: use a whole number from 1 to {MAX_STRIDE}")


def padding_for(border: str, size: int) -> int:
    """Pixels added on each side: ``(F - 1) // 2`` for the padding modes, 0 for ``"valid"``."""
    check_border(border)
    return 0 if border == "valid" else (size - 1) // 2


def fitted_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """:func:`output_size`, or :class:`ShapeError` when the kernel does not fit (below 1)."""
    if size - kernel + 2 * padding < 0:
        raise ShapeError(
            f"a {kernel}x{kernel} kernel does not fit an image side of {size} px with padding "
            f"{padding}; use a smaller kernel or a padding border mode"
        )
    return output_size(size, kernel, stride, padding)


def size_formula(size: int, kernel: int, stride: int, padding: int) -> str:
    """The output-size formula filled in: ``"(1920 − 3 + 2·1)/1 + 1 = 1920"``."""
    out = fitted_output_size(size, kernel, stride, padding)
    exact = (size - kernel + 2 * padding) % stride == 0
    slash = "/" if exact else "//"
    return f"({size} − {kernel} + 2·{padding}){slash}{stride} + 1 = {out}"


def index_map(n: int, pad: int, border: str) -> np.ndarray:
    """Source index of every padded position (np.pad semantics); -1 where zero padding."""
    if pad == 0:
        return np.arange(n)
    if border == "zero":
        return np.pad(np.arange(n), pad, mode="constant", constant_values=-1)
    return np.pad(np.arange(n), pad, mode=NP_PAD[border])


def placement(
    kernel: int,
    border: str,
    stride: int,
    *,
    pool_size: int = 0,
    pool_stride: int = 0,
    step: int = 1,
) -> tuple[float, float]:
    """``(scale, offset)`` that put result pixel ``i`` over input pixels
    ``offset + scale * i .. + scale``: the centre of the window it comes from.

    ``pool_size``/``pool_stride`` (0: no pooling) account for a pooling stage; ``step`` for a
    preview that shows every ``step``-th result pixel.
    """
    s = stride * step
    offset = (kernel - 1) / 2 - padding_for(border, kernel) + 0.5 - s / 2
    scale = float(s)
    if pool_size:
        offset += (pool_size - pool_stride) * s / 2
        scale *= pool_stride
    return scale, offset

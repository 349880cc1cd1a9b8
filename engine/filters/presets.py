"""The preset kernels: the article's table (identity, edges, sharpen, blurs) and a few classics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.filters.kernels import KernelSpec

__all__ = ["PRESETS", "Preset"]


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

"""The step-through as a CNN stage runs it: convolution, then ReLU cell by cell, then the
pooling window sliding over the rectified map (the article's Figures 5, 8 and 10 in one
sequence).

Slow and obvious on purpose, like :mod:`.teaching`: an 8x8 crop at most. The animation only
draws what :class:`StepSequence` says for a position; the numbers all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError
from engine.filters.figures import PoolWindow, pool_windows
from engine.filters.pipeline import POOLS, FilterResult, FilterSettings
from engine.filters.teaching import FIGURE5_IMAGE, FIGURE5_KERNEL, ConvStep, ConvSteps, conv_steps
from engine.imageops import to_gray

__all__ = [
    "STAGES",
    "ReluStep",
    "StepSequence",
    "figure5_sequence",
    "step_sequence",
    "step_through",
]

#: The stages of a sequence, in order.
STAGES = ("conv", "relu", "pool")


@dataclass(frozen=True)
class ReluStep:
    """ReLU on feature-map cell ``(row, col)``: ``after = max(0, before)``."""

    row: int
    col: int
    before: float
    after: float

    @property
    def zeroed(self) -> bool:
        return self.before < 0


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class StepSequence:
    """Every step of the step-through, position 1 .. :attr:`total` (0 is before the first).

    ``conv``: the convolution steps and the feature map ``conv.output``; ``relu``: one step per
    feature-map cell in raster order (empty when ReLU is off); ``rectified``: the map after ReLU
    (the feature map itself when off); ``pool``: the pooling windows in raster order over the
    rectified map (empty when pooling is off or does not fit, ``note`` says why);
    ``pooled``: the pooled output (None without pooling); ``pool_kind``: max, avg, sum or none;
    ``pool_size`` and ``pool_stride``: the window's side and step.
    """

    conv: ConvSteps
    relu: list[ReluStep]
    rectified: np.ndarray
    pool: list[PoolWindow]
    pooled: np.ndarray | None
    pool_kind: str
    pool_size: int = 2
    pool_stride: int = 2
    note: str = ""

    @property
    def total(self) -> int:
        return len(self.conv.steps) + len(self.relu) + len(self.pool)

    def stages(self) -> list[str]:
        """The stages this sequence shows, a subset of :data:`STAGES` in order."""
        return [s for s in STAGES if self.stage_length(s)]

    def stage_length(self, stage: str) -> int:
        return {"conv": len(self.conv.steps), "relu": len(self.relu), "pool": len(self.pool)}[stage]

    def stage_start(self, stage: str) -> int:
        """The position just before ``stage``'s first step (0 for the convolution)."""
        start = 0
        for s in STAGES:
            if s == stage:
                return start
            start += self.stage_length(s)
        raise EngineError(f"stage {stage!r}: use one of {', '.join(STAGES)}")

    def at(self, pos: int) -> tuple[str, int]:
        """``(stage, i)``: position ``pos`` (1-based) is step ``i`` (0-based) of ``stage``;
        position 0 is ``("conv", -1)``; past the end is the last step."""
        pos = min(max(pos, 0), self.total)
        if pos == 0:
            return "conv", -1
        for s in STAGES:
            n = self.stage_length(s)
            if pos <= n:
                return s, pos - 1
            pos -= n
        raise AssertionError("unreachable: pos <= total")

    def conv_step(self, pos: int) -> ConvStep | None:
        stage, i = self.at(pos)
        return self.conv.steps[i] if stage == "conv" and i >= 0 else None


def step_sequence(
    matrix: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: int = 1,
    border: str = "valid",
    relu: bool = False,
    pool: str = "none",
    pool_size: int = 2,
    pool_stride: int = 2,
) -> StepSequence:
    """The whole step-through of a small 2-D ``matrix``: :func:`.conv_steps`, then ReLU on each
    feature-map cell when ``relu``, then every ``pool_size`` window moved by ``pool_stride``.

    A pooling window larger than the feature map leaves the pooling out, with a ``note``.
    """
    if pool not in POOLS:
        raise EngineError(f"pooling {pool!r}: use one of {', '.join(POOLS)}")
    conv = conv_steps(matrix, kernel, stride=stride, border=border)
    fmap = conv.output
    steps = []
    if relu:
        steps = [
            ReluStep(r, c, float(fmap[r, c]), max(float(fmap[r, c]), 0.0))
            for r in range(fmap.shape[0])
            for c in range(fmap.shape[1])
        ]
    rectified = np.maximum(fmap, 0.0) if relu else fmap.copy()
    windows: list[PoolWindow] = []
    pooled = None
    note = ""
    if pool != "none":
        if min(rectified.shape) < pool_size:
            h, w = rectified.shape
            note = f"the {pool_size}×{pool_size} pooling window does not fit the {h}×{w} map"
        else:
            windows, pooled = pool_windows(rectified, pool, pool_size, pool_stride)
    return StepSequence(conv, steps, rectified, windows, pooled, pool, pool_size, pool_stride, note)


def figure5_sequence(settings: FilterSettings | None = None) -> StepSequence:
    """The article's Figure 5 (5x5 image, 3x3 kernel, no padding, stride 1), followed by the
    ReLU and pooling of ``settings`` when they are on (none without ``settings``)."""
    if settings is None:
        return step_sequence(FIGURE5_IMAGE, FIGURE5_KERNEL)
    return step_sequence(
        FIGURE5_IMAGE,
        FIGURE5_KERNEL,
        relu=settings.relu,
        pool=settings.pool,
        pool_size=settings.pool_size,
        pool_stride=settings.pool_stride,
    )


def step_through(
    result: FilterResult, index: int, hover: tuple[int, int] | None, crop: int = 8
) -> StepSequence | None:
    """The step-through on a ``crop`` x ``crop`` gray crop of ``result``'s source, around the
    hovered result pixel (or the centre), with kernel ``index`` and ``result``'s border, stride,
    ReLU and pooling; None if it cannot."""
    settings = result.settings
    if settings is None:
        return None
    src = result.source
    h, w = src.shape[:2]
    if hover is not None and settings.pool == "none":
        cy, cx = hover[0] * settings.stride, hover[1] * settings.stride
    else:
        cy, cx = h // 2, w // 2
    y0 = int(np.clip(cy - crop // 2, 0, max(h - crop, 0)))
    x0 = int(np.clip(cx - crop // 2, 0, max(w - crop, 0)))
    patch = to_gray(src[y0 : y0 + crop, x0 : x0 + crop])
    spec = settings.kernels[min(index, len(settings.kernels) - 1)]
    try:
        return step_sequence(
            patch,
            spec.weights(),
            stride=settings.stride,
            border=settings.border,
            relu=settings.relu,
            pool=settings.pool,
            pool_size=settings.pool_size,
            pool_stride=settings.pool_stride,
        )
    except EngineError:
        return None

"""The article's small examples as images a user can open in the Filters tab: the 5x5 binary
image of Figures 5-6 with its 3x3 kernel, and the 4x4 feature map of Figure 10 with 2x2 max
pooling. One registry (:data:`FIGURE_SAMPLES`): the File menu, the tour and the tests read it.

Each sample is the image (the article's numbers as uint8 pixels), the kernel and the settings
that reproduce the figure, and the figure's result, which the tests check against the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError
from engine.filters.figures import FIGURE10_MAP
from engine.filters.kernels import KernelSpec
from engine.filters.pipeline import FilterSettings
from engine.filters.teaching import FIGURE5_IMAGE, FIGURE5_KERNEL

__all__ = ["FIGURE_SAMPLES", "FigureSample", "figure_sample", "sample_picture"]


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class FigureSample:
    """One of the article's examples: ``label`` (the menu text), ``name`` (the image's
    name, short), the ``image`` (uint8 (H, W),
    the article's numbers), the ``kernel``, the ``settings`` and the ``expected`` result (the
    figure's output matrix); ``about``: one sentence on what to look at."""

    key: str
    label: str
    name: str
    image: np.ndarray
    kernel: KernelSpec
    settings: FilterSettings
    expected: np.ndarray
    about: str


def _figure5() -> FigureSample:
    kernel = KernelSpec(FIGURE5_KERNEL, name="Figure 5 kernel")
    return FigureSample(
        "figure5",
        "Figures 5-6: convolution (5×5)",
        "Figures 5-6",
        FIGURE5_IMAGE.astype(np.uint8),
        kernel,
        FilterSettings((kernel,), border="valid"),
        np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]], dtype=np.float64),
        "the 3×3 kernel slides over the 5×5 image; hover a result cell to see its sum.",
    )


def _figure10() -> FigureSample:
    kernel = KernelSpec(np.ones((1, 1)), name="1×1 identity")
    return FigureSample(
        "figure10",
        "Figure 10: max pooling (4×4)",
        "Figure 10",
        FIGURE10_MAP.astype(np.uint8),
        kernel,
        FilterSettings((kernel,), border="valid", pool="max", pool_size=2, pool_stride=2),
        np.array([[6, 8], [3, 4]], dtype=np.float64),
        "2×2 max pooling, stride 2; hover a result cell to see its window and winner.",
    )


#: The samples by key, in menu order.
FIGURE_SAMPLES: dict[str, FigureSample] = {s.key: s for s in (_figure5(), _figure10())}


def figure_sample(key: str) -> FigureSample:
    """The sample named ``key`` (``figure5`` or ``figure10``)."""
    try:
        return FIGURE_SAMPLES[key]
    except KeyError:
        raise EngineError(
            f"figure sample {key!r}: use one of {', '.join(FIGURE_SAMPLES)}"
        ) from None


def sample_picture(values: np.ndarray) -> np.ndarray:
    """A small matrix of numbers as a uint8 RGB picture whose cells can carry their numbers:
    the smallest value mid-gray (70), the largest near white (235), so that 0..8 or 0/1 are told
    apart (as 0..255 pixels they would all look black)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 3:
        v = v.mean(axis=2)
    lo, hi = float(v.min()), float(v.max())
    t = (v - lo) / (hi - lo) if hi > lo else np.full(v.shape, 0.5)
    g = np.round(70 + 165 * t).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)

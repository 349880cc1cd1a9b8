"""The kernel editor's maths: presets, parsing, borders, stride, divisor/offset, display, pooling.

Everything the Filters tab and ``convscope convolve`` compute comes from this package, so the
window and the command line give the same numbers. Pure NumPy; no Qt. The modules, in the
order a reader meets them:

- :mod:`.kernels`: the number grammar, kernel text, :class:`KernelSpec`, separability;
- :mod:`.kernelfile`: saving and loading kernels (JSON, atomic, untrusted on read);
- :mod:`.presets`: the named kernels;
- :mod:`.geometry`: borders, padding, stride, output sizes, where result pixels sit;
- :mod:`.correlate`: the fast banded, threaded correlation;
- :mod:`.pipeline`: convolution -> ReLU -> pooling for 1..8 kernels, with progress and cancel;
- :mod:`.display`: float results -> pictures, the histogram, the mosaic;
- :mod:`.memory`: what a job needs and what is available (refusals with a message);
- :mod:`.teaching`: the pixel inspector and the Figure 5 step-through;
- :mod:`.figures`: the pooling window (Figures 10, 12), pixel values in cells (Figure 4) and
  the ReLU figure (Figure 8);
- :mod:`.stepping`: the step-through sequence: convolution, ReLU cell by cell, pooling;
- :mod:`.samples`: the article's small examples (Figures 5-6 and 10) as openable images.

Everything public is re-exported here: ``from engine.filters import KernelSpec`` keeps working.
"""

from __future__ import annotations

from engine.filters.correlate import correlate
from engine.filters.display import DISPLAYS, Mosaic, display, histogram, tile_maps
from engine.filters.figures import (
    FIGURE10_MAP,
    MIN_COLOUR_CELL,
    MIN_LABEL_CELL,
    CellLabel,
    PixelExplanation,
    PoolInspection,
    PoolWindow,
    ReluFigure,
    cell_labels,
    explain_pixel,
    inspect_pool,
    pool_windows,
    relu_curve,
    relu_figure,
)
from engine.filters.geometry import (
    BORDERS,
    MAX_STRIDE,
    fitted_output_size,
    output_size,
    padding_for,
    placement,
    size_formula,
)
from engine.filters.kernelfile import load_kernels, save_kernels
from engine.filters.kernels import (
    KERNEL_SIZES,
    MAX_KERNELS,
    KernelError,
    KernelSpec,
    cell_text,
    format_number,
    kernel_cells,
    kernel_to_text,
    parse_kernel,
    parse_number,
    resize_cells,
    separable_factors,
    split_centre,
)
from engine.filters.pipeline import (
    MAX_POOL,
    POOLS,
    FilterResult,
    FilterSaveError,
    FilterSettings,
    iter_filter,
    iter_maps,
    pool,
    prepare_source,
    relu,
    run_filter,
    save_raw,
    save_raw_stream,
    stages,
    subsampled_maps,
)
from engine.filters.presets import PRESETS, Preset
from engine.filters.samples import FIGURE_SAMPLES, FigureSample, figure_sample, sample_picture
from engine.filters.stepping import (
    STAGES,
    ReluStep,
    StepSequence,
    figure5_sequence,
    step_sequence,
    step_through,
)
from engine.filters.teaching import (
    FIGURE5_IMAGE,
    FIGURE5_KERNEL,
    ConvStep,
    ConvSteps,
    Inspection,
    conv_steps,
    inspect_pixel,
    inspect_result,
)
from engine.imageops import to_gray

__all__ = [
    "BORDERS",
    "DISPLAYS",
    "FIGURE5_IMAGE",
    "FIGURE5_KERNEL",
    "FIGURE10_MAP",
    "FIGURE_SAMPLES",
    "KERNEL_SIZES",
    "MAX_KERNELS",
    "MAX_POOL",
    "MAX_STRIDE",
    "MIN_COLOUR_CELL",
    "MIN_LABEL_CELL",
    "POOLS",
    "PRESETS",
    "STAGES",
    "CellLabel",
    "ConvStep",
    "ConvSteps",
    "FigureSample",
    "FilterResult",
    "FilterSaveError",
    "FilterSettings",
    "Inspection",
    "KernelError",
    "KernelSpec",
    "Mosaic",
    "PixelExplanation",
    "PoolInspection",
    "PoolWindow",
    "Preset",
    "ReluFigure",
    "ReluStep",
    "StepSequence",
    "cell_labels",
    "cell_text",
    "conv_steps",
    "correlate",
    "display",
    "explain_pixel",
    "figure5_sequence",
    "figure_sample",
    "fitted_output_size",
    "format_number",
    "histogram",
    "inspect_pixel",
    "inspect_pool",
    "inspect_result",
    "iter_filter",
    "iter_maps",
    "kernel_cells",
    "kernel_to_text",
    "load_kernels",
    "output_size",
    "padding_for",
    "parse_kernel",
    "parse_number",
    "placement",
    "pool",
    "pool_windows",
    "prepare_source",
    "relu",
    "relu_curve",
    "relu_figure",
    "resize_cells",
    "run_filter",
    "sample_picture",
    "save_kernels",
    "save_raw",
    "save_raw_stream",
    "separable_factors",
    "size_formula",
    "split_centre",
    "stages",
    "step_sequence",
    "step_through",
    "subsampled_maps",
    "tile_maps",
    "to_gray",
]

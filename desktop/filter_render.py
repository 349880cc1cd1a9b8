"""The Filters tab's render job: the engine pipeline, then the pictures, off the GUI thread.

:func:`render` is a plain generator run by :class:`desktop.workers.OneAtATime` (one job at a
time, the newest request wins: a job is cancelled between bands when a newer one arrives). It
yields :class:`~engine.progress.Progress`, a :class:`Preview` (every ``step``-th result
pixel, exact: a big photo's quick first picture, or the only picture when the full result
would not fit in memory) and finally a :class:`Rendered`. The GUI thread only shows them.
:func:`save` writes a result's picture or values, off the GUI thread too (a 24 MP PNG takes
seconds to compress).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from desktop.qt_image import array_to_qimage
from engine import filters as F
from engine.errors import EngineError
from engine.filters import memory
from engine.imageio import save_image
from engine.progress import Cancellable

#: above this many pixels a subsampled preview is shown before the full result
PREVIEW_PIXELS = 3_000_000
#: pixels of a preview: about a screenful, fast enough to type
SCREEN_PIXELS = 1_500_000
#: the most memory one full-resolution result of the tab may take (maps, pictures, mosaic)
MAX_RESULT_BYTES = 2_000_000_000


@dataclass(frozen=True, eq=False)
class RenderRequest:
    """What to compute: ``image`` (the gray or RGB source) from the tab's ``origin``."""

    origin: np.ndarray
    image: np.ndarray
    settings: F.FilterSettings
    display: str
    current: int
    token: int
    step: int = 1  # > 1: a subsampled preview first
    full: bool = True  # False: the full result would not fit; the preview is all


@dataclass(frozen=True)
class Rendered:
    """What the worker hands the GUI: the engine's result and its pictures."""

    result: F.FilterResult
    pictures: list[np.ndarray]
    mosaic: np.ndarray | None
    counts: np.ndarray
    edges: np.ndarray
    seconds: float
    token: int
    origin: object  # the tab's image this was computed from
    stats: tuple[float, float, float]  # min, max, mean of the current kernel's map
    current: int  # the kernel shown in the result view
    qimage: QImage | None  # its picture, made off the GUI thread (QImage is safe there)
    relu: F.ReluFigure | None = None  # Figure 8 of that kernel: before and after ReLU
    maps_qimage: QImage | None = None  # the Feature maps page's mosaic (one kernel: qimage)

    def shown(self) -> Rendered:
        """What the tab keeps once the views have their pictures: this without its QImages
        (the views hold their own copies; a 24 MP stack's QImages are hundreds of MB)."""
        return replace(self, qimage=None, maps_qimage=None)


@dataclass(frozen=True)
class Preview:
    """Every ``step``-th result pixel of the current kernel, exact."""

    qimage: QImage
    step: int
    token: int
    final: bool = False  # True: no full result follows (it would not fit in memory)


def ordinal(n: int) -> str:
    """``2nd``, ``3rd``, ``4th``, ``21st``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def plan(
    image_shape: tuple[int, ...],
    settings: F.FilterSettings,
    available: int | None = None,
    preview_pixels: int = PREVIEW_PIXELS,
) -> tuple[int, bool, str]:
    """``(step, full, message)`` for a job: the preview step (1: none), whether the full result
    fits in memory, and, when it does not, the message that says so."""
    h, w = image_shape[:2]
    pixels = h * w
    step = max(2, math.ceil(math.sqrt(pixels / SCREEN_PIXELS))) if pixels > preview_pixels else 1
    needed = memory.whole_result_bytes(h, w, settings)
    if available is None:
        available = memory.available_memory()
    budget = MAX_RESULT_BYTES if available is None else min(MAX_RESULT_BYTES, available // 2)
    if needed <= budget:
        return step, True, ""
    step = max(step, 2, math.ceil(math.sqrt(needed / max(budget, 1))))
    n = len(settings.kernels)
    message = (
        f"The full {w}×{h} result of {n} kernel{'s' if n > 1 else ''} would need about "
        f"{memory.format_bytes(needed)} of memory (the window may use "
        f"{memory.format_bytes(budget)}): "
    )
    if settings.pool != "none":
        return (
            step,
            False,
            message
            + (
                "turn pooling off to see a preview, use fewer kernels or a stride, "
                "or run convscope convolve, which makes one map at a time."
            ),
        )
    return (
        step,
        False,
        message
        + (
            f"showing every {ordinal(step)} pixel of the current kernel's map, exactly. Use fewer "
            "kernels or a stride for the full picture, or convscope convolve for the file."
        ),
    )


def render(request: RenderRequest, cancel: Cancellable) -> Iterator[object]:
    """The worker's job: the pipeline, then the display mapping, histogram and mosaic."""
    start = time.perf_counter()
    settings, current = request.settings, request.current
    if request.step > 1 and settings.pool == "none":
        spec = settings.kernels[min(current, len(settings.kernels) - 1)]
        one = F.FilterSettings(
            (spec,), settings.border, settings.stride, settings.color, settings.relu
        )
        quick = F.subsampled_maps(request.image, one, request.step)[0]
        if cancel.cancelled:
            return
        picture = F.display(quick, request.display)
        yield Preview(array_to_qimage(picture), request.step, request.token, not request.full)
    if not request.full:
        return
    result = None
    for event in F.iter_filter(request.image, settings, cancel=cancel):
        if isinstance(event, F.FilterResult):
            result = event
        else:
            yield event
    if result is None or cancel.cancelled:
        return
    pictures, mosaic = _pictures(result.maps, request.display)
    index = min(current, len(pictures) - 1)
    shown = result.maps[index]
    counts, edges = F.histogram(shown)
    stats = (float(shown.min()), float(shown.max()), float(shown.mean(dtype=np.float64)))
    relu = F.relu_figure(result.source, settings, index)
    if cancel.cancelled:
        return
    yield Rendered(
        result,
        pictures,
        mosaic,
        counts,
        edges,
        time.perf_counter() - start,
        request.token,
        request.origin,
        stats,
        index,
        array_to_qimage(pictures[index]),
        relu,
        None if mosaic is None else array_to_qimage(mosaic),
    )


def _pictures(maps: np.ndarray, mode: str) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The maps' pictures and, for several, their mosaic; each picture lives once, in its
    place in the mosaic (a view), not also beside it."""
    if len(maps) == 1:
        return [F.display(maps[0], mode)], None
    board = F.Mosaic(*maps.shape[:3])
    for i, m in enumerate(maps):
        board.place(i, F.display(m, mode))
    return [board.view(i) for i in range(len(maps))], board.canvas


@dataclass(frozen=True)
class Saved:
    """The end of a save: ``error`` is "" when ``path`` was written, else the one line to show."""

    path: Path
    error: str = ""


def result_file_path(name: str, raw: bool) -> Path:
    """The file a name typed in the save dialog means: as typed when it ends in a suffix the
    tab writes, else with ``.npy`` (``raw``: the float values) or ``.png`` added; a name with
    another suffix (``a.gif``) is kept, for the save to say which ones work."""
    path = Path(name).expanduser()
    if path.suffix:
        return path
    return path.with_name(path.name + (".npy" if raw else ".png"))


def save(rendered: Rendered, path: Path) -> Iterator[Saved]:
    """The save job: the float values (``.npy``) or the picture (PNG, JPEG, BMP, TIFF by the
    suffix; the maps side by side for a stack) of ``rendered``, written atomically; yields one
    :class:`Saved`."""
    try:
        if path.suffix.lower() == ".npy":
            F.save_raw(rendered.result, path)
        else:
            picture = rendered.mosaic if rendered.mosaic is not None else rendered.pictures[0]
            save_image(picture, path)
    except (EngineError, OSError) as exc:
        yield Saved(path, f"Could not save {path.name}: {exc}")
        return
    yield Saved(path)

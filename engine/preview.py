"""What the Train tab shows of a dataset before training: counts per class and a sample grid.

Computed off the GUI thread (a 300-class folder must not block the window), so it returns
plain arrays: the grid is one uint8 image, grey ``(H, W)`` or colour ``(H, W, 3)``, with one
column per class (the first ``max_classes``) and ``per_class`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.visualize import class_counts, sample_indices

PAD = 1  # pixels between grid cells
PAD_VALUE = 40


@dataclass(frozen=True)
class DatasetPreview:
    counts: np.ndarray  # int64 (K,) training images per class
    samples: np.ndarray  # int64 (shown classes, per_class) training indices, -1 where missing
    grid: np.ndarray  # uint8 (H, W) or (H, W, 3)
    cell: tuple[int, int]  # (h, w) of one image in the grid
    shown_classes: int  # columns of the grid (at most max_classes)


def display_image(image: np.ndarray) -> np.ndarray:
    """One dataset image as it is shown: ``(H, W)`` grey, ``(C, H, W)`` -> ``(H, W)`` for one
    channel, ``(H, W, 3)`` for three, the channel mean for any other count."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.shape[0] == 3:
        return np.ascontiguousarray(image.transpose(1, 2, 0))
    if image.shape[0] == 1:
        return image[0]
    return image.mean(axis=0).round().astype(np.uint8)


def dataset_preview(
    images: np.ndarray, labels: np.ndarray, num_classes: int, per_class: int, max_classes: int
) -> DatasetPreview:
    """Counts of all K classes; a grid of the first ``per_class`` images of the first
    ``max_classes`` classes (column = class, row = sample; empty cells stay dark)."""
    counts = class_counts(labels, num_classes)
    shown = min(num_classes, max_classes)
    samples = sample_indices(labels, num_classes, per_class)[:shown]
    h, w = images.shape[-2:]
    colour = images.ndim == 4 and images.shape[1] == 3
    shape = (per_class * (h + PAD) - PAD, shown * (w + PAD) - PAD) + ((3,) if colour else ())
    grid = np.full(shape, PAD_VALUE, dtype=np.uint8)
    for col in range(shown):
        for row in range(per_class):
            index = samples[col, row]
            if index >= 0:
                y, x = row * (h + PAD), col * (w + PAD)
                grid[y : y + h, x : x + w] = display_image(images[index])
    return DatasetPreview(counts, samples, grid, (int(h), int(w)), shown)

"""The :class:`Dataset` every loader returns, and the limits every loader enforces.

Kept apart from :mod:`engine.datasets` (the entry point) so that the loaders of each format
(:mod:`engine.idx`, :mod:`engine.imagefolder`, :mod:`engine.cifar`) can build one without an
import cycle.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np

#: Most classes a dataset may have (ImageNet has 1,000): more is a damaged or hostile label file.
MAX_CLASSES = 1000
#: Largest image side (pixels) a dataset file may declare, and most pixels per image.
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 1 << 22
#: Most bytes one dataset array may take once decompressed (1 GiB; EMNIST ByClass takes 550 MB).
MAX_ARRAY_BYTES = 1 << 30
#: Longest class name (characters) read from a class file.
MAX_CLASS_NAME = 100
#: Longest class name a model file keeps (characters).
MAX_MODEL_CLASS_NAME = 200


def unsavable_class_name(name: str) -> bool:
    """``name`` cannot be a class of a model file: longer than :data:`MAX_MODEL_CLASS_NAME` or
    holding a control character (a new line, a tab). The model file's own check and the class
    folders' (refused before a training whose model nothing could open)."""
    return len(name) > MAX_MODEL_CLASS_NAME or any(unicodedata.category(ch) == "Cc" for ch in name)


@dataclass
class Dataset:
    """A labelled image dataset, split into training and test parts.

    ``train_images``/``test_images``: ``uint8 (N, H, W)`` or ``(N, C, H, W)``;
    ``train_labels``/``test_labels``: ``int64 (N,)`` with values in ``0..len(classes)-1``.
    ``test_split`` says in words where the test images come from ("the t10k files", "the test/
    folder", "20% of each class held out (seed 0)", "every image in the folder").
    ``test_files``: for image folders, the path of each test image relative to ``source``.
    ``resized_from``: the size of the files of an IDX or CIFAR dataset brought to a network's
    input size (:mod:`engine.dataset_size`), or the most common size of the files of an image
    folder read at another size (:mod:`engine.imagefolder`), else None; ``other_sizes``: how
    many other sizes the folder's files have (mixed sizes are normal in a folder of photos).
    :meth:`resized_text` says it in words.
    """

    name: str
    classes: list[str]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    test_split: str = "the test split"
    test_files: list[str] | None = None
    resized_from: tuple[int, int] | None = None  # (H, W) of its files, when resized to a network
    other_sizes: int = 0  # sizes of its files besides resized_from (an image folder)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, as an ``InputSpec.shape``."""
        shape = self.train_images.shape[1:]
        return (1, *shape) if len(shape) == 2 else tuple(shape)  # type: ignore[return-value]

    def summary(self) -> str:
        c, h, w = self.input_shape
        colour = "gray" if c == 1 else ("colour" if c == 3 else f"{c} channels")
        text = (
            f"{self.name}: {len(self.train_labels):,} training images and "
            f"{len(self.test_labels):,} test images ({self.test_split}), {h}x{w} {colour}, "
            f"{self.num_classes} classes"
        )
        if self.skipped:
            text += f" ({len(self.skipped)} unreadable files skipped)"
        return text

    def resized_text(self) -> str | None:
        """How the images came to the network's size, or None when they came as they are:
        "32x32 images resized to 28x28"; an image folder of several sizes "images of 48x48
        and 3 other sizes, read at 32x32" (its most common size first). What ``convscope train``
        and ``evaluate`` print (:meth:`resized_line`) and the Train tab's dataset line show."""
        if self.resized_from is None:
            return None
        (h, w), (_, to_h, to_w) = self.resized_from, self.input_shape
        if not self.other_sizes:
            return f"{h}x{w} images resized to {to_h}x{to_w}"
        others = f"{self.other_sizes} other size{'s' if self.other_sizes > 1 else ''}"
        return f"images of {h}x{w} and {others}, read at {to_h}x{to_w}"

    def resized_line(self, network: str) -> str | None:
        """ "CIFAR-10 32x32 images resized to 28x28 for lenet5", or None when not resized."""
        text = self.resized_text()
        return None if text is None else f"{self.name} {text} for {network}"

    def skipped_lines(self, first: int = 5) -> list[str]:
        """One line per skipped unreadable file (the first ``first``), then how many more:
        what ``convscope train`` and the exported PyTorch file's ``train`` print."""
        from pathlib import Path

        from engine.inference import without_name  # the reason may start with the file's name

        lines = [
            f"skipped {file}: {without_name(reason, Path(file))}"
            for file, reason in self.skipped[:first]
        ]
        if len(self.skipped) > first:
            lines.append(f"... and {len(self.skipped) - first} more unreadable files skipped")
        return lines

    def test_summary(self) -> str:
        """One line for an evaluation: which split, how many images."""
        return f"{self.name}, {self.test_split}: {len(self.test_labels):,} images"

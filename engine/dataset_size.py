"""A dataset at the image size a network takes: THE rule for every kind of dataset.

:func:`engine.datasets.load_dataset_iter` takes ``image_size``, the (H, W) the chosen network
takes (the CLI's ``train``/``evaluate``/``features``, the Train tab and the exported PyTorch
file's ``train`` all pass it). Image folders are decoded at that size
(:mod:`engine.imagefolder`); the datasets whose files fix the size (IDX files: MNIST,
Fashion-MNIST; CIFAR-10 binary batches) are brought to it here, after their colour is set:

* images of that size are taken as they are;
* handwritten digits (ten classes "0".."9", grey) that fit are kept and padded, centred, by
  ``InputSpec.to_tensor`` (the article's 28x28 digit in LeNet's 32x32 input): what
  ``convscope classify`` does with a digit model's picture (:mod:`engine.preprocess`);
* any other image is prepared as ``convscope classify`` prepares a photo for that network
  (:func:`engine.photo.prepare_photos`: the centred crop of the input's aspect, Pillow's
  bicubic), so a CIFAR-10 32x32 photo becomes LeNet-5's 28x28 and training sees the pixels a
  classified photo shows the network. The dataset remembers its own size in ``resized_from``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from engine.dataset_types import Dataset
from engine.photo import prepare_photos
from engine.progress import Progress

__all__ = [
    "DIGIT_CLASSES",
    "ImageSize",
    "is_digit_data",
    "iter_fitted",
    "keeps_size",
    "read_again",
    "size_for",
]

DIGIT_CLASSES = [str(k) for k in range(10)]
_CHUNK = 2048  # images between two progress events / cancellation checks

#: (H, W), or one (H, W) per channel count ({1: (28, 28), 3: (32, 32)}: a network whose input
#: size follows the data's colour, as the family members do)
ImageSize = tuple[int, int] | Mapping[int, tuple[int, int]]


def size_for(size: ImageSize | None, channels: int) -> tuple[int, int] | None:
    """The (H, W) of ``size`` for images of ``channels`` channels (None: their own size)."""
    if isinstance(size, Mapping):
        found = size.get(int(channels))
        return None if found is None else (int(found[0]), int(found[1]))
    return None if size is None else (int(size[0]), int(size[1]))


def is_digit_data(classes: Sequence[Any], channels: int) -> bool:
    """Ten classes named "0".."9" and one channel: handwritten digits (what
    ``inference.is_digit_model`` asks of a model)."""
    return [str(c) for c in classes] == DIGIT_CLASSES and int(channels) == 1


def keeps_size(dataset: Dataset, size: tuple[int, int] | None) -> bool:
    """Whether ``dataset``'s images go to a network taking ``size`` (H, W) as they are: no size
    asked, the same size, or digits that fit (padded by the network's input)."""
    if size is None:
        return True
    c, h, w = dataset.input_shape
    if (h, w) == tuple(size):
        return True
    return is_digit_data(dataset.classes, c) and h <= size[0] and w <= size[1]


def iter_fitted(
    dataset: Dataset, size: tuple[int, int] | None, control: Any = None
) -> Iterator[Progress | Dataset]:
    """``Progress("resize", done, total)`` events, then ``dataset`` at ``size`` (itself when
    :func:`keeps_size`); nothing more once ``control.cancelled`` turns true."""
    if keeps_size(dataset, size):
        yield dataset
        return
    assert size is not None
    parts = [dataset.train_images, dataset.test_images]
    total, done = sum(len(p) for p in parts), 0
    out = []
    for images in parts:
        fitted = np.empty((len(images), *images.shape[1:-2], *size), np.uint8)
        for start in range(0, len(images), _CHUNK):
            if control is not None and getattr(control, "cancelled", False):
                return
            stop = min(start + _CHUNK, len(images))
            fitted[start:stop] = prepare_photos(images[start:stop], size)
            done += stop - start
            yield Progress("resize", done, total)
        out.append(fitted)
    yield replace(
        dataset,
        train_images=out[0],
        test_images=out[1],
        resized_from=dataset.resized_from or dataset.input_shape[1:],
    )


def read_again(dataset: Dataset, loaded_at: ImageSize | None, wanted: ImageSize | None) -> bool:
    """Whether ``dataset``, loaded with ``image_size=loaded_at``, must be loaded again for a
    network that takes ``wanted`` (the Train tab's choice of another network): an image folder
    or a resized dataset is read again from its files at the new size (never resized twice).
    Sizes given per channel count are taken for the dataset's colour."""
    channels = dataset.input_shape[0]
    loaded_at, wanted = size_for(loaded_at, channels), size_for(wanted, channels)
    if wanted == loaded_at or tuple(dataset.input_shape[1:]) == wanted:
        return False
    if dataset.test_files is not None or dataset.resized_from is not None:
        return True  # an image folder, or images already resized: read them again
    return not keeps_size(dataset, wanted)

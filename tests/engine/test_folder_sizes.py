"""An image folder read at a size other than its photos' own says so, as IDX and CIFAR
datasets do: its most common size, and how many other sizes there are (mixed sizes are normal
in a folder of photos); ``Dataset.resized_line`` is what ``convscope train`` prints and
``resized_text`` what the Train tab shows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.datasets import load_dataset


def _folder(root, sizes: dict[str, list[tuple[int, int]]]):
    """Class folders of plain PNGs, one per (width, height) listed."""
    for cls, whs in sizes.items():
        (root / cls).mkdir(parents=True)
        for i, wh in enumerate(whs):
            Image.new("RGB", wh, (40 * i, 120, 200)).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("processes", [1, 2])
def test_a_folder_of_mixed_sizes_names_its_most_common_size_and_the_others(
    tmp_path, monkeypatch, processes
):
    import engine.imagefolder as imagefolder

    if processes == 2:  # the second process reads the sizes of its half too
        monkeypatch.setattr(imagefolder, "_PARALLEL_MIN", 4)
    root = _folder(
        tmp_path / "pets",
        {"cat": [(48, 48)] * 3 + [(40, 30)], "dog": [(48, 48)] * 2 + [(64, 64), (40, 30)]},
    )
    ds = load_dataset(root, image_size=(32, 32))
    assert ds.train_images.shape[1:] == (3, 32, 32)
    assert ds.resized_from == (48, 48) and ds.other_sizes == 2
    line = "pets images of 48x48 and 2 other sizes, read at 32x32 for resnet8"
    assert ds.resized_line("resnet8") == line
    assert load_dataset(root, image_size=(32, 32), classes="dog,cat").other_sizes == 2


def test_a_folder_of_one_size_says_resized_as_a_cifar_folder_does_and_nothing_at_its_size(
    tmp_path,
):
    root = _folder(tmp_path / "pets", {"cat": [(40, 40)] * 2, "dog": [(40, 40)] * 2})
    ds = load_dataset(root, image_size=(28, 28))
    assert ds.resized_line("lenet5") == "pets 40x40 images resized to 28x28 for lenet5"
    assert load_dataset(root, image_size=(40, 40)).resized_line("custom") is None
    assert load_dataset(root).resized_text() is None  # its own size: read as it is
    mostly = _folder(tmp_path / "mostly", {"cat": [(32, 32)] * 3, "dog": [(32, 32), (48, 48)]})
    text = load_dataset(mostly, image_size=(32, 32)).resized_text()
    assert text == "images of 32x32 and 1 other size, read at 32x32"


def test_a_large_photo_counts_at_its_own_upright_size_not_the_drafts(tmp_path):
    # A JPEG over 64 KiB is decoded at a reduced scale (its draft, 1/2 to 1/8): the size said
    # is the file's, turned as its EXIF orientation shows it.
    noise = np.random.default_rng(0).integers(0, 256, (800, 1000, 3), dtype=np.uint8)
    photo = Image.fromarray(noise)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown 800 wide and 1000 tall
    for cls in ("cat", "dog"):
        (tmp_path / "big" / cls).mkdir(parents=True)
        photo.save(tmp_path / "big" / cls / "plain.jpg", quality=95)
    photo.save(tmp_path / "big" / "dog" / "turned.jpg", quality=95, exif=exif)
    assert (tmp_path / "big" / "dog" / "turned.jpg").stat().st_size > 1 << 16
    ds = load_dataset(tmp_path / "big", image_size=(32, 32))
    assert ds.resized_from == (800, 1000) and ds.other_sizes == 1
    assert ds.resized_text() == "images of 800x1000 and 1 other size, read at 32x32"

"""Fixed-size datasets (CIFAR-10 binary batches, IDX files) at the size a network takes: resized
exactly as ``convscope classify`` prepares a photo and as an image folder is read; digits that
fit stay as they are (the network pads them)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine import dataset_size
from engine.dataset_size import read_again
from engine.datasets import load_dataset, load_dataset_iter
from engine.imagefolder import fit_image
from engine.inputspec import InputSpec
from engine.photo import prepare_photo
from engine.progress import CancelFlag, Progress
from tests.engine.test_datasets import make_idx_folder
from tests.engine.test_datasets_photos import make_cifar_folder


@pytest.fixture
def cifar(tmp_path):
    """A CIFAR-10 binary folder of 20 training and 20 test records; record 0 of the first batch
    is a smooth picture: red on the left half, blue on the right, a white square in the middle."""
    make_cifar_folder(tmp_path / "c10", np.random.default_rng(1), batches=2)
    batch = tmp_path / "c10" / "cifar-10-batches-bin" / "data_batch_1.bin"
    records = np.frombuffer(batch.read_bytes(), np.uint8).reshape(-1, 3073).copy()
    picture = np.zeros((3, 32, 32), np.uint8)
    picture[0, :, :16] = 200
    picture[2, :, 16:] = 180
    picture[:, 12:20, 12:20] = 255
    records[0, 1:] = picture.ravel()
    batch.write_bytes(records.tobytes())
    return tmp_path / "c10"


def test_cifar_batches_are_resized_to_lenet5s_28x28_as_classify_prepares_a_photo(cifar):
    own = load_dataset(cifar)
    ds = load_dataset(cifar, image_size=(28, 28))
    assert ds.train_images.shape == (20, 3, 28, 28) and ds.test_images.shape == (20, 3, 28, 28)
    assert ds.resized_from == (32, 32) and own.resized_from is None
    assert ds.resized_line("lenet5") == (
        "CIFAR-10 (2 of 5 training batches) 32x32 images resized to 28x28 for lenet5"
    )
    np.testing.assert_array_equal(ds.train_labels, own.train_labels)
    for i in (0, 7):  # what `convscope classify` gives the network, and an image folder's pixels
        picture = own.train_images[i].transpose(1, 2, 0)
        np.testing.assert_array_equal(ds.train_images[i], prepare_photo(picture, (3, 28, 28)))
        np.testing.assert_array_equal(ds.train_images[i], fit_image(picture, (28, 28), 3))
    np.testing.assert_array_equal(
        ds.test_images[5], prepare_photo(own.test_images[5].transpose(1, 2, 0), (3, 28, 28))
    )
    first = ds.train_images[0].astype(int)  # the picture, smaller: still red | blue, white middle
    assert first[0, 10:18, :5].min() > 190 and first[2, 10:18, :5].max() < 10
    assert first[2, 10:18, -5:].min() > 170 and first[0, 10:18, -5:].max() < 10
    assert first[:, 13, 13:15].min() > 240
    InputSpec((3, 28, 28)).to_tensor(ds.train_images)  # the network takes them


def test_cifar_in_grey_is_converted_then_resized_as_a_grey_photo(cifar):
    own = load_dataset(cifar)
    grey = load_dataset(cifar, image_size=(28, 28), channels=1, classes="cat,dog", limit=3)
    assert grey.train_images.shape == (3, 28, 28) and grey.resized_from == (32, 32)
    cats = own.train_images[own.train_labels == 3]
    np.testing.assert_array_equal(
        grey.train_images[0], prepare_photo(cats[0].transpose(1, 2, 0), (1, 28, 28))[0]
    )


def test_idx_images_larger_than_the_network_are_resized(tmp_path):
    x_tr, *_ = make_idx_folder(tmp_path / "big", np.random.default_rng(2), size=(32, 32), k=10)
    ds = load_dataset(tmp_path / "big", image_size=(28, 28))
    assert ds.train_images.shape == (30, 28, 28) and ds.resized_from == (32, 32)
    np.testing.assert_array_equal(ds.train_images[4], prepare_photo(x_tr[4], (1, 28, 28))[0])
    # another aspect: the centred crop, as classify and image folders do (nothing stretched)
    wide = load_dataset(tmp_path / "big", image_size=(16, 28))
    np.testing.assert_array_equal(wide.train_images[4], prepare_photo(x_tr[4], (1, 16, 28))[0])
    np.testing.assert_array_equal(wide.train_images[4], fit_image(x_tr[4], (16, 28), 1))


def test_digits_that_fit_are_padded_by_the_network_other_small_images_are_resized(tmp_path):
    rng = np.random.default_rng(3)
    make_idx_folder(tmp_path / "digits", rng, size=(28, 28), k=10)
    digits = load_dataset(tmp_path / "digits", image_size=(32, 32))  # the article's LeNet
    assert digits.train_images.shape == (30, 28, 28) and digits.resized_from is None
    x_tr, *_ = make_idx_folder(tmp_path / "fashion-mnist", rng, size=(28, 28), k=10)
    fashion = load_dataset(tmp_path / "fashion-mnist", image_size=(32, 32))
    assert fashion.classes[0] == "T-shirt/top"  # not digits: filled, as classify fills a photo
    assert fashion.train_images.shape == (30, 32, 32) and fashion.resized_from == (28, 28)
    np.testing.assert_array_equal(fashion.train_images[1], prepare_photo(x_tr[1], (1, 32, 32))[0])
    in_colour = load_dataset(tmp_path / "digits", image_size=(32, 32), channels=3)
    assert in_colour.train_images.shape == (30, 3, 32, 32)  # a colour digit model is a photo one
    same = load_dataset(tmp_path / "digits", image_size=(28, 28))
    assert same.resized_from is None and same.train_images.base is not None  # no copy made


def test_resizing_reports_progress_and_stops_when_cancelled(cifar, monkeypatch):
    monkeypatch.setattr(dataset_size, "_CHUNK", 8)
    events = list(load_dataset_iter(cifar, image_size=(28, 28)))
    steps = [(e.done, e.total) for e in events if isinstance(e, Progress)]
    assert all(isinstance(e, Progress) and e.stage == "resize" for e in events[:-1])
    assert steps == [(8, 40), (16, 40), (20, 40), (28, 40), (36, 40), (40, 40)]
    control = CancelFlag()
    seen = []
    for item in load_dataset_iter(cifar, image_size=(28, 28), control=control):
        seen.append(item)
        control.cancel()
    assert len(seen) == 1 and isinstance(seen[0], Progress)  # no dataset after the cancel


def test_read_again_when_another_network_wants_another_size(cifar, tmp_path):
    own = load_dataset(cifar)
    small = load_dataset(cifar, image_size=(28, 28))
    assert read_again(own, None, (28, 28))  # lenet5 chosen: read at 28x28
    assert read_again(small, (28, 28), None)  # resnet8: back to the files' own size
    assert read_again(small, (28, 28), (32, 32))  # lenet-article: from the files, not upscaled
    assert not read_again(small, (28, 28), (28, 28)) and not read_again(own, None, (32, 32))
    make_idx_folder(tmp_path / "digits", np.random.default_rng(4), size=(28, 28), k=10)
    digits = load_dataset(tmp_path / "digits", image_size=(28, 28))
    assert not read_again(digits, (28, 28), (32, 32))  # padded by lenet-article as they are
    assert not read_again(digits, (28, 28), None)


def test_sizes_given_per_colour_are_taken_for_the_datasets_colour(cifar):
    from engine.architectures import image_sizes

    resnet8, lenet5 = image_sizes("resnet8"), image_sizes("lenet5")
    assert resnet8 == {1: (28, 28), 3: (32, 32)} and lenet5 == {1: (28, 28), 3: (28, 28)}
    assert image_sizes("conv 8 3, relu", 3) == {3: (32, 32)}  # the text form: the default
    own = load_dataset(cifar)  # colour, 32x32
    assert not read_again(own, None, resnet8)  # the colour size is the files' own
    assert read_again(own, resnet8, lenet5)  # lenet5 chosen: 28x28
    small = load_dataset(cifar, image_size=lenet5)
    assert small.input_shape == (3, 28, 28) and read_again(small, lenet5, resnet8)
    assert not read_again(small, lenet5, {1: (28, 28), 3: (28, 28)})


def test_prepare_photos_refuses_what_is_not_a_batch_of_images():
    from engine.errors import ShapeError
    from engine.photo import prepare_photos

    with pytest.raises(ShapeError, match="expected uint8 images"):
        prepare_photos(np.zeros((2, 4, 8, 8), np.uint8), (4, 4))
    with pytest.raises(ShapeError, match="expected uint8 images"):
        prepare_photos(np.zeros((2, 8, 8), np.float32), (4, 4))
    one = np.asarray(Image.new("RGB", (8, 6), (10, 20, 30))).transpose(2, 0, 1)[None]
    assert prepare_photos(one, (3, 3)).shape == (1, 3, 3, 3)


def test_one_size_per_colour_is_chosen_once_the_colour_is_known(cifar, tmp_path):
    sizes = {1: (28, 28), 3: (32, 32)}  # resnet8's input for grey and for colour images
    colour = load_dataset(cifar, image_size=sizes)
    assert colour.train_images.shape[1:] == (3, 32, 32) and colour.resized_from is None
    grey = load_dataset(cifar, image_size=sizes, channels=1)
    assert grey.train_images.shape[1:] == (28, 28) and grey.resized_from == (32, 32)
    folder = tmp_path / "photos"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 30), (40 * i, 90, 200)).save(folder / name / f"{i}.png")
    assert load_dataset(folder, image_size=sizes).train_images.shape[1:] == (3, 32, 32)
    assert load_dataset(folder, image_size={1: (20, 20)}).train_images.shape[1:] == (3, 30, 40)
    from engine.errors import DatasetError

    with pytest.raises(DatasetError, match="1 and/or 3 channels"):
        load_dataset(cifar, image_size={2: (28, 28)})
    with pytest.raises(DatasetError, match="1 to 1024 pixels"):
        load_dataset(cifar, image_size={3: (0, 28)})


def test_the_downloads_in_the_cache_are_resized_too(tmp_path):
    from engine.download import dataset_cache_dir

    make_cifar_folder(dataset_cache_dir("cifar10", tmp_path), np.random.default_rng(6))
    cifar10 = load_dataset("cifar10", cache_dir=tmp_path, image_size=(28, 28))
    assert cifar10.name == "CIFAR-10" and cifar10.train_images.shape == (50, 3, 28, 28)
    assert cifar10.resized_line("lenet5") == "CIFAR-10 32x32 images resized to 28x28 for lenet5"
    make_idx_folder(dataset_cache_dir("fashion-mnist", tmp_path), np.random.default_rng(7))
    fashion = load_dataset("fashion-mnist", cache_dir=tmp_path, image_size=(32, 32))
    assert fashion.name == "Fashion-MNIST" and fashion.train_images.shape == (30, 32, 32)
    assert load_dataset("mnist", image_size=(32, 32), limit=5).train_images.shape == (5, 28, 28)

"""The campaign's other families, kept: seeded images, kernel text and files, the campaign's
IDX cases (seeded IDX, CIFAR and class-file fuzzing is in test_dataset_files.py).

Each input is either accepted (with a sane result) or refused with the engine's error for it
(ImageLoadError, KernelError, DatasetError: one line), never another exception, and the CLI
answers with exit 0 or 2 and no traceback. Bounded: a few seconds in all.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from desktop.cli import main
from engine.datasets import load_dataset, read_idx
from engine.errors import DatasetError, EngineError, ImageLoadError
from engine.filters.kernelfile import load_kernels
from engine.filters.kernels import KERNEL_SIZES, KernelError, parse_kernel, parse_number
from engine.imageio import load_image
from engine.model import lenet5
from hostile.idx import hostile_idx_files, idx_bytes, idx_folder
from hostile.images import EXTREME_SHAPES, random_image_files
from hostile.kernels import KNOWN_BAD_CELLS, hostile_kernel_files, random_kernel_texts

FLOAT32_MAX = float(np.finfo(np.float32).max)
DATASET_LEVEL = ("zero_pixels", "too_many_dims")


def _one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, text


# -- images -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return random_image_files(tmp_path_factory.mktemp("images"), seed=5, count=32)


def test_seeded_images_load_or_raise_image_load_error(images):
    loaded = 0
    for path in images:
        try:
            a = load_image(path)
        except ImageLoadError as exc:
            _one_line(exc)
        else:
            assert a.dtype == np.uint8 and a.ndim in (2, 3) and a.size > 0
            loaded += 1
    assert loaded > len(images) // 2


def test_seeded_images_are_read_and_classified_without_raising(images):
    from engine.inference import classify_files
    from engine.reading import read_digits

    model = lenet5(np.random.default_rng(0))
    for result in classify_files(model, images):
        assert result.error or 0.0 <= result.confidence <= 1.0
    for path in images:
        try:
            image = load_image(path, mode="L")
        except ImageLoadError:
            continue
        try:
            read_digits(model, image)
        except EngineError as exc:
            _one_line(exc)


@pytest.mark.parametrize("width, height", EXTREME_SHAPES)
def test_cli_read_and_classify_answer_extreme_shapes(width, height, tmp_path, capsys):
    from PIL import Image

    path = tmp_path / f"strip_{width}x{height}.png"
    Image.new("L", (width, height), 255).save(path)
    for command in (["read", "shipped"], ["classify", "shipped"]):
        status = main([*command, str(path)])
        err = capsys.readouterr().err
        assert status in (0, 2) and "Traceback" not in err, err


# -- kernels ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", KNOWN_BAD_CELLS)
def test_known_bad_cells_are_refused_in_one_line(cell):
    with pytest.raises(KernelError) as err:
        parse_number(cell)
    _one_line(err.value)


def test_seeded_kernel_texts_parse_or_raise_kernel_error():
    accepted = 0
    for text in random_kernel_texts(seed=3, count=400):
        try:
            k = parse_kernel(text)
        except KernelError as exc:
            _one_line(exc)
        else:
            accepted += 1
            assert k.shape[0] == k.shape[1] and k.shape[0] in KERNEL_SIZES
            assert np.isfinite(k).all() and np.abs(k).max(initial=0) <= FLOAT32_MAX
    assert 20 < accepted < 400


def test_hostile_kernel_files_are_refused_in_one_line(tmp_path):
    for name, path in hostile_kernel_files(tmp_path).items():
        with pytest.raises(KernelError) as err:
            load_kernels(path)
        _one_line(err.value)
        assert str(path) in str(err.value) or path.name in str(err.value), name


def test_cli_convolve_answers_hostile_kernels_in_one_line(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "in.png"
    Image.new("L", (16, 16), 128).save(image)
    out = tmp_path / "out.png"
    texts = [*random_kernel_texts(seed=4, count=12), "1/1e-320", "1e38 1e38 1e38; 1 1 1; 1 1 1"]
    for text in texts:
        status = main(["convolve", str(image), f"--kernel={text}", "--out", str(out)])
        err = capsys.readouterr().err
        assert status in (0, 2) and "Traceback" not in err and err.count("\n") <= 1, err
    for path in hostile_kernel_files(tmp_path / "k").values():
        status = main(["convolve", str(image), "--kernel-file", str(path), "--out", str(out)])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err


# -- IDX --------------------------------------------------------------------------------------


def test_hostile_idx_files_are_refused_without_inflating(tmp_path):
    for name, path in hostile_idx_files(tmp_path).items():
        if name.startswith("_") or name in DATASET_LEVEL:
            continue  # valid IDX arrays a dataset refuses
        tracemalloc.start()
        try:
            with pytest.raises(DatasetError) as err:
                read_idx(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        _one_line(err.value)
        assert peak < 100e6, f"{name}: {peak / 1e6:.0f} MB"


@pytest.mark.parametrize(
    "case",
    [
        "gzip_bomb",
        "huge_header_gz",
        "header_only",
        *DATASET_LEVEL,
        "labels_100M_classes",
        "labels_int32_negative",
    ],
)
def test_hostile_idx_datasets_are_refused_before_training(case, tmp_path):
    files = hostile_idx_files(tmp_path / "files")
    labels = files["_labels"].read_bytes()
    if case.startswith("labels"):
        values = [0, 1, 2, 10**8] if case == "labels_100M_classes" else [0, 1, -5, 2]
        images = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
        labels = idx_bytes(np.array(values, dtype=">i4"))
    else:
        images = files[case].read_bytes()
    folder = idx_folder(tmp_path / "set", images, labels, gz=images[:2] == b"\x1f\x8b")
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as err:
            load_dataset(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _one_line(err.value)
    assert peak < 100e6, f"{case}: {peak / 1e6:.0f} MB"

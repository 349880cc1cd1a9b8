"""engine.inference: the digit-or-photo policy, folder listing, classifying files with reasons."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.inference import (
    FileResult,
    classify_files,
    classify_files_steps,
    classify_image,
    classify_inputs,
    expand_paths,
    image_files_in,
    most_probable,
    preparation_for,
    prepare_input,
)
from engine.model import build_model, lenet5
from engine.occlusion import occlusion_map
from engine.photo import prepare_photo
from engine.progress import Progress

PHOTO_CLASSES = ["bird", "cat", "dog", "ship"]


@pytest.fixture(scope="module")
def photo_model():
    """An untrained four-class colour model (seeded): the plumbing does not need good weights."""
    return build_model(
        {"name": "lenet-article", "in_channels": 3},
        np.random.default_rng(0),
        classes=PHOTO_CLASSES,
    )


@pytest.fixture(scope="module")
def digit_model():
    return lenet5(np.random.default_rng(0))


def _photo(path, colour=(200, 120, 40), size=(64, 48)):
    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).ellipse((10, 8, 40, 40), fill=(30, 60, 200))
    img.save(path)
    return path


def _digit(path):
    img = Image.new("L", (120, 100), 255)
    ImageDraw.Draw(img).line([(40, 20), (80, 20), (55, 85)], fill=0, width=8)
    img.save(path)
    return path


def test_the_policy_digit_models_and_everything_else(digit_model, photo_model):
    assert preparation_for(digit_model) == "digit"
    assert preparation_for(photo_model) == "photo"
    grey_animals = build_model("lenet5", np.random.default_rng(0), classes=list("abc"))
    assert preparation_for(grey_animals) == "photo"  # not the ten digits
    colour_digits = build_model(
        {"name": "lenet-article", "in_channels": 3},
        np.random.default_rng(0),
        classes=list("0123456789"),
    )
    assert preparation_for(colour_digits) == "photo"  # digits in colour photos (house numbers)


def test_a_photo_is_prepared_in_colour_and_classified_like_the_batch(tmp_path, photo_model):
    image = np.asarray(Image.open(_photo(tmp_path / "a.png")))
    prepared = prepare_input(photo_model, image)
    assert prepared.kind == "photo" and prepared.network.shape == (3, 32, 32)
    assert prepared.display.shape == (32, 32, 3)
    np.testing.assert_array_equal(prepared.network, prepare_photo(image, photo_model.input_spec))
    one = classify_image(photo_model, image)
    assert one.classes == PHOTO_CLASSES and one.probabilities.shape == (4,)
    assert one.prediction == PHOTO_CLASSES[int(np.argmax(one.probabilities))]
    batch = classify_inputs(photo_model, [prepared.network, prepared.network])
    np.testing.assert_allclose(batch[0], one.probabilities, atol=1e-6)
    assert one.activations[0][0] == "input"


def test_files_keep_their_order_and_failures_say_why(tmp_path, photo_model):
    good = _photo(tmp_path / "good.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    steps = list(classify_files_steps(photo_model, [good, empty, tmp_path / "missing.png", text]))
    assert [s.done for s in steps[:-1]] == [1, 2, 3, 4]
    assert all(isinstance(s, Progress) and s.stage == "prepare" for s in steps[:-1])
    results = steps[-1]
    assert [r.file for r in results] == [
        str(good),
        str(empty),
        str(tmp_path / "missing.png"),
        str(text),
    ]
    assert results[0].error == "" and results[0].prediction in PHOTO_CLASSES
    assert sum(results[0].probabilities) == pytest.approx(1.0, abs=1e-5)
    assert "empty" in results[1].error and results[1].prediction == ""
    assert "no such file" in results[2].error
    assert "not a readable image" in results[3].error and "text.jpg" not in results[3].error
    assert np.isnan(results[3].confidence)


def test_digit_files_get_digit_preparation_and_blank_ones_a_reason(tmp_path, digit_model):
    seven = _digit(tmp_path / "seven.png")
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(blank)
    a, b = classify_files(digit_model, [seven, blank])
    assert a.error == "" and a.inverted is True and a.bbox is not None
    assert "no ink found" in b.error
    (forced,) = classify_files(digit_model, [blank], kind="photo")  # a forced photo preparation
    assert forced.error == "" and forced.inverted is None


def test_one_folder_rule_dot_files_and_non_images_are_skipped(tmp_path):
    for name in ("b.png", "a.JPG", ".hidden.png", "._a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder named like an image
    assert [p.name for p in image_files_in(tmp_path)] == ["a.JPG", "b.png"]
    empty = tmp_path / "nothing"
    empty.mkdir()
    files, problems = expand_paths([tmp_path / "b.png", empty, tmp_path, tmp_path / "gone.png"])
    assert [p.name for p in files] == ["b.png", "a.JPG", "b.png", "gone.png"]
    assert problems == [(str(empty), "the folder holds no image files")]
    (empty / ".git").mkdir()  # a hidden folder is no folder to name
    assert expand_paths([empty])[1] == [(str(empty), "the folder holds no image files")]
    too_long = "x" * 400 + ".png"
    files, problems = expand_paths([too_long])  # left for reading to report
    assert files == [tmp_path.__class__(too_long)] and problems == []
    (result,) = classify_files(lenet5(np.random.default_rng(0)), files)
    assert "too long" in result.error.lower()


def test_occlusion_of_a_photo_covers_with_the_mean_colour(photo_model):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    result = occlusion_map(photo_model, image, patch=8, stride=8)
    spec = photo_model.input_spec
    expected = int(np.clip(np.rint(spec.mean / spec.scale), 0, 255))
    assert result.fill == (expected,) * 3
    assert result.heat.shape == (32, 32) and result.drop.shape == (4, 4)
    # the reference: each covered copy through the network, one by one
    covered = image.copy()
    covered[:, 8:16, 16:24] = expected
    probs = classify_inputs(photo_model, [image, covered])
    assert result.drop[1, 2] == pytest.approx(
        probs[0, result.target] - probs[1, result.target], abs=1e-5
    )


def test_file_result_defaults_are_an_unclassified_file():
    r = FileResult("x.png", error="why")
    assert r.prediction == "" and np.isnan(r.confidence) and r.probabilities == ()


@pytest.mark.parametrize("kind", ["RGB.jpg", "RGBA.png", "P.gif", "L.png"])
def test_the_app_prepares_a_photo_file_exactly_as_the_cli(tmp_path, photo_model, kind):
    from engine.inference import prepare_file, view_steps

    mode, suffix = kind.split(".")
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (90, 130, 4), dtype=np.uint8)
    img = Image.fromarray(pixels, "RGBA")
    img = img.convert("RGB").convert("P") if mode == "P" else img.convert(mode)
    path = tmp_path / f"x.{suffix}"
    img.save(path)
    cli = prepare_file(photo_model, path)  # what `convscope classify` sees
    quick, full = list(view_steps(path, photo_model, name=path.name))
    assert quick.image is None and quick.prepared is not None  # bars first, then the rest
    np.testing.assert_array_equal(full.prepared.network, cli.network)
    if suffix != "jpg":  # only a JPEG is decoded at reduced size for the first look
        np.testing.assert_array_equal(quick.prepared.network, cli.network)
    assert full.image.shape[:2] == (90, 130) and full.preview.shape[:2] == (90, 130)
    (digit_step,) = view_steps(path, lenet5(np.random.default_rng(0)), name=path.name)
    assert digit_step.image is not None  # one step for a digit model


def test_view_steps_never_raise_and_previews_are_small(tmp_path, photo_model):
    from engine.inference import view_steps

    (bad,) = view_steps(tmp_path / "missing.png", photo_model, name="missing.png")
    assert bad.image is None and bad.prepared is None and "no such file" in bad.error
    big = np.zeros((2100, 3000, 3), np.uint8)
    (step,) = view_steps(big, photo_model)
    assert step.preview.shape == (700, 1000, 3) and step.prepared.network.shape == (3, 32, 32)
    blank = np.full((50, 50), 255, np.uint8)
    (no_ink,) = view_steps(blank, lenet5(np.random.default_rng(0)), name="blank.png")
    assert no_ink.image is not None and no_ink.prepared is None and "no ink" in no_ink.error


def test_a_big_jpeg_is_decoded_small_for_the_network_and_sees_the_same(tmp_path, photo_model):
    from engine.imageio import load_image
    from engine.inference import open_photo, prepare_file
    from engine.photo import draft_size

    yy, xx = np.mgrid[0:1200, 0:1600]
    picture = np.stack([xx * 255 // 1600, yy * 255 // 1200, (xx // 40 % 2) * 200], axis=2)
    path = tmp_path / "big.jpg"
    Image.fromarray(picture.astype(np.uint8)).save(path, quality=95)
    spec = photo_model.input_spec
    assert draft_size(spec) == (96, 96)
    with Image.open(path) as img:
        img.draft("RGB", draft_size(spec))
        assert img.size == (200, 150)  # decoded at 1/8 scale, still 3x the input
    quick = prepare_photo(open_photo(path, photo_model), spec)  # the app's first look
    full = prepare_file(photo_model, path).network  # every pixel decoded, as the CLI does
    np.testing.assert_array_equal(full, prepare_photo(load_image(path), spec))
    assert np.abs(quick.astype(int) - full).mean() < 4


def test_per_channel_normalisation_gives_the_mean_colour_patch(photo_model):
    from engine.inputspec import InputSpec

    model = photo_model.clone()
    model.input_spec = InputSpec((3, 32, 32), mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))
    result = occlusion_map(model, np.zeros((3, 32, 32), np.uint8), patch=8, stride=8)
    assert result.fill == (125, 122, 115)  # mean / scale per channel, what normalises to 0
    assert classify_image(model, np.zeros((40, 50, 3), np.uint8)).probabilities.shape == (4,)


def test_a_digit_model_taking_less_than_28x28_gets_the_digit_resized(tmp_path):
    # the MNIST-style preparation makes 28x28; a digit model of 14x14 input was refused with
    # "images are 28x28 but the model takes 14x14; resize them first"
    from engine.archtext import to_spec
    from engine.preprocess import classify_images
    from engine.reading import read_digits

    spec = to_spec("conv 4 3, relu, flatten, dense 10", (1, 14, 14), 10)
    small = build_model(spec, np.random.default_rng(0), classes=[str(k) for k in range(10)])
    assert preparation_for(small) == "digit"
    picture = np.asarray(Image.open(_digit(tmp_path / "seven.png")))
    prepared = prepare_input(small, picture)
    assert prepared.network.shape == (14, 14) and prepared.display.shape == (28, 28)
    # the same picture as 28x28 shrunk: ink where the 28x28 digit has it
    assert prepared.network.max() > 100 and prepared.network[:2].max() < 60
    probs = classify_image(small, picture).probabilities
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-6
    assert classify_images(small, [prepared.display] * 3).shape == (3, 10)
    reading = read_digits(small, np.hstack([picture, picture]))
    assert len(reading.digits) == 2
    assert prepare_input(lenet5(np.random.default_rng(0)), picture).network.shape == (28, 28)


def test_most_probable_lists_the_likeliest_classes_first_ties_in_class_order():
    probs = np.array([0.1, 0.3, 0.05, 0.3, 0.25])
    assert most_probable(probs, 3) == [1, 3, 4]
    assert most_probable(probs, 9) == [1, 3, 4, 0, 2] and most_probable(probs, 0) == []


def test_a_folder_of_class_folders_says_to_name_them(tmp_path):
    """A dataset's folder (pets/cat, pets/dog, as `train --dataset` reads) given to classify:
    its subfolders are not searched, and the one line says which to give instead."""
    for name in ("dog", "cat", "bird"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "pets" / name / "a.png")
    files, problems = expand_paths([tmp_path / "pets"])
    pets = tmp_path / "pets"
    assert files == [] and problems == [
        (
            str(pets),
            "the folder holds no image files; its subfolders are not searched: name them, "
            f"e.g. {pets / 'bird'} {pets / 'cat'}",
        )
    ]

"""A model file of finite weights whose outputs are not numbers (a dense weight of 3e38 times a
pixel overflows float32): one clear line and no result, never "bird (nan%)" with exit 0, and no
NumPy RuntimeWarning on stderr. No Qt."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.archtext import to_spec
from engine.errors import ModelFileError
from engine.evaluation import evaluate
from engine.inference import classify_files, classify_image, classify_inputs
from engine.model import build_model
from engine.modelfile import save_model

TEXT = "conv 4 3, relu, batchnorm, flatten, dense {k}"
CLASSES = ["bird", "cat", "dog", "ship"]


def overflowing(shape=(3, 8, 8), classes=CLASSES):
    """A colour model whose logits overflow for a bright image but not for a black one: its
    convolution (all ones, no bias) gives negatives there, which the ReLU makes 0, and 0 times
    the 3e38 of the dense layer is 0."""
    model = build_model(to_spec(TEXT.format(k=len(classes)), shape, len(classes)), classes=classes)
    weights = model.parameters()
    weights["conv1.weight"][...] = 1.0
    weights["conv1.bias"][...] = 0.0
    weights["fc1.weight"][...] = 3e38
    return model


def _pictures(folder: Path) -> tuple[Path, Path]:
    black, bright = folder / "black.png", folder / "bright.png"
    Image.new("RGB", (8, 8), (0, 0, 0)).save(black)
    Image.new("RGB", (8, 8), (250, 240, 230)).save(bright)
    return black, bright


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's RuntimeWarnings included, in every thread
        yield


def test_each_image_whose_outputs_overflow_gets_its_own_error_the_others_a_result(tmp_path):
    black, bright = _pictures(tmp_path)
    results = classify_files(overflowing(), [bright, black])
    assert "not finite numbers for this image" in results[0].error
    assert results[0].prediction == "" and results[0].probabilities == ()
    assert results[1].error == "" and sum(results[1].probabilities) == pytest.approx(1.0)


def test_the_classify_tab_and_batch_inference_refuse_outputs_that_are_not_numbers():
    model = overflowing()
    bright = np.full((8, 8, 3), 240, np.uint8)
    with pytest.raises(ModelFileError, match="not finite numbers for this image") as one:
        classify_image(model, bright)  # what the Classify tab runs
    assert "\n" not in str(one.value)
    with pytest.raises(ModelFileError, match="1 of 2 images"):
        classify_inputs(model, np.stack([bright.transpose(2, 0, 1), np.zeros((3, 8, 8), np.uint8)]))
    assert classify_image(model, np.zeros((8, 8, 3), np.uint8)).probabilities.sum() == (
        pytest.approx(1.0)
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_evaluation_names_the_first_image_whose_outputs_overflow(threads):
    model = overflowing()
    model.threads = threads  # 2: a split batch, whose threads keep the caller's np.errstate
    images = np.zeros((32, 3, 8, 8), np.uint8)
    images[5:] = 240
    with pytest.raises(ModelFileError, match="image 6 of the 32 evaluated"):
        evaluate(model, images, np.zeros(32, np.int64), batch_size=32)


def _convscope(*argv) -> subprocess.CompletedProcess:
    """``convscope ARGV`` in a fresh interpreter: stderr as a user sees it (warnings too)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from desktop.cli import main; sys.exit(main())"]
        + [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_classify_and_evaluate_say_so_in_one_line_and_exit_2(tmp_path):
    model_file = save_model(overflowing((3, 32, 32)), tmp_path / "overflow.npz")
    _, bright = _pictures(tmp_path)
    done = _convscope("classify", "--json", model_file, bright)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"convscope classify: {bright}: the model's outputs are not finite")
    assert json.loads(done.stdout)[0]["prediction"] is None
    done = _convscope("evaluate", model_file, "--dataset", "cifar4", "--limit", "20")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("convscope evaluate: error: overflow.npz: the model's outputs are not")

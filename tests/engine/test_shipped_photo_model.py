"""The shipped photo model: the file behind the "photos" choice and `classify photos`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from engine.datasets import load_dataset
from engine.evaluation import evaluate
from engine.modelfile import load_model
from resources import photo_model_path

README = Path(__file__).resolve().parents[2] / "resources" / "models" / "README.md"


def test_the_photo_model_is_a_colour_four_class_model_with_its_evaluation():
    model = load_model(photo_model_path())
    assert model.classes == ["bird", "cat", "dog", "ship"]
    assert model.input_spec.shape == (3, 32, 32)
    ev = model.meta["evaluation"]
    assert ev["split"] == "test" and ev["count"] == 4000
    # the README quotes the held-out accuracy stored in the file
    quoted = re.search(r"held-out accuracy[^0-9]*([0-9.]+)%", README.read_text())
    assert quoted is not None
    assert abs(float(quoted.group(1)) - 100 * ev["accuracy"]) < 0.01


def test_the_photo_model_classifies_the_bundled_test_photos():
    # The bundled test photos (files 4750-4999 of each class) were never trained on.
    data = load_dataset("cifar4")
    model = load_model(photo_model_path())
    result = evaluate(model, data.test_images, data.test_labels)
    assert result.accuracy >= 0.83
    assert np.all(np.asarray(result.per_class) >= 0.70)

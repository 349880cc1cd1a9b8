"""The Train tab reading image folders a user made: damaged files among the images, a folder
that is not one. What the tab says must name the problem in the engine's words."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.desktop.test_train_tab import make_tab  # noqa: F401 (a fixture)


def _pets(root, rng):
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_a_folder_that_cannot_be_loaded_says_why_in_plain_words(qtbot, make_tab, tmp_path):  # noqa: F811
    tab = make_tab()
    setup = tab.setup
    not_a_folder = tmp_path / "notes.png"
    not_a_folder.write_text("not a dataset")
    with qtbot.waitSignal(setup.loading_finished, timeout=30_000):
        setup.set_source(not_a_folder, None)
    text = setup.dataset_label.text()
    assert f"Could not load: {not_a_folder}: is a file" in text
    assert "engine.errors" not in text and "DatasetError" not in text
    assert setup.dataset is None and not tab.start_button.isEnabled()

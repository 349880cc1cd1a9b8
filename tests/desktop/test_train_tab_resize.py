"""The Train tab with CIFAR-10 binary batches (32x32) and LeNet-5 (28x28): the batches are read
at the size the chosen network takes, as ``convscope train --arch lenet5`` reads them."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from engine.datasets import load_dataset
from tests.desktop.test_train_tab import RUN_TIMEOUT, make_tab  # noqa: F401 (a fixture)
from tests.engine.test_datasets_photos import make_cifar_folder


def test_lenet5_trains_on_cifar_batches_resized_to_28x28(qtbot, make_tab, tmp_path):  # noqa: F811
    make_cifar_folder(tmp_path / "c10", np.random.default_rng(0), batches=2)
    tab = make_tab()
    setup = tab.setup
    assert setup.arch_combo.currentText() == "lenet5"
    with qtbot.waitSignal(setup.dataset_loaded, timeout=30_000):
        setup.set_source(tmp_path / "c10", None)
    qtbot.waitUntil(lambda: not setup.is_loading() and setup.architecture_ok(), timeout=30_000)
    # was refused: "images are 32x32 but the model takes 28x28; resize them first"
    assert not setup.arch_error.text() and tab.start_button.isEnabled()
    assert setup.dataset.train_images.shape == (20, 3, 28, 28)
    assert "3×28×28 pixels" in setup.dataset_label.text()
    assert "32x32 images resized to 28x28 for the network" in setup.dataset_label.text()
    cli = load_dataset(tmp_path / "c10", image_size=(28, 28))  # what the CLI trains on
    np.testing.assert_array_equal(setup.dataset.train_images, cli.train_images)
    assert tab.live.sample.shape == (3, 28, 28)

    setup.arch_combo.setCurrentText("resnet8")  # any size: the batches' own 32x32, from the files
    qtbot.waitUntil(lambda: setup.dataset.train_images.shape[1:] == (3, 32, 32), timeout=30_000)
    qtbot.waitUntil(lambda: not setup.is_loading() and setup.architecture_ok(), timeout=30_000)
    assert "resized" not in setup.dataset_label.text() and tab.live.sample.shape == (3, 32, 32)

    setup.arch_combo.setCurrentText("lenet5")
    qtbot.waitUntil(lambda: setup.dataset.train_images.shape[1:] == (3, 28, 28), timeout=30_000)
    qtbot.waitUntil(lambda: not setup.is_loading() and setup.architecture_ok(), timeout=30_000)
    setup.epochs_spin.setValue(1)
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "finished"
    assert tab.model.input_spec.shape == (3, 28, 28)


def test_a_photo_folder_is_read_at_the_networks_size_as_the_cli_reads_it(
    qtbot,
    make_tab,  # noqa: F811
    tmp_path,
):
    # 48x48 photos with resnet8: the CLI reads them at its 32x32 for colour; the tab read them
    # at their own 48x48, so the same choice trained another network on other pixels. The
    # dataset line says so (one photo of another size too), every line of it in sight.
    from PIL import Image

    from engine.architectures import image_sizes

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (30 if i == 5 else 48, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pets" / name / f"{i}.png")
    tab = make_tab()
    setup = tab.setup
    setup.arch_combo.setCurrentText("resnet8")
    with qtbot.waitSignal(setup.dataset_loaded, timeout=30_000):
        setup.set_source(tmp_path / "pets", None)
    qtbot.waitUntil(lambda: not setup.is_loading() and setup.architecture_ok(), timeout=30_000)
    assert setup.dataset.input_shape == (3, 32, 32)
    label = setup.dataset_label
    assert "images of 48x48 and 1 other size, read at 32x32 for the network" in label.text()
    # every line in sight once laid out (it stayed cut after two lines)
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=5000)
    cli = load_dataset(tmp_path / "pets", image_size=image_sizes("resnet8"))
    np.testing.assert_array_equal(setup.dataset.train_images, cli.train_images)
    setup.arch_combo.setCurrentText("text")  # the text form reads colour at 32x32 too
    setup.arch_text.setText("conv 8 3, relu, maxpool 2")
    qtbot.waitUntil(lambda: not setup.is_loading() and setup.architecture_ok(), timeout=30_000)
    assert setup.dataset.input_shape == (3, 32, 32)
    assert setup.build(seed=0).input_spec.shape == (3, 32, 32)

"""The "What it learned" view: layer-by-layer grids computed in a worker, with Cancel."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

import resources
from desktop.widgets.feature_view import FeatureView
from engine import features
from engine.feature_cache import FeatureCache
from engine.idx import read_idx
from engine.modelfile import load_model


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """The per-user cache of these tests is a fresh folder, never the user's."""
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))


def _source():
    model = load_model(resources.shipped_model_path())
    folder = resources.shipped_model_path().parent.parent / "datasets" / "mnist"
    return model, read_idx(folder / "t10k-images-idx3-ubyte.gz")[:120]


def test_patches_layer_by_layer_then_from_the_cache(qtbot):
    view = FeatureView()
    qtbot.addWidget(view)
    view.resize(1024, 700)
    view.show()
    assert not view.show_button.isEnabled()
    model, images = _source()
    view.set_source(model, images, "MNIST")
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "conv2" in view.sections and not view.is_busy(), timeout=30000)
    assert list(view.sections) == ["conv1", "conv2"]
    shown = view.sections["conv1"].pixmap().toImage()
    expected = [e for e in features.top_patches(model, "conv1", images)][-1]
    grid = features.patch_grid(expected)
    assert (shown.height(), shown.width()) == grid.shape
    assert "excite it most" in view.status.text() and view.show_button.isEnabled()
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)  # cached: shown at once
    assert list(view.sections) == ["conv1", "conv2"] and not view.is_busy()


def test_synthesis_can_be_cancelled(qtbot):
    view = FeatureView()
    qtbot.addWidget(view)
    model, images = _source()
    view.set_source(model, images, "MNIST")
    view.method_box.setCurrentIndex(view.method_box.findData("synthesis"))
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    assert view.cancel_button.isEnabled()
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=30000)
    assert "Cancelled" in view.status.text()
    assert view.show_button.isEnabled() and not view.cancel_button.isEnabled()
    assert "fc3" not in view.sections


def _learned_on_mnist(qtbot, tab, model_path) -> FeatureView:
    """The Train tab ``tab`` on 300 MNIST digits with the model file ``model_path`` loaded:
    What it learned... clicked, its window returned."""
    tab.setup.set_source("mnist", 300)
    qtbot.waitUntil(lambda: tab.setup.dataset is not None, timeout=30000)
    with qtbot.waitSignal(tab.model_load_finished, timeout=30000):
        tab.load_model_file(model_path)
    qtbot.waitUntil(tab.learned_button.isEnabled, timeout=30000)
    qtbot.mouseClick(tab.learned_button, Qt.MouseButton.LeftButton)
    return tab.findChild(FeatureView, "featureView")


def test_the_train_tab_opens_it_on_its_model_and_test_images(qtbot):
    from desktop.app_state import AppState
    from desktop.train_tab import TrainTab

    tab = TrainTab(AppState())
    qtbot.addWidget(tab)
    tab.show()
    assert not tab.learned_button.isEnabled()  # no model yet
    view = _learned_on_mnist(qtbot, tab, resources.shipped_model_path())
    assert view is not None and view.isVisible()
    assert "2,000 images of MNIST" in view.status.text()
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "conv2" in view.sections and not view.is_busy(), timeout=30000)
    view.window().close()


def test_a_new_source_drops_the_running_job(qtbot):
    view = FeatureView()
    qtbot.addWidget(view)
    model, images = _source()
    view.set_source(model, images, "MNIST")
    view.method_box.setCurrentIndex(view.method_box.findData("synthesis"))
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    view.set_source(model, images[:50], "MNIST (50)")
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=30000)
    assert view.sections == {} and "50 images of MNIST (50)" in view.status.text()
    assert view.show_button.isEnabled() and not view.cancel_button.isEnabled()


def _shown(qtbot, view, model, images) -> None:
    view.set_source(model, images, "MNIST")
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "conv2" in view.sections and not view.is_busy(), timeout=30000)


def test_a_later_session_reads_the_saved_grids_and_survives_a_damaged_file(qtbot, tmp_path):
    model, images = _source()
    first = FeatureView()
    qtbot.addWidget(first)
    assert first.disk_cache.folder == tmp_path / "cache" / "features"  # the per-user cache
    _shown(qtbot, first, model, images)
    assert "saved results" not in first.status.text()
    computed = first.sections["conv2"].pixmap().toImage()
    later = FeatureView()  # a new window: nothing in memory
    qtbot.addWidget(later)
    _shown(qtbot, later, model, images)
    assert "(2 of 2 read from the saved results.)" in later.status.text()
    assert later.sections["conv2"].pixmap().toImage() == computed
    saved = sorted(later.disk_cache.folder.glob("*.npz"))
    saved[0].write_bytes(b"PK\x03\x04 damaged")
    damaged = FeatureView()
    qtbot.addWidget(damaged)
    _shown(qtbot, damaged, model, images)
    assert "(1 of 2 read from the saved results.)" in damaged.status.text()
    assert damaged.sections["conv2"].pixmap().toImage() == computed
    qtbot.mouseClick(damaged.clear_button, Qt.MouseButton.LeftButton)
    assert "Forgot 2 saved grids" in damaged.status.text()
    assert not list(damaged.disk_cache.folder.glob("*.npz"))


def test_a_given_cache_folder_is_used(qtbot, tmp_path):
    view = FeatureView(cache=FeatureCache(tmp_path / "mine"))
    qtbot.addWidget(view)
    model, images = _source()
    _shown(qtbot, view, model, images[:40])
    assert len(list((tmp_path / "mine").glob("*.npz"))) == 2


def test_a_resnet_shows_every_convolution_by_its_dotted_name(qtbot, tmp_path):
    import numpy as np

    from engine.model import build_model

    model = build_model(
        {"name": "resnet8", "num_classes": 4, "input_shape": [3, 16, 16]},
        np.random.default_rng(0),
        classes=["bird", "cat", "dog", "ship"],
    )
    images = np.random.default_rng(1).integers(0, 256, (30, 3, 16, 16), dtype=np.uint8)
    view = FeatureView()
    qtbot.addWidget(view)
    view.resize(1024, 700)
    view.show()
    view.set_source(model, images, "noise")
    convs = features.conv_nodes(model)
    assert "layer1.0.conv1" in convs and "layer3.0.downsample.0" in convs
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: convs[-1] in view.sections and not view.is_busy(), timeout=60000)
    assert list(view.sections) == convs
    shown = view.sections["layer2.0.conv1"].pixmap().toImage()
    expected = [e for e in features.top_patches(model, "layer2.0.conv1", images)][-1]
    assert (shown.height(), shown.width()) == features.patch_grid(expected).shape[:2]
    assert "excite it most" in view.status.text()
    # nine tall grids: each keeps its height and the area scrolls (none cut to fit the window)
    # (the layout settles on the event loop after the last grid arrives)
    qtbot.waitUntil(
        lambda: all(g.height() == g.pixmap().height() for g in view.sections.values()),
        timeout=5000,
    )


def test_a_network_without_convolutions_says_so_instead_of_explaining_empty_rows(qtbot):
    """A dense-only network ('flatten, dense 10') has no filter with patches: Show used to end
    on 'Each row is one filter...' above nothing."""
    from engine.archtext import to_spec
    from engine.model import build_model

    _, images = _source()
    dense = build_model(to_spec("flatten, dense 10", (1, 28, 28), 10))
    view = FeatureView()
    qtbot.addWidget(view)
    view.set_source(dense, images, "MNIST")
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=30000)
    assert view.sections == {} and "no convolution" in view.status.text()
    assert "Synthesised inputs" in view.status.text() and view.show_button.isEnabled()
    view.method_box.setCurrentIndex(view.method_box.findData("synthesis"))
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dense.output in view.sections and not view.is_busy(), timeout=30000)


def test_images_that_do_not_fit_the_model_say_what_to_choose(qtbot):
    """The Train tab with MNIST chosen and the colour photo model loaded offered MNIST's grey
    28x28 digits; Show ended in 'Could not compute: ... convert them (to RGB) first', which
    nothing in the window can do."""
    from desktop.app_state import AppState
    from desktop.train_tab import TrainTab

    tab = TrainTab(AppState())
    qtbot.addWidget(tab)
    tab.show()
    view = _learned_on_mnist(qtbot, tab, resources.photo_model_path())
    text = view.status.text()
    assert "MNIST" in text and "1×28×28" in text and "3×32×32" in text, text
    assert "convert" not in text and not view.show_button.isEnabled()
    view.window().close()


def test_other_images_under_the_same_name_are_computed_not_taken_from_memory(qtbot):
    """The grids kept in memory were keyed by the dataset's name: cifar4 with two of its classes
    chosen (the same name, other test images) showed the patches of all four."""
    model, images = _source()
    view = FeatureView()
    qtbot.addWidget(view)
    _shown(qtbot, view, model, images[:60])
    first = view.sections["conv1"].pixmap().toImage()
    _shown(qtbot, view, model, images[60:120])
    second = view.sections["conv1"].pixmap().toImage()
    grid = features.patch_grid(list(features.top_patches(model, "conv1", images[60:120]))[-1])
    shown = [[second.pixelColor(x, y).red() for x in range(second.width())]
             for y in range(second.height())]  # fmt: skip
    assert first != second and (np.array(shown) == grid).all()


def test_quitting_closes_the_window_and_stops_its_work(qtbot, tmp_path):
    """Closing the main window left 'What it learned' open and computing: the application
    quit with it on screen and waited for a synthesis nobody would see."""
    from PySide6.QtCore import QSettings

    from desktop.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    model, images = _source()
    view = window.train_tab.show_learned(model, images, "MNIST")
    view.method_box.setCurrentIndex(view.method_box.findData("synthesis"))
    view.start()
    assert view.is_busy()
    window.close()
    assert not window.isVisible() and not view.window().isVisible()
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=30000)
    assert "fc3" not in view.sections  # stopped, not run to the end
    qtbot.waitUntil(lambda: not window.filters_tab.is_computing(), timeout=30000)  # its preview

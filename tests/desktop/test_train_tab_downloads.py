"""The Train tab and the datasets downloaded by ``convscope download``: an entry offered only
once its files are in the cache, and found again when they arrive while the app is open."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from engine.download import REMOTE_DATASETS, dataset_cache_dir
from tests.desktop.test_train_tab import make_tab  # noqa: F401 (a fixture)
from tests.engine.test_download import _idx_gz


def _fake_download(rng: np.random.Generator) -> None:
    """What `convscope download fashion-mnist` leaves in the cache (small files)."""
    folder = dataset_cache_dir("fashion-mnist")
    folder.mkdir(parents=True)
    for split, n in (("train", 40), ("t10k", 10)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(_idx_gz(images))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(_idx_gz(np.arange(n) % 10))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f.name for f in REMOTE_DATASETS["fashion-mnist"].files
    )


def test_a_download_made_while_the_app_is_open_can_be_chosen(
    qtbot,
    make_tab,  # noqa: F811
    tmp_path,
    monkeypatch,
    rng,
):
    # the disabled entry's tooltip says "run 'convscope download fashion-mnist'"; a user who did
    # so in a terminal came back to an entry still disabled until the app was restarted
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path))
    tab = make_tab()
    setup = tab.setup
    combo = setup.source_combo
    row = combo.findData("fashion-mnist")
    item = combo.model().item(row)
    assert not item.isEnabled()
    assert "convscope download fashion-mnist" in combo.itemData(row, Qt.ItemDataRole.ToolTipRole)
    qtbot.waitUntil(lambda: not setup.is_loading(), timeout=30_000)  # MNIST, the first dataset

    _fake_download(rng)
    combo.showPopup()  # what a click on the box does
    assert item.isEnabled()
    tooltip = combo.itemData(row, Qt.ItemDataRole.ToolTipRole)
    assert tooltip == REMOTE_DATASETS["fashion-mnist"].description
    combo.hidePopup()
    combo.setCurrentIndex(row)
    with qtbot.waitSignal(setup.dataset_loaded, timeout=30_000):
        combo.activated.emit(row)
    qtbot.waitUntil(lambda: not setup.is_loading(), timeout=30_000)
    assert setup.dataset.name == "Fashion-MNIST"
    assert "Fashion-MNIST" in setup.dataset_label.text()

"""The Train tab reading image folders a user made: damaged files among the images, a folder
that is not one. What the tab says must name the problem in the engine's words."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from tests.desktop.test_train_tab import make_tab  # noqa: F401 (a fixture)


def _pets(root, rng):
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _load(qtbot, setup, root) -> None:
    """Load the folder ``root`` and wait for IT (the tab's first dataset, MNIST, may still be
    loading when the folder is set: its own dataset_loaded comes first)."""
    with qtbot.waitSignal(
        setup.dataset_loaded, timeout=30_000, check_params_cb=lambda d: d.source == str(root)
    ):
        setup.set_source(root, None)


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


def test_unreadable_files_in_a_folder_are_named_with_their_reasons(qtbot, make_tab, tmp_path):  # noqa: F811
    root = _pets(tmp_path / "pets", np.random.default_rng(0))
    (root / "cat" / "notes.png").write_text("not a picture")
    (root / "dog" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    tab = make_tab()
    setup = tab.setup
    _load(qtbot, setup, root)
    text = setup.dataset_label.text()
    assert "2 unreadable files skipped: cat/notes.png, dog/cut.png" in text
    tip = setup.dataset_label.toolTip()
    assert "skipped cat/notes.png: not a readable image" in tip
    assert "skipped dog/cut.png: " in tip
    assert len(setup.dataset.train_labels) + len(setup.dataset.test_labels) == 8

    many = _pets(tmp_path / "many", np.random.default_rng(1))
    for i in range(7):
        (many / "cat" / f"bad{i}.jpg").write_bytes(b"")
    _load(qtbot, setup, many)
    assert "7 unreadable files skipped: cat/bad0.jpg, cat/bad1.jpg, cat/bad2.jpg, …" in (
        setup.dataset_label.text()
    )
    assert "... and 2 more unreadable files skipped" in setup.dataset_label.toolTip()

    _load(qtbot, setup, _pets(tmp_path / "good", np.random.default_rng(2)))
    assert "skipped" not in setup.dataset_label.text() and not setup.dataset_label.toolTip()


def test_a_folder_named_like_markup_is_shown_by_its_name(qtbot, make_tab, tmp_path):  # noqa: F811
    from PySide6.QtGui import QTextDocument

    root = _pets(tmp_path / "cats <b> & dogs", np.random.default_rng(3))
    (root / "cat" / "<i>.png").write_text("not a picture")
    tab = make_tab()
    setup = tab.setup
    _load(qtbot, setup, root)
    shown = QTextDocument()
    shown.setHtml(setup.dataset_label.text())  # what the label shows
    assert shown.toPlainText().startswith("cats <b> & dogs: 6 training and 2 test images")
    assert "1 unreadable file skipped: cat/<i>.png" in shown.toPlainText()


def test_a_class_too_small_to_test_is_said_when_the_run_starts_and_stays(qtbot, make_tab, tmp_path):  # noqa: F811
    """One photo of a ship among cats and dogs: the run trained on it, held none out, and the
    tab said nothing (its row of the results just had no accuracy). The engine's note shows."""
    from PySide6.QtCore import Qt

    root = _pets(tmp_path / "pets", np.random.default_rng(4))
    (root / "ship <b>").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "ship <b>" / "0.png")
    tab = make_tab()
    _load(qtbot, tab.setup, root)
    tab.setup.choose_architecture("lenet-article")
    qtbot.waitUntil(lambda: tab.start_button.isEnabled(), timeout=30_000)
    tab.setup.epochs_spin.setValue(1)
    with qtbot.waitSignal(tab.training_finished, timeout=60_000):
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
        assert tab.message.isVisible()
    assert tab.message.isVisible()
    assert tab.message.textFormat() == Qt.TextFormat.PlainText  # a class name is no markup
    assert tab.message.text() == (
        "Too few images to measure every class: ship <b> (1 image) is never tested or "
        "validated; add images to that class."
    )


def test_the_status_bar_stops_saying_opening_once_a_model_is_loaded(qtbot, make_tab, tmp_path):  # noqa: F811
    """Load…: the status bar said 'Opening m.npz…' for seconds after the tab said it was
    loaded (or could not be)."""
    from resources import shipped_model_path

    tab = make_tab()
    posted: list[str] = []
    tab._state.status_posted.connect(posted.append)
    with qtbot.waitSignal(tab.model_load_finished, timeout=30_000):
        tab.load_model_file(shipped_model_path())
    name = shipped_model_path().name
    assert posted[0] == f"Opening {name}…" and posted[-1] == f"Loaded {name}"
    bad = tmp_path / "notes.npz"
    bad.write_text("not a model")
    with qtbot.waitSignal(tab.model_load_finished, timeout=30_000):
        tab.load_model_file(bad)
    assert posted[-1] == "Could not load notes.npz" and "Could not load notes.npz: " in (
        tab.message.text()
    )


def test_the_pinned_sample_names_a_users_class_as_a_class(qtbot, make_tab, tmp_path):  # noqa: F811
    """'Pinned sample: the first training image (a Cats)', '(a Oiseaux à la maison)': the
    article's 'a 5' read wrong with a user's folder names, and '<b>' in one was markup."""
    root = _pets(tmp_path / "pets", np.random.default_rng(5))
    (root / "cat").rename(root / "Oiseaux <b>")
    tab = make_tab()
    _load(qtbot, tab.setup, root)
    first = tab.setup.dataset.classes[int(tab.setup.dataset.train_labels[0])]
    caption = tab.live.sample_caption
    assert caption.textFormat() == Qt.TextFormat.PlainText
    assert caption.text() == f"Pinned sample: the first training image, of class {first}"
    tab.setup.sample_grid.cell_clicked.emit(0, 1)  # the preview's column of the second class
    assert caption.text() == "Pinned sample: an image of class Oiseaux <b> from the dataset preview"


def test_every_class_is_named_under_its_count_bar(qtbot, make_tab, tmp_path):  # noqa: F811
    """'Boats, Cats, dog friends' and no name under the fourth bar: pyqtgraph dropped the long
    last one, 'Oiseaux à la maison'. Each bar now has its name, cut to fit, and the tooltip
    gives them whole."""
    from PySide6.QtGui import QImage, QPainter

    root = _pets(tmp_path / "pets", np.random.default_rng(6))
    for name in ("Boats", "Oiseaux à la maison"):
        (root / name).mkdir()
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / name / "0.png")
        Image.fromarray(np.ones((32, 32, 3), np.uint8)).save(root / name / "1.png")
    tab = make_tab()
    _load(qtbot, tab.setup, root)
    axis = tab.setup.counts_plot.getPlotItem().getAxis("bottom")
    qtbot.waitUntil(lambda: axis.geometry().height() > 0)  # laid out with its labels
    image = QImage(400, 100, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        drawn = [spec[2] for spec in axis.generateDrawSpecs(painter)[2]]
    finally:
        painter.end()
    assert len(drawn) == 4 and drawn[:3] == ["Boats", "cat", "dog"]
    assert drawn[3].startswith("Oiseaux") and drawn[3].endswith("…")
    assert tab.setup.counts_plot.toolTip() == "Boats: 1, cat: 3, dog: 3, Oiseaux à la maison: 1"


def test_a_folder_or_model_dropped_on_the_train_tab_is_taken_there(qtbot, settings, tmp_path):
    """A user drags their photo folder onto the Train tab: the window jumped to the Filters tab
    with 'Could not open …/pets: is a folder, not an image file'. A folder becomes the dataset
    (as Source > Folder… does), a model file loads (as Load…); a photo still opens in Filters."""
    from desktop.main_window import MainWindow
    from resources import shipped_model_path
    from tests.desktop.test_filters_tab import drop_files

    root = _pets(tmp_path / "pets", np.random.default_rng(7))
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(
        tab.setup.dataset_loaded, timeout=30_000, check_params_cb=lambda d: d.source == str(root)
    ):
        drop_files(window, [root])
    assert window.current_tab() is tab
    assert tab.setup.source_combo.currentData() == "folder"
    with qtbot.waitSignal(tab.model_load_finished, timeout=30_000) as loaded:
        drop_files(window, [shipped_model_path()])
    assert loaded.args == [True] and window.current_tab() is tab
    qtbot.waitUntil(lambda: not tab.setup.is_loading(), timeout=30_000)
    drop_files(window, [root / "cat" / "0.png"])
    assert window.current_tab() is window.filters_tab
    qtbot.waitUntil(lambda: not window.filters_tab.is_computing(), timeout=30_000)

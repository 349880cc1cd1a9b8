"""The Classify tab with photo models, the model chooser, hostile files and a stressed GUI."""

from __future__ import annotations

import errno
import json
import os
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import QMimeData, QUrl

import resources
from desktop.app_state import AppState
from desktop.classify_tab import BACKGROUND_PIXELS, ClassifyTab
from engine.inference import classify_inputs
from engine.model import build_model
from engine.modelfile import load_model, save_model
from engine.photo import prepare_photo
from tests.desktop.test_classify_tab import _drop, _stroke

CLASSES = ["bird", "cat", "dog", "ship"]


@pytest.fixture(scope="module")
def photo_model():
    """An untrained, seeded four-class colour model: the tab's plumbing needs no good weights."""
    return build_model(
        {"name": "lenet-article", "in_channels": 3}, np.random.default_rng(0), classes=CLASSES
    )


@pytest.fixture
def tab(qtbot):
    widget = ClassifyTab(AppState())
    widget.resize(1200, 760)
    widget.show()
    yield widget
    qtbot.waitUntil(lambda: not widget.background_busy(), timeout=20000)
    widget.close()
    widget.deleteLater()


def _photo(path, size=(96, 64), seed=0):
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    ImageDraw.Draw(img).ellipse(
        (size[0] // 4, size[1] // 4, size[0] // 2, size[1] - 4), fill="navy"
    )
    img.save(path)
    return path


def _urls(*paths) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def test_a_photo_model_classifies_a_dropped_photo_in_colour(qtbot, tab, photo_model, tmp_path):
    tab._state.publish_model(photo_model, "my photo model")
    # only the options that fit: no canvas, no digit switches for a photo model
    assert not tab.draw_panel.isVisible() and not tab.invert_box.isVisible()
    assert not tab.center_box.isVisible() and not tab.mode_bar.isVisible()
    path = _photo(tmp_path / "boat.png")
    with qtbot.waitSignal(tab.occlusion_finished, timeout=10000):
        _drop(tab.drop_area, _urls(path))
    label = tab.prediction_label.text()
    assert re.fullmatch(r"(bird|cat|dog|ship) \d{1,3}\.\d%", label), label
    expected = classify_inputs(
        photo_model, [prepare_photo(np.asarray(Image.open(path)), photo_model.input_spec)]
    )[0]
    np.testing.assert_allclose(tab.chart.probabilities(), expected, atol=1e-5)
    assert tab.chart.highlighted_class() == CLASSES[int(np.argmax(expected))] == label.split()[0]
    seen = tab.preprocessed_view.array()
    assert seen.shape == (32, 32, 3)  # what the network sees, in colour
    assert np.abs(seen[..., 0].astype(int) - seen[..., 2]).max() > 30  # not grey
    assert tab.occlusion_view.array().shape == (32, 32, 3)
    assert "mean-colour" in tab.occlusion_label.text()
    assert tab.reading is None and tab.preview.boxes() == []  # no number reading for photos


def test_a_batch_of_photos_shows_relative_paths_and_real_reasons(qtbot, tab, photo_model, tmp_path):
    tab._state.publish_model(photo_model, "my photo model")
    pets = tmp_path / "pets"
    pets.mkdir()
    for i in range(3):
        _photo(pets / f"p{i}.png", seed=i)
    (pets / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (pets / ".hidden.png").write_bytes(b"dot files are skipped")
    with qtbot.waitSignal(tab.batch_classified, timeout=10000) as blocker:
        _drop(tab.drop_area, _urls(pets))
    assert len(blocker.args[0]) == 4
    table = tab.batch_table
    names = sorted(table.item(r, 0).text() for r in range(table.rowCount()))
    assert names == [os.path.join("pets", n) for n in ("broken.jpg", "p0.png", "p1.png", "p2.png")]
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}
    broken = rows[os.path.join("pets", "broken.jpg")]
    assert "not a readable image" in table.item(broken, 3).text()
    good = rows[os.path.join("pets", "p1.png")]
    assert table.item(good, 1).text() in CLASSES and table.item(good, 3).text() == ""


def test_the_chooser_offers_shipped_trained_and_opened_models(
    qtbot, tab, photo_model, tmp_path, monkeypatch
):
    box = tab.model_box
    assert box.objectName() == "modelBox"
    assert box.count() >= 1 and "digits" in box.itemText(0)
    assert tab._kind() == "digit" and tab.draw_panel.isVisibleTo(tab)
    tab._state.publish_model(photo_model, "Just trained (photos)")
    assert box.currentText() == "Just trained (photos)" and tab.model is photo_model
    assert not tab.invert_box.isVisible()
    box.setCurrentIndex(0)
    box.activated.emit(0)  # the user picks the shipped digit model again (loaded already)
    assert tab.model is not photo_model and tab._kind() == "digit"
    assert tab.invert_box.isVisible() and tab.mode_bar.isVisible()
    # the shipped photo model is listed once its file exists, and loaded when chosen
    shipped_photos = tmp_path / "photos.npz"
    save_model(photo_model, shipped_photos)
    monkeypatch.setattr(resources, "photo_model_path", lambda: shipped_photos)
    other = ClassifyTab(AppState())
    qtbot.addWidget(other)
    texts = [other.model_box.itemText(i) for i in range(other.model_box.count())]
    index = next(i for i, t in enumerate(texts) if "photo" in t.lower())
    with qtbot.waitSignal(other.model_load_finished, timeout=10000) as blocker:
        other.model_box.setCurrentIndex(index)
        other.model_box.activated.emit(index)
    assert blocker.args == [True]
    assert other.model.classes == CLASSES and other._kind() == "photo"
    qtbot.waitUntil(lambda: not other.background_busy(), timeout=10000)


def _crafted_models(tmp_path, good):
    """Model files a campaign would try: junk, broken JSON, wrong types, nonsense sizes."""
    files = {}
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    files["junk"] = tmp_path / "junk.npz"
    weights = dict(np.load(good, allow_pickle=False))
    meta = json.loads(str(weights.pop("meta")[()]))
    variants = {
        "list_arch": {**meta, "architecture": [1, 2, 3]},
        "classes_text": {**meta, "classes": "ten"},
        "huge_version": {**meta, "version": 10**30},
        "nested": {**meta, "history": json.loads("[" * 200 + "]" * 200)},
        "bad_input": {**meta, "input": {"shape": [3, 32, 32], "scale": 1e308, "std": 1e-308}},
    }
    for name, doc in variants.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, meta=np.array(json.dumps(doc)), **weights)
        files[name] = path
    return files


def test_crafted_model_files_give_a_message_and_keep_the_model(qtbot, tab, photo_model, tmp_path):
    good = tmp_path / "good.npz"
    save_model(photo_model, good)
    before = tab.model
    for name, path in _crafted_models(tmp_path, good).items():
        with qtbot.waitSignal(tab.model_load_finished, timeout=10000) as blocker:
            _drop(tab.drop_area, _urls(path))  # opened off the GUI thread
        if blocker.args == [True]:  # a file the loader accepts must still classify
            assert tab.model is not before
            tab.model_panel.add_model(before, "back")
            tab.set_model(before, "back")
            continue
        assert tab.model is before, name
        assert path.name in tab.message_label.text() or "model" in tab.message_label.text()
        assert "Traceback" not in tab.message_label.text()


def test_rapid_opens_the_newest_request_wins(qtbot, tab, tmp_path):
    side = int(np.sqrt(BACKGROUND_PIXELS)) + 200
    big = tmp_path / "big.png"
    Image.new("RGB", (side, side), (250, 250, 250)).save(big)  # decoded off the GUI thread
    small = tmp_path / "small.png"
    one = Image.new("RGB", (60, 40), (250, 250, 250))
    ImageDraw.Draw(one).line([(30, 5), (30, 35)], fill=(0, 0, 0), width=4)
    one.save(small)
    assert tab.open_image_file(big) is True and tab.background_busy()
    assert tab.open_image_file(small)  # on the GUI thread, while the big one decodes
    qtbot.waitUntil(lambda: not tab.background_busy(), timeout=20000)
    assert tab.preview.has_image()
    assert tab.original_view.array().shape[:2] == (40, 60)  # the newest, not the slow big one


def test_a_big_image_is_decoded_off_the_gui_thread_and_previewed_small(qtbot, tab, tmp_path):
    path = tmp_path / "wide.png"
    picture = np.full((1300, 2600), 255, np.uint8)
    picture[400:900, 1200:1300] = 0  # a "1"
    Image.fromarray(picture).save(path)
    with qtbot.waitSignal(tab.classified, timeout=20000):
        assert tab.open_image_file(path) is True  # accepted at once, classified later
    decoded, bars, shown = tab.last_timing
    assert decoded <= bars <= shown
    assert max(tab.original_view.array().shape[:2]) <= 1024  # the preview, not 3.4 MP


@pytest.mark.parametrize("size", [(65, 1), (640, 9), (9, 640)])
def test_thin_strips_give_a_result_or_a_plain_message(qtbot, tab, tmp_path, size):
    a = np.full(size[::-1], 255, np.uint8)
    a[:, size[0] // 3 : max(size[0] // 3 + 1, 2 * size[0] // 3)] = 0
    path = tmp_path / "strip.png"
    Image.fromarray(a).save(path)
    tab.open_image_file(path)
    qtbot.waitUntil(lambda: not tab.background_busy(), timeout=20000)
    text = tab.message_label.text()
    assert "Error" not in text and "Traceback" not in text and "index" not in text.lower()


def test_a_full_disk_never_destroys_the_existing_csv_or_picture(qtbot, tab, tmp_path, monkeypatch):
    path = _photo(tmp_path / "a.png")
    with qtbot.waitSignal(tab.batch_classified, timeout=10000):
        _drop(tab.drop_area, _urls(path, tmp_path / "missing.png"))
    csv_file, png_file = tmp_path / "predictions.csv", tmp_path / "shot.png"
    csv_file.write_text("precious,old,rows\n")
    png_file.write_bytes(b"old picture")

    def full_disk(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert not tab.export_csv(csv_file)
    assert "No space left" in tab.message_label.text() and str(csv_file) in tab.message_label.text()
    assert not tab.save_picture(png_file)
    assert csv_file.read_text() == "precious,old,rows\n" and png_file.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    monkeypatch.undo()
    assert tab.export_csv(csv_file) and "a.png" in csv_file.read_text()
    assert tab.save_picture(png_file) and Image.open(png_file).size[0] == tab.width()


def test_the_tab_opens_a_photo_model_file_by_drop(qtbot, tab, photo_model, tmp_path):
    path = tmp_path / "pets.npz"
    save_model(photo_model, path)
    with qtbot.waitSignal(tab.model_load_finished, timeout=10000):
        _drop(tab.drop_area, _urls(path))
    assert tab.model_box.currentText() == "pets.npz (opened)"
    assert tab.model.classes == load_model(path).classes
    assert tab.mode_group.checkedId() == 1  # the image page: no drawing for photos
    assert tab.right_tabs.currentIndex() == 0
    assert tab.model_label.text().count("photos") == 1


def test_a_non_utf8_file_name_is_listed_and_exported(qtbot, tab, tmp_path):
    from engine.inference import FileResult

    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.png")
    rows = [FileResult(odd, "cat", 0.9, (0.1, 0.9)), FileResult(str(tmp_path / "b.png"), error="x")]
    tab.batch_table.set_rows(rows, tmp_path)
    tab.batch_table.sortItems(2)  # by confidence: the failed file first
    assert tab.batch_table.displayed_files() == [rows[1].file, odd]
    out = tmp_path / "out.csv"
    assert tab.export_csv(out)
    assert b"caf\xe9.png,cat,0.9000" in out.read_bytes()


def test_the_status_bar_stops_saying_opening_once_the_photo_is_shown(
    qtbot, tab, photo_model, tmp_path
):
    """A 12-megapixel phone photo is opened off the GUI thread: the status bar said 'Opening
    IMG_1000.jpg…' until it timed out, seconds after the answer was on screen."""
    posted = _drop_a_phone_photo(qtbot, tab, photo_model, tmp_path)
    assert posted[0] == "Opening IMG_1000.jpg…"
    assert posted[-1] == "Opened IMG_1000.jpg"


def _drop_a_phone_photo(qtbot, tab, photo_model, tmp_path) -> list[str]:
    """Drop a 12-megapixel JPEG (opened off the GUI thread) with ``photo_model`` in use; the
    status messages posted until its answer is shown."""
    tab.set_model(photo_model, "pets")
    path = tmp_path / "IMG_1000.jpg"
    Image.new("RGB", (4032, 3024), (200, 120, 40)).save(path, quality=70)
    posted: list[str] = []
    tab._state.status_posted.connect(posted.append)
    tab.handle_drop(_urls(path))
    qtbot.waitUntil(lambda: not tab.background_busy() and tab.result is not None, timeout=20000)
    return posted


def test_the_status_bar_names_the_photo_shown_not_the_one_before(qtbot, tab, photo_model, tmp_path):
    """A phone photo opened, then a small one dropped: the status bar still said 'Opened
    IMG_1000.jpg' (or the previous file's error) beside the small photo's answer."""
    posted = _drop_a_phone_photo(qtbot, tab, photo_model, tmp_path)
    tab.handle_drop(_urls(_photo(tmp_path / "boat.png")))
    assert tab.result is not None and posted[-1] == "Opened boat.png"
    (tmp_path / "notes.png").write_bytes(b"not a picture")
    tab.handle_drop(_urls(tmp_path / "notes.png"))
    assert posted[-1].startswith("notes.png: not a readable image")
    tab.handle_drop(_urls(tmp_path / "boat.png"))
    assert posted[-1] == "Opened boat.png" and not tab.message_label.isVisible()
    before = len(posted)
    tab.set_model(photo_model, "pets again")  # the same photo again: no 'Opened' for it
    assert tab.result is not None and not [t for t in posted[before:] if "Opened" in t]


def test_a_photo_read_by_the_digit_model_points_to_the_users_photo_model(
    qtbot, tab, photo_model, tmp_path
):
    """Train on one's photos, switch to Classify, drop a cat: the shipped digit model read it
    as '77' and nothing said that the model just trained waits in the Model box."""
    tab._state.offer_model(photo_model, "Trained here: lenet-article · pets")
    assert tab.model_name == "Shipped LeNet-5 (digits)"
    tab.open_image_file(_photo(tmp_path / "cat.png"))
    qtbot.waitUntil(lambda: not tab.background_busy() and tab.result is not None, timeout=20000)
    assert tab.message_label.isVisible()
    assert tab.message_label.text() == (
        "Shipped LeNet-5 (digits) reads digits; to classify this photo with your model, choose "
        "'Trained here: lenet-article · pets' in the Model box"
    )
    entry = tab.model_panel.model_box.findText("Trained here: lenet-article · pets")
    tab.model_panel.model_box.activated.emit(entry)
    qtbot.waitUntil(lambda: tab.result is not None and tab.result.classes == CLASSES)
    assert not tab.message_label.isVisible()


def test_the_output_cells_name_a_users_classes_whole_or_cut_at_the_end(
    qtbot, tab, tmp_path, monkeypatch
):
    """Under the output cells 'dog  friends' showed as 'frie' and 'Oiseaux à la maison' as
    'à la' (the middle of each name, cut on both sides by the cell); a name that does not fit
    now ends in '…' and starts as the class does."""
    from PySide6.QtGui import QPainter

    names = ["Boats", "Cats", "dog  friends", "Oiseaux à la maison"]
    model = build_model(
        {"name": "lenet-article", "in_channels": 3}, np.random.default_rng(0), classes=names
    )
    tab.set_model(model, "pets")
    tab.open_image_file(_photo(tmp_path / "cat.png"))
    qtbot.waitUntil(lambda: tab.result is not None, timeout=20000)
    drawn: list[tuple[float, str]] = []
    original = QPainter.drawText

    def record(painter, *args):
        if len(args) == 3 and isinstance(args[2], str):
            drawn.append((args[0].width(), args[2]))
        return original(painter, *args)

    monkeypatch.setattr(QPainter, "drawText", record)
    view = tab.network_view
    view.grab()
    metrics = view.fontMetrics()
    shown = {text: width for width, text in drawn if text and text[0] in "BCdO"}
    assert len(shown) == 4, drawn
    for name, (text, width) in zip(names, shown.items(), strict=True):
        assert text == name or (text.endswith("…") and name.startswith(text[:-1])), text
        assert metrics.horizontalAdvance(text) <= width


def test_a_drawing_set_aside_by_a_photo_model_says_so_and_comes_back_with_a_digit_model(
    qtbot, tab, photo_model
):
    """A digit drawn, then a photo model chosen: the drawing vanished with no word of why, and
    choosing the digit model again left an empty Image side with '–' (the drawing hidden
    behind the Draw button, unclassified)."""
    _stroke(qtbot, tab.canvas, [(140, 40), (140, 240)])
    qtbot.waitUntil(lambda: tab.result is not None and tab.result.classes[0] == "0")
    digits = tab.model_name
    tab._state.publish_model(photo_model, "my photo model")
    assert tab.result is None and tab.prediction_label.text() == "–"
    assert tab.message_label.isVisible()
    assert tab.message_label.text() == (
        "my photo model classifies photos, not drawings: drop, paste or open a photo (your "
        f"drawing waits for a digit model: choose '{digits}' in the Model box)"
    )
    tab.model_panel.model_box.activated.emit(tab.model_panel.model_box.findText(digits))
    qtbot.waitUntil(lambda: tab.result is not None and tab.result.classes[0] == "0")
    assert tab.sources.currentIndex() == 0 and tab.mode_group.checkedId() == 0  # Draw again
    assert tab.draw_panel.isVisible() and not tab.message_label.isVisible()
    assert tab.prediction_label.text() == f"{tab.result.prediction} {tab.result.confidence:.1%}"


def test_a_photo_opened_meanwhile_stays_when_the_digit_model_comes_back(
    qtbot, tab, photo_model, tmp_path
):
    _stroke(qtbot, tab.canvas, [(140, 40), (140, 240)])
    qtbot.waitUntil(lambda: tab.result is not None)
    digits = tab.model_name
    tab._state.publish_model(photo_model, "my photo model")
    tab.open_image_file(_photo(tmp_path / "boat.png"))
    qtbot.waitUntil(lambda: tab.result is not None and tab.result.classes == CLASSES)
    assert not tab.message_label.isVisible()
    tab.model_panel.model_box.activated.emit(tab.model_panel.model_box.findText(digits))
    qtbot.waitUntil(lambda: not tab.background_busy())
    assert tab.mode_group.checkedId() == 1 and tab.sources.currentIndex() == 1  # the photo

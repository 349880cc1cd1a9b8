"""The Classify tab's batch table as a user meets it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from desktop.widgets.batch_table import BatchTable
from engine.inference import FileResult
from engine.model import build_model
from tests.desktop.test_classify_photos import (
    CLASSES,
    _photo,
    _urls,
    tab,  # noqa: F401 (a fixture)
)
from tests.desktop.test_classify_tab import _drop


def test_a_new_batch_is_listed_by_file_name_a_to_z(qtbot, tmp_path):
    table = BatchTable()
    qtbot.addWidget(table)
    names = ["b.png", "c.png", "a.png"]
    table.set_rows([FileResult(str(tmp_path / n), "cat", 0.5, (0.5, 0.5)) for n in names])
    shown = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert [Path(s).name for s in shown] == ["a.png", "b.png", "c.png"]
    assert table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.AscendingOrder


def test_a_model_chosen_while_a_batch_runs_classifies_the_batch(qtbot, tab, tmp_path):  # noqa: F811
    birds = build_model(
        {"name": "lenet-article", "in_channels": 3}, np.random.default_rng(1), classes=CLASSES
    )
    shapes = build_model(
        {"name": "lenet-article", "in_channels": 3},
        np.random.default_rng(2),
        classes=["round", "square"],
    )
    tab.set_model(birds, "birds model")
    paths = [_photo(tmp_path / f"p{i}.png", seed=i) for i in range(3)]
    got = []
    tab.batch_classified.connect(got.append)
    _drop(tab.drop_area, _urls(*paths))
    tab.set_model(shapes, "shapes model")  # before the batch is done
    qtbot.waitUntil(lambda: not tab.background_busy(), timeout=20000)
    table = tab.batch_table
    assert {table.item(r, 1).text() for r in range(table.rowCount())} <= {"round", "square"}
    assert table.rowCount() == 3 and "shapes model" in tab.batch_status.text()
    assert len(got) == 1  # the first model's table never showed up meanwhile
    with qtbot.waitSignal(tab.batch_classified, timeout=20000):  # a finished batch follows too
        tab.set_model(birds, "birds model")
    assert {table.item(r, 1).text() for r in range(table.rowCount())} <= set(CLASSES)
    assert "birds model" in tab.batch_status.text()


def test_a_narrow_table_keeps_prediction_and_confidence_in_sight(qtbot, tmp_path):
    table = BatchTable()
    qtbot.addWidget(table)
    table.set_rows([FileResult(str(tmp_path / "cat_0001.jpg"), "cat", 0.5, (0.5, 0.5))], tmp_path)
    table.resize(380, 300)  # the right column of the Classify tab in a 1024x700 window
    table.show()
    qtbot.waitExposed(table)
    header = table.horizontalHeader()
    right = header.sectionViewportPosition(2) + header.sectionSize(2)
    assert right <= table.viewport().width()
    assert header.sectionSize(0) >= table.fontMetrics().horizontalAdvance("cat_0001.jpg")
    table.resize(900, 300)
    qtbot.waitUntil(lambda: header.sectionSize(0) >= 220)


def test_a_narrow_table_tells_why_a_file_failed_on_its_whole_row(qtbot, tmp_path):
    """At 1024x700 the Problem column is out of sight (scrolled off to the right) and the tab
    said '(see Problem)': the failed file's row showed only '–', its cells no reason."""
    reason = "not a readable image: the contents are not a known image format"
    table = BatchTable()
    qtbot.addWidget(table)
    table.set_rows([FileResult(str(tmp_path / "notes.png"), error=reason)], tmp_path)
    table.resize(380, 300)
    table.show()
    qtbot.waitExposed(table)
    header = table.horizontalHeader()
    assert header.sectionViewportPosition(3) + 40 > table.viewport().width()  # out of sight
    assert [table.item(0, c).toolTip() for c in range(3)] == [
        f"{tmp_path / 'notes.png'}: {reason}",
        reason,
        reason,
    ]

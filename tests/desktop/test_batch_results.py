"""The Classify tab's batch table as a user meets it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from desktop.widgets.batch_table import BatchTable
from engine.inference import FileResult


def test_a_new_batch_is_listed_by_file_name_a_to_z(qtbot, tmp_path):
    table = BatchTable()
    qtbot.addWidget(table)
    names = ["b.png", "c.png", "a.png"]
    table.set_rows([FileResult(str(tmp_path / n), "cat", 0.5, (0.5, 0.5)) for n in names])
    shown = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert [Path(s).name for s in shown] == ["a.png", "b.png", "c.png"]
    assert table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.AscendingOrder

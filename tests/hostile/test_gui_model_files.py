"""Every crafted model file of the campaign, opened in the app: the Classify tab (a drop) and
the Train tab (Load) show a message naming the file, keep their model, and raise nothing."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QUrl

import desktop.qt_compat  # noqa: F401  (binding work-arounds, as the app applies them)
from desktop.app_state import AppState
from hostile.models import crafted_models
from tests.desktop.test_classify_tab import _drop

# a few of each kind: metadata types, JSON depth, absurd architecture, zip bombs, lies
GUI_CASES = [
    "arch_list", "classes_ten", "version_huge", "input_scale_huge", "deep_json",
    "filters_million", "layers_100000", "history_20M", "weight_bomb", "weight_header_1GB",
    "object_array", "many_entries",
]  # fmt: skip


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    return crafted_models(tmp_path_factory.mktemp("crafted_gui"))


def test_classify_tab_drops_show_a_message_and_keep_the_model(qtbot, crafted):
    from desktop.classify_tab import ClassifyTab

    tab = ClassifyTab(AppState())
    qtbot.addWidget(tab)
    tab.show()
    before = tab.model
    for name in GUI_CASES:
        path = crafted[name][0]
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        with qtbot.waitSignal(tab.model_load_finished, timeout=20_000) as blocker:
            _drop(tab.drop_area, mime)  # as a file manager does; opened off the GUI thread
        assert blocker.args == [False], name
        text = tab.message_label.text()
        assert tab.model is before and path.name in text and "Traceback" not in text, text
    qtbot.waitUntil(lambda: not tab.background_busy(), timeout=20_000)


def test_train_tab_load_shows_a_message(qtbot, crafted):
    from desktop.train_tab import TrainTab

    state = AppState()
    tab = TrainTab(state)
    qtbot.addWidget(tab)
    tab.show()
    for name in GUI_CASES:
        path = crafted[name][0]
        with qtbot.waitSignal(tab.model_load_finished, timeout=20_000) as blocker:
            tab.load_model_file(path)
        assert blocker.args == [False], name
        assert f"Could not load {path.name}" in tab.message.text(), tab.message.text()
        assert tab.load_button.isEnabled() and state.offered_models == []

"""Quitting with a trained model that is in no file: the window asks before it is lost.

Each test trains LeNet-5 briefly on a slice of the bundled MNIST in a real main window; the
question (``QMessageBox.question``) and the file dialog are answered by the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.modelfile import load_model, save_model

RUN_TIMEOUT = 60_000
Button = QMessageBox.StandardButton
ASKED_BUTTONS = Button.Save | Button.Discard | Button.Cancel


class Answers:
    """Scripted answers to the question before quitting and to the save dialog, recording
    what was asked."""

    def __init__(self, monkeypatch) -> None:
        self.buttons: list[Button] = []
        self.files: list[str] = []
        self.asked: list[tuple[str, str, object]] = []
        monkeypatch.setattr(QMessageBox, "question", self._question)
        monkeypatch.setattr(QFileDialog, "getSaveFileName", self._save_file_name)

    def _question(self, _parent, title, text, buttons, _default):
        self.asked.append((title, text, buttons))
        return self.buttons.pop(0)

    def _save_file_name(self, *_args, **_kwargs):
        return self.files.pop(0), ""


@pytest.fixture
def answers(monkeypatch) -> Answers:
    return Answers(monkeypatch)


@pytest.fixture
def window(qtbot, settings):
    """A main window on the Train tab, its first dataset a slice of MNIST."""
    from desktop.main_window import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.tabs.setCurrentWidget(win.train_tab)
    tab = win.train_tab
    tab.setup.set_source("mnist", 600)
    qtbot.waitUntil(
        lambda: tab.start_button.isEnabled() and len(tab.setup.dataset.train_labels) == 600,
        timeout=30_000,
    )
    tab.test_limit = 100
    tab.setup.epochs_spin.setValue(1)
    yield win
    if tab.is_busy():  # a failed test: no thread outlives the window
        tab.stop_work()
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=RUN_TIMEOUT)


def _train(qtbot, window) -> None:
    tab = window.train_tab
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["finished"]


def _same_weights(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_quitting_after_a_run_asks_to_save_and_stays_until_the_model_is_kept(
    qtbot, window, answers, tmp_path
):
    # Closing after a finished run quit at once: the trained model was lost.
    tab = window.train_tab
    _train(qtbot, window)
    answers.buttons.append(Button.Cancel)
    window.close()
    assert window.isVisible() and tab.model is not None
    title, text, buttons = answers.asked[-1]
    assert title == "Save the trained model?" and "before quitting" in text
    assert buttons == ASKED_BUTTONS

    window.tabs.setCurrentWidget(window.classify_tab)
    answers.buttons.append(Button.Save)
    answers.files.append("")  # the save dialog cancelled
    window.close()
    assert window.isVisible() and tab.save_button.isEnabled()
    assert "Not saved" in window.statusBar().currentMessage()

    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    answers.buttons.append(Button.Save)
    answers.files.append(str(blocked / "model.npz"))  # cannot be written
    window.close()
    assert window.isVisible() and window.tabs.currentWidget() is tab
    assert tab.message.isVisible() and "Could not save model.npz" in tab.message.text()

    answers.buttons.append(Button.Save)
    answers.files.append(str(tmp_path / "kept"))
    window.close()
    assert not window.isVisible() and len(answers.asked) == 4
    assert _same_weights(load_model(tmp_path / "kept.npz"), tab.model)


def test_discard_quits_without_the_model(qtbot, window, answers, tmp_path):
    _train(qtbot, window)
    answers.buttons.append(Button.Discard)
    window.close()
    assert not window.isVisible() and len(answers.asked) == 1
    assert window._settings.value("tab_index") is not None  # the real close ran
    assert not list(tmp_path.glob("*.npz"))


def test_a_saved_or_loaded_model_quits_without_a_question(qtbot, window, answers, tmp_path):
    tab = window.train_tab
    _train(qtbot, window)
    answers.files.append(str(tmp_path / "mine.npz"))
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "mine.npz").is_file()
    window.close()
    assert not window.isVisible() and answers.asked == []

    window.show()  # the model trained again is in no file
    tab.continue_check.setChecked(True)
    _train(qtbot, window)
    answers.buttons.append(Button.Cancel)
    window.close()
    assert window.isVisible() and len(answers.asked) == 1

    save_model(tab.model, tmp_path / "other.npz")
    with qtbot.waitSignal(tab.model_load_finished, timeout=RUN_TIMEOUT) as loaded:
        tab.load_model_file(tmp_path / "other.npz")  # Load…: the model is a file's
    assert loaded.args == [True]
    window.close()
    assert not window.isVisible() and len(answers.asked) == 1


def test_a_stopped_run_asks_too(qtbot, window, answers):
    tab = window.train_tab
    tab.setup.epochs_spin.setValue(30)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(tab.session.log) >= 2, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as ended:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["cancelled"]
    answers.buttons.append(Button.Cancel)
    window.close()
    assert window.isVisible() and answers.asked[-1][0] == "Save the trained model?"
    answers.buttons.append(Button.Discard)
    window.close()
    assert not window.isVisible()

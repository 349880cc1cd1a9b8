"""The main window: tabs, menus, settings, About; the entry point opens a window."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QKeySequence

from desktop.main_window import MainWindow


def _window(qtbot, settings) -> MainWindow:
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    return window


def test_window_has_the_three_tabs_in_order(qtbot, settings):
    window = _window(qtbot, settings)
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Filters", "Train", "Classify"]


def test_file_menu_shortcuts(qtbot, settings):
    window = _window(qtbot, settings)
    assert window.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert window.save_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Save)
    file_menu = window.menuBar().actions()[0].menu()
    texts = [a.text().replace("&", "") for a in file_menu.actions()]
    assert "Open image…" in texts and "Quit" in texts
    samples = next(a.menu() for a in file_menu.actions() if a.text() == "Open sa&mple image")
    assert {a.text() for a in samples.actions()} >= {"camera.png", "astronaut.png"}


def test_about_names_data_and_photo_attributions():
    from desktop.main_window import ABOUT_HTML

    for credit in (
        "LeCun",
        "CC BY-SA 3.0",
        "NASA",
        "Lav Varshney",
        "Stefan van der Walt",
        "Rachel Michetti",
        "SpaceX",
        "Dayane Machado",
    ):
        assert credit in ABOUT_HTML


def test_geometry_and_tab_are_remembered(qtbot, settings):
    window = _window(qtbot, settings)
    window.resize(window.minimumSizeHint().width(), 611)  # the offscreen screen is 800 wide
    size = window.size()
    window.tabs.setCurrentIndex(2)
    window.close()
    again = _window(qtbot, settings)
    assert again.tabs.currentIndex() == 2
    assert again.size() == size


def test_entry_point_opens_a_window_in_a_subprocess(tmp_path):
    code = textwrap.dedent(
        """
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        def check():
            shown = [w for w in app.topLevelWidgets() if w.isVisible()]
            print("windows:", [w.windowTitle() for w in shown])
            app.quit()
        QTimer.singleShot(200, check)
        from desktop.app import main
        sys.exit(main())
        """
    )
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ConvScope" in result.stdout


def test_a_model_trained_further_in_pytorch_says_so_whole_at_1024x700(qtbot, settings, tmp_path):
    """A file an exported script's `train` wrote back (its record in the metadata, no
    ConvScope evaluation) opens in the Classify tab, which says how it was trained there."""
    from PySide6.QtWidgets import QScrollArea

    from engine.modelfile import load_model, save_model
    from resources import shipped_model_path

    model = load_model(shipped_model_path())
    model.meta["evaluation"] = None
    model.meta["pytorch_training"] = {
        "epochs": [{"epoch": e, "test_accuracy": 0.95 + e / 100} for e in (1, 2, 3)],
        "processes": 4,
        "device": "cuda",
    }
    save_model(model, tmp_path / "bigger.npz")
    window = _window(qtbot, settings)
    window.resize(1024, 700)
    tab = window.classify_tab
    window.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(tab.model_load_finished, timeout=20_000) as opened:
        tab.open_model_file(tmp_path / "bigger.npz")
    assert opened.args == [True]
    label = tab.model_label
    assert "then 3 epochs in PyTorch on 4 GPUs, test 98.00%" in label.text()
    assert "test accuracy" not in label.text()
    scroll = tab.findChild(QScrollArea)
    qtbot.waitUntil(lambda: scroll.widget().height() == scroll.viewport().height())
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()))
    top_left = label.mapTo(scroll.viewport(), label.rect().topLeft())
    assert top_left.y() + label.heightForWidth(label.width()) <= scroll.viewport().height()


def test_nothing_is_cut_at_1024x700(qtbot, settings):
    """The Classify tab's model description shows whole without scrolling (the tab used to
    scroll by the preferred height of its wrapped labels and cut it), and the Train tab's
    buttons keep their text."""
    from PySide6.QtWidgets import QCheckBox, QPushButton, QScrollArea

    window = _window(qtbot, settings)
    window.resize(1024, 700)
    tab = window.classify_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.model is not None, timeout=10_000)
    label = tab.model_label
    assert "test accuracy" in label.text()  # the longest description: three lines here
    scroll = tab.findChild(QScrollArea)
    qtbot.waitUntil(lambda: scroll.widget().height() == scroll.viewport().height())
    top_left = label.mapTo(scroll.viewport(), label.rect().topLeft())
    bottom = top_left.y() + label.heightForWidth(label.width())
    assert 0 <= top_left.y() and bottom <= scroll.viewport().height()
    assert label.height() >= label.heightForWidth(label.width())
    window.tabs.setCurrentWidget(window.train_tab)
    row = window.train_tab.start_button.parentWidget()
    buttons = [*row.findChildren(QPushButton), *row.findChildren(QCheckBox)]
    toolbar = [b for b in buttons if b.isVisible() and b.y() < window.train_tab.progress.y()]
    assert {"▶ Start", "What it learned…", "Continue model", "Load…"} <= {b.text() for b in toolbar}
    for button in toolbar:
        assert button.width() >= button.fontMetrics().horizontalAdvance(button.text()) + 8
    qtbot.waitUntil(lambda: not window.train_tab.setup.is_loading(), timeout=30_000)
    combo = window.train_tab.setup.source_combo
    for key in ("mnist", "cifar4"):  # the bundled datasets' titles show whole
        combo.setCurrentIndex(combo.findData(key))
        text = combo.currentText()
        assert combo.width() >= combo.fontMetrics().horizontalAdvance(text) + 24, text
        assert combo.toolTip().startswith(text) and "\n" in combo.toolTip()
    assert "bundled" in combo.toolTip()


@pytest.mark.parametrize(
    ("ini", "recent"),
    [
        ("geometry=hello\ntab_index=1, 2\n", []),  # an edited or foreign file: text, a list
        ("geometry=a, b\nlast_folder=x, y\n", []),
        ("geometry=@ByteArray(not a geometry)\n", []),  # bytes Qt cannot read
        ("recent_files=@Variant(\\0\\0\\0\\x2\\0\\0\\0\\x5)\n", []),  # an int, not a list
        ("recent_files=@ByteArray(abc)\n", []),
        ("recent_files=\n", []),
        ("recent_files=/gone/a.png, , /gone/b.png\n", ["/gone/a.png", "/gone/b.png"]),
    ],
)
def test_settings_of_the_wrong_type_start_the_window_as_new(qtbot, tmp_path, ini, recent):
    """Settings written by another version or edited by hand: the window opens at its first
    size, and Open recent lists only file names (none that is empty or not text)."""
    path = tmp_path / "convscope.ini"
    path.write_text("[General]\n" + ini, encoding="utf-8")
    window = _window(qtbot, QSettings(str(path), QSettings.Format.IniFormat))
    fresh = _window(qtbot, QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    assert window.size() == fresh.size()
    assert window.recent_files() == recent
    assert [a.text() for a in window.recent_menu.actions()] == recent
    assert window.recent_menu.isEnabled() == bool(recent)


def test_settings_that_cannot_be_written_are_reported_at_start(qtbot, tmp_path):
    """A settings folder that cannot be made (here under a file): ConvScope opens, and says
    that what it remembers (size, tab, recent files) will not be kept."""
    (tmp_path / "file").write_text("not a folder")
    where = tmp_path / "file" / "convscope.ini"
    window = _window(qtbot, QSettings(str(where), QSettings.Format.IniFormat))
    message = window.statusBar().currentMessage()
    assert "cannot be saved" in message and str(where) in message
    assert "recent files" in message


def test_file_save_on_the_train_tab_saves_its_model(qtbot, settings, tmp_path, monkeypatch):
    """File > Save result… (Ctrl+S) on the Train tab said "This tab has nothing to save"
    beside a model its own Save… button saves."""
    from PySide6.QtWidgets import QFileDialog

    from resources import shipped_model_path

    window = _window(qtbot, settings)
    train = window.train_tab
    window.tabs.setCurrentWidget(train)
    window.save_action.trigger()
    assert "train or load a model" in window.statusBar().currentMessage()
    with qtbot.waitSignal(train.model_load_finished, timeout=20_000):
        train.load_model_file(shipped_model_path())
    out = tmp_path / "mine.npz"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    window.save_action.trigger()
    assert out.exists() and str(out) in window.statusBar().currentMessage()


def test_a_first_start_fits_the_screen(qtbot, settings):
    """No settings yet: the window opens at its first size, or smaller on a small screen (a
    1366x768 laptop; the offscreen screen here is 800x800), never past its bottom."""
    window = _window(qtbot, settings)
    room = window.screen().availableGeometry()
    assert window.frameGeometry().height() <= room.height()
    assert window.width() <= max(room.width(), window.minimumSizeHint().width())
    assert window.height() >= window.minimumSizeHint().height()


def test_each_menu_has_one_item_per_access_key(qtbot, settings):
    """Alt+F then S went to "Open &sample image" or "&Save result…" in turn, opening
    neither: within a menu (and in the menu bar) no two items share an access key."""

    def keys(actions) -> list[str]:
        found = []
        for action in actions:
            text = action.text().replace("&&", "")
            if "&" in text:
                found.append(text[text.index("&") + 1].lower())
        return found

    window = _window(qtbot, settings)
    menus = [a.menu() for a in window.menuBar().actions()]
    bar = keys(window.menuBar().actions())
    assert len(bar) == len(set(bar)) == len(menus)
    while menus:
        menu = menus.pop()
        letters = keys(menu.actions())
        assert len(letters) == len(set(letters)), (menu.title(), letters)
        menus.extend(a.menu() for a in menu.actions() if a.menu())


def test_file_open_without_a_home_folder_still_asks(qtbot, settings, monkeypatch):
    """A container run under a user id with no home (HOME unset, no password entry): Python
    3.12 raises in Path.home(), which File > Open used for its first folder; the dialog now
    opens where Qt starts it."""
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    asked = []
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", lambda *a, **k: asked.append(a[2]) or ("", "")
    )
    window = _window(qtbot, settings)
    window.open_action.trigger()  # File > Open image… (Ctrl+O)
    assert asked == [""]

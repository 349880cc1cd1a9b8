"""The engine never imports Qt, pyqtgraph or the desktop package (the architecture rule)."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "desktop", "pytestqt")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_sources_import_no_gui_module():
    root = Path(engine.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for name in _imported_modules(path):
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.name} imports {name}")
    assert not offenders, offenders


def _engine_modules() -> list[str]:
    """Every module of the engine, subpackages included; the template of the exported PyTorch
    file (which imports torch, as the exported file does) only where torch is installed."""
    names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
    if importlib.util.find_spec("torch") is None:
        names.remove("engine.export_template")
    return names


def test_importing_every_engine_module_loads_no_gui_module():
    modules = _engine_modules()
    assert "engine.filters.kernels" in modules  # subpackages too
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_tests_and_the_root_conftest_import_no_qt():
    """Engine tests run without Qt: the Qt setup of the GUI tests lives in tests/desktop/.
    (They may import the Qt-free CLI, ``desktop.cli``; other tests check it loads no Qt.)"""
    qt = {"PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "pytestqt"}
    tests = Path(__file__).parent
    paths = [tests / "conftest.py", *sorted((tests / "engine").rglob("*.py"))]
    offenders = []
    for path in paths:
        for name in _imported_modules(path):
            if name.split(".")[0] in qt or name == "desktop.qt_compat":
                offenders.append(f"{path.relative_to(tests)} imports {name}")
    assert len(paths) > 10, paths  # the engine tests were found
    assert not offenders, offenders

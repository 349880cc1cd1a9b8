"""The ``convscope`` entry point: --help and --version work headless without importing Qt."""

from __future__ import annotations

import subprocess
import sys

from engine import __version__


def _run(*args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys; from desktop.cli import main; rc = main(sys.argv[1:]);"
        "assert 'PySide6' not in sys.modules, 'the CLI imported Qt'; sys.exit(rc)"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_version_prints_the_package_version():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"convscope {__version__}"


def test_help_lists_usage_without_qt():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert "usage: convscope" in result.stdout


def test_unknown_subcommand_fails_with_one_line():
    result = _run("frobnicate")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr

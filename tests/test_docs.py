"""The docs' checkable facts stay true: docs/ARCHITECTURE.md's map names every module that
exists and none that does not. No Qt import: files are only read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The packages whose modules the map lists one by one (desktop/cli's subcommands are named
#: by their pattern, ``<name>_cmd.py``).
MAPPED = ("engine", "engine/filters", "desktop", "desktop/cli", "desktop/widgets")


def _layout() -> str:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return text.split("## Layout", 1)[1].split("```", 2)[1]


def test_architecture_map_names_every_module_and_no_missing_one():
    layout = _layout()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", layout))
    unnamed = [
        f"{folder}/{path.name}"
        for folder in MAPPED
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.stem not in words
        and path.name not in ("__init__.py", "__main__.py")
        and not path.stem.endswith("_cmd")
    ]
    assert not unnamed, f"docs/ARCHITECTURE.md's layout does not name {unnamed}"
    modules = {p.stem for top in ("engine", "desktop", "tests") for p in (ROOT / top).rglob("*.py")}
    named = set(re.findall(r"\b([a-z_]+)\.py\b", layout)) - {"_cmd"}
    assert named <= modules, f"the layout names modules that do not exist: {named - modules}"
    widgets = layout.split("widgets/", 1)[1].split("resources/", 1)[0]
    listed = set(re.findall(r"\b([a-z][a-z_]+[a-z])\b", widgets))
    stems = {p.stem for p in (ROOT / "desktop" / "widgets").glob("*.py")}
    stale = {w for w in listed if "_" in w and w not in stems}
    assert not stale, f"the layout's widgets/ names modules that do not exist: {stale}"

"""What several subcommands share: the MODEL argument, image arguments, exit statuses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from desktop.cli import CliError

EXIT_SOME_FAILED = 1
EXIT_ALL_FAILED = 2


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a model file (.npz) saved by ConvScope, or the word 'shipped' for the bundled "
        "LeNet-5 trained on MNIST",
    )


def resolve_model_path(spec: str) -> Path:
    """``shipped`` -> the bundled model; anything else is a path that must exist."""
    if spec == "shipped":
        from resources import shipped_model_path

        path = shipped_model_path()
        if not path.is_file():
            raise CliError(
                f"the shipped model is missing ({path}); reinstall ConvScope or train one "
                "with 'convscope train --augment --out MODEL.npz'"
            )
        return path
    path = Path(spec).expanduser()
    if not path.exists():
        raise CliError(f"{spec}: no such model file (use 'shipped' for the bundled model)")
    if path.is_dir():
        raise CliError(f"{spec}: is a folder, not a model file (.npz)")
    return path


def expand_images(args: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to classify, in order (folders expanded, sorted), and (argument, problem) pairs."""
    from engine.imageio import SUPPORTED_SUFFIXES

    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            inside = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and not p.name.startswith(".")
                and p.suffix.lower() in SUPPORTED_SUFFIXES
            )
            if not inside:
                problems.append((arg, "the folder holds no image files"))
            files.extend(inside)
        else:
            files.append(path)  # missing or unreadable files are reported by load_image
    return files, problems


def without_name(message: str, path: Path) -> str:
    """The engine's message names the file; the CLI line already starts with the path."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


# What a terminal that cannot show a symbol gets instead (PYTHONIOENCODING=ascii, a C locale).
_PLAIN = str.maketrans(
    {"×": "x", "→": "->", "÷": "/", "−": "-", "…": "...", "·": "*", "–": "-", "—": "-", "²": "^2"}
)


def safe_print(*parts: object, file: TextIO | None = None, sep: str = " ", end: str = "\n") -> None:
    """``print`` that never raises UnicodeEncodeError: on a terminal whose encoding lacks a
    character, the usual symbols become ASCII (× -> x, → -> ->, ÷ -> /) and anything else
    (a non-UTF-8 file name, an emoji) is written as a backslash escape."""
    stream = sys.stdout if file is None else file
    text = sep.join(str(p) for p in parts) + end
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        text = text.translate(_PLAIN).encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:  # an encoding Python does not know: ASCII is always safe
        text = text.translate(_PLAIN).encode("ascii", "backslashreplace").decode("ascii")
    stream.write(text)
    stream.flush()

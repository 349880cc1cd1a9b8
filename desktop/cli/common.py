"""What several subcommands share: the MODEL and --classes arguments, loading a dataset for a
model, image arguments, JSON, exit statuses."""

from __future__ import annotations

import argparse
import json
import math
import sys
import unicodedata
from pathlib import Path
from typing import Any, TextIO

from desktop.cli import CliError

EXIT_SOME_FAILED = 1
EXIT_ALL_FAILED = 2

#: The words that name the models bundled with ConvScope.
SHIPPED_WORDS = {
    "shipped": "the bundled LeNet-5 trained on MNIST (handwritten digits)",
    "photos": "the bundled four-class photo model (bird, cat, dog, ship)",
}
MODEL_HELP = (
    "a model file (.npz) saved by ConvScope, or 'shipped' for the bundled LeNet-5 trained on "
    "MNIST digits, or 'photos' for the bundled photo model (bird, cat, dog, ship)"
)


#: ``read``'s MODEL: a photo model is refused there, so its help does not offer one.
DIGIT_MODEL_HELP = (
    "a digit model file (.npz) saved by ConvScope (classes 0-9, one channel), or 'shipped' for "
    "the bundled LeNet-5 trained on MNIST digits"
)


def add_model_argument(parser: argparse.ArgumentParser, text: str = MODEL_HELP) -> None:
    parser.add_argument("model", metavar="MODEL", help=text)


def add_classes_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--classes A,B,...`` (train, evaluate)."""
    parser.add_argument(
        "--classes",
        metavar="A,B,...",
        default=None,
        help="keep only these classes of the dataset, in this order (e.g. bird,cat,dog,ship)",
    )


def load_dataset_for(
    spec: str,
    input_shape: tuple[Any, ...],
    limit: int | None = None,
    progress: Any = None,
    *,
    classes: str | None = None,
    test_fraction: float = 0.2,
    image_size: Any = None,
) -> Any:
    """``engine.datasets.load_dataset_iter`` at a model input (C,H,W): every dataset at the
    network's size (``engine.dataset_size``: IDX and CIFAR images resized, digits that fit
    padded by the model). A channel count of None keeps the data's own; ``image_size`` (one
    (H, W) per channel count) replaces the (H, W) of ``input_shape``."""
    from engine.datasets import load_dataset_iter
    from engine.progress import run_through

    channels, height, width = input_shape
    report = None
    if progress is not None:

        def report(p: Any) -> None:
            doing = "resizing" if p.stage == "resize" else "reading"
            progress.update(p.fraction, f"{doing} {spec}: {p.done:,}/{p.total:,} images")

    events = load_dataset_iter(
        spec,
        limit=limit,
        image_size=(height, width) if image_size is None else image_size,
        channels=channels,
        classes=classes,
        test_fraction=test_fraction,
    )
    return run_through(events, report)  # no control: it runs to the end


def shipped_path(word: str) -> Path:
    """Where the bundled model named ``word`` ('shipped' or 'photos') lives."""
    import resources

    return resources.shipped_model_path() if word == "shipped" else resources.photo_model_path()


def resolve_model_path(spec: str) -> Path:
    """'shipped' / 'photos' -> the bundled model; anything else is a path that must exist."""
    if spec in SHIPPED_WORDS:
        path = shipped_path(spec)
        if not path.is_file():
            raise CliError(
                f"{SHIPPED_WORDS[spec]} is missing ({path}); reinstall ConvScope or train a "
                "model with 'convscope train --out MODEL.npz' and give its path"
            )
        return path
    if spec == "":
        raise CliError("the model path is an empty string; give a model file or 'shipped'")
    path = Path(spec).expanduser()
    problem = path_problem(path)
    if problem == "missing":
        raise CliError(f"{spec}: no such model file (use 'shipped' or 'photos' for a bundled one)")
    if problem:
        raise CliError(f"{spec}: {problem}")
    if path.is_dir():
        raise CliError(f"{spec}: is a folder, not a model file (.npz)")
    return path


def path_problem(path: Path) -> str:
    """'' when ``path`` exists, 'missing' when it does not, else why it cannot be looked at
    (a name longer than the system allows, a component that is a file...)."""
    try:
        return "" if path.exists() else "missing"
    except OSError as exc:
        return f"cannot be opened ({exc.strerror or type(exc).__name__})"


def expand_images(args: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to classify, in order (folders expanded, sorted, dot files skipped), and
    (argument, problem) pairs. An empty-string argument is refused (it is not the current
    folder)."""
    from engine.inference import expand_paths

    if any(arg == "" for arg in args):
        raise CliError("an image argument is an empty string; give image files or folders")
    return expand_paths(args)


def without_name(message: str, path: Path) -> str:
    """The engine's message names the file; the CLI line already starts with the path."""
    from engine.inference import without_name as strip

    return strip(message, path)


# What a terminal that cannot show a symbol gets instead (PYTHONIOENCODING=ascii, a C locale).
_PLAIN = str.maketrans(
    {"×": "x", "→": "->", "÷": "/", "−": "-", "…": "...", "·": "*", "–": "-", "—": "-", "²": "^2"}
)


def safe_print(*parts: object, file: TextIO | None = None, sep: str = " ", end: str = "\n") -> None:
    """``print`` that never raises UnicodeEncodeError: on a terminal whose encoding lacks a
    character, the usual symbols become ASCII (× -> x, → -> ->, ÷ -> /) and anything else
    (a non-UTF-8 file name, an emoji) is written as a backslash escape.

    A closed stream (``>&-``: None in Python) gets nothing, as with ``print``. Progress and
    errors on stderr never end the job when stderr cannot take them (full, closed: there is
    nowhere to say so); any other stream that fails (stdout on a full disk) raises
    :class:`CliError` saying so, BrokenPipeError excepted (``| head``: see ``main``)."""
    stream = sys.stdout if file is None else file
    if stream is None:
        return
    text = sep.join(str(p) for p in parts) + end
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        text = text.translate(_PLAIN).encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:  # an encoding Python does not know: ASCII is always safe
        text = text.translate(_PLAIN).encode("ascii", "backslashreplace").decode("ascii")
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        if stream is not sys.stderr:
            raise
    except (OSError, ValueError) as exc:  # ValueError: a stream closed meanwhile
        if stream is not sys.stderr:
            where = "standard output" if stream is sys.stdout else getattr(stream, "name", "")
            why = getattr(exc, "strerror", None) or exc
            raise CliError(f"cannot write to {where or 'the output'} ({why})") from None


def text_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: wide (CJK) characters take two, combining
    marks none, so that tables of class names line up whatever the script."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (see ``text_width``), on the
    left when ``right`` (numbers), else on the right."""
    gap = " " * max(0, width - text_width(text))
    return gap + text if right else text + gap


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, Infinity) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a NumPy scalar
        return finite(value.item())
    return value


def json_text(doc: Any) -> str:
    """Strict JSON (never ``NaN`` or ``Infinity``, which are not JSON: they become null)."""
    return json.dumps(finite(doc), allow_nan=False)

"""``convscope evaluate MODEL``: accuracy, per-class accuracy and confusion matrix on a test split.

Text output is a readable report; ``--json`` prints ``{"accuracy", "per_class", "confusion",
"classes", "count", "loss", "misclassified", "most_confident_mistakes", "model", "dataset"}``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop.cli import CliError
from desktop.cli.common import (
    add_classes_argument,
    add_model_argument,
    json_text,
    pad,
    safe_print,
    text_width,
)
from desktop.cli.progress import Progress

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from engine.evaluation import EvaluationResult

MATRIX_CLASSES = 20  # the confusion matrix is printed up to this many classes
CONFUSED_PAIRS = 20  # beyond, its fullest off-diagonal cells

HELP = "evaluate a saved model on a dataset's test split: accuracy, per class, confusion matrix"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.datasets import DEFAULT_DATASET

    add_model_argument(parser)
    parser.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"(default {DEFAULT_DATASET}) 'mnist' (bundled), 'cifar4', 'fashion-mnist', "
        "'cifar10', a folder of IDX files or CIFAR-10 batches (their test files are used), "
        "or a folder of class subfolders (its test/ part if it has one, else every image in it)",
    )
    add_classes_argument(parser)
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="first N test images only"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="(default 500)")
    parser.add_argument(
        "--mistakes",
        type=int,
        default=10,
        metavar="N",
        help="list the N most confident mistakes (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from desktop.cli.common import load_dataset_for, resolve_model_path
    from engine.datasets import select_classes
    from engine.errors import ModelFileError
    from engine.evaluation import evaluate_iter
    from engine.modelfile import load_model
    from engine.progress import run_through

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be >= 1, got {args.limit}")
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.mistakes < 0:
        raise CliError(f"--mistakes must be >= 0, got {args.mistakes}")
    path = resolve_model_path(args.model)
    model = load_model(path)
    progress = Progress()
    dataset = load_dataset_for(
        args.dataset,
        tuple(model.input_spec.shape),
        None,
        progress,
        classes=args.classes,
        test_fraction=1.0,  # a plain class-folder tree: every image is scored
    )
    progress.close()
    resized = dataset.resized_line(path.name)  # at the size the model takes, as in training
    if resized:
        progress.message(resized)
    trained = _trained_on(model.meta, dataset, path.name)
    if trained:
        progress.message(trained)
    names = [str(c) for c in model.classes]
    if (
        args.classes is None
        and dataset.classes != names
        and sorted(dataset.classes) == sorted(names)
    ):
        dataset = select_classes(dataset, names)  # labels in the order of the model's outputs
    if len(dataset.classes) != len(model.classes):
        raise CliError(
            f"{path.name} has {len(model.classes)} classes but the dataset {dataset.name} has "
            f"{len(dataset.classes)}; evaluate it on the dataset it was trained for"
        )
    images, labels, files = dataset.test_images, dataset.test_labels, dataset.test_files
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]

    if len(images) == 0:
        raise CliError(f"{dataset.test_summary()}: no images to evaluate")
    try:
        result = run_through(
            evaluate_iter(model, images, labels, args.batch_size),
            lambda p: progress.update(p.fraction, f"evaluating on {p.total:,} images"),
        )
    except ModelFileError as exc:  # outputs that are not numbers: the file is at fault
        raise CliError(f"{path.name}: {exc}") from None
    finally:
        progress.close()  # the error line starts on a line of its own
    assert result is not None

    if args.json:
        doc = {
            "model": str(path),
            "dataset": dataset.name,
            "split": dataset.test_split,
            **result.to_json(args.mistakes, files),
        }
        safe_print(json_text(doc))
        return 0
    title = f"{path.name} on {dataset.name}, {dataset.test_split}"
    safe_print(report(result, names, title, args.mistakes, files))
    return 0


def _trained_on(meta: dict, dataset: Any, name: str) -> str:
    """A line when every image of the folder the model was trained on is scored: its training
    images are among them (the accuracy reads higher than the run's test); '' otherwise."""
    trained = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
    tested = meta.get("evaluation") if isinstance(meta.get("evaluation"), dict) else {}
    source, counts = trained.get("source"), [trained.get(k) for k in ("train", "val", "test")]
    if dataset.test_files is None or dataset.test_split != "every image in the folder":
        return ""
    if not isinstance(source, str) or not all(isinstance(c, int) for c in counts):
        return ""
    try:
        same = Path(source).resolve() == Path(dataset.source).resolve()
    except (OSError, RuntimeError, ValueError):
        return ""
    if not same:
        return ""
    total = len(dataset.test_labels)
    line = f"{name} was trained on {counts[0] + counts[1]:,} of these {total:,} images"
    accuracy = tested.get("accuracy")
    if isinstance(accuracy, int | float) and math.isfinite(accuracy):
        line += f"; its test on the {counts[2]:,} it held out scored {accuracy:.2%}"
    return line


def report(
    result: EvaluationResult,
    names: list[str],
    title: str,
    mistakes: int = 10,
    files: Sequence[str] | None = None,
) -> str:
    """The text report: headline, per-class table, confusion matrix, most confident mistakes
    (by their ``files``, an image folder's, else by index)."""
    r = result
    wrong = len(r.misclassified)
    lines = [
        f"{title}: {r.count:,} images",
        f"accuracy {r.accuracy:.2%} ({wrong:,} wrong)",
        "",
    ]
    counts = r.confusion.sum(axis=1)
    name_w = max(5, *(text_width(n) for n in names))
    lines.append(f"{pad('class', name_w)}  {'images':>7}  {'accuracy':>8}")
    for name, n, acc in zip(names, counts, r.per_class, strict=True):
        shown = "-" if math.isnan(acc) else f"{acc:.2%}"
        lines.append(f"{pad(name, name_w)}  {int(n):>7,}  {shown:>8}")
    if len(names) > MATRIX_CLASSES:  # a 1,000-column table reads as noise: the worst cells
        lines += ["", "most confused classes (the whole matrix: --json), true -> predicted:"]
        pairs = r.confused_pairs(CONFUSED_PAIRS)
        lines += [
            f"  {names[t]} -> {names[p]}: {n:,} image{'s' if n != 1 else ''}" for t, p, n in pairs
        ] or ["  none"]
    else:
        lines += _matrix(r.confusion, names)
    if mistakes and wrong:
        what = "index" if files is None else "file"
        lines += ["", f"most confident mistakes ({what}: true -> predicted, confidence):"]
        for m in r.mistakes(mistakes, files):
            which = m["file"] if files is not None else f"#{m['index']}"
            lines.append(
                f"  {which}: {names[m['true']]} -> {names[m['predicted']]}, {m['confidence']:.1%}"
            )
    return "\n".join(lines)


def _matrix(confusion: np.ndarray, names: list[str]) -> list[str]:
    """The confusion matrix as a table (rows = true class, columns = predicted)."""
    lines = ["", "confusion matrix (rows = true class, columns = predicted class):"]
    if max(text_width(n) for n in names) <= 6:
        heads, rows = list(names), list(names)
    else:  # long names: number the columns, and the rows too so they can be matched
        heads = [str(k) for k in range(len(names))]
        rows = [f"{k} {n}" for k, n in enumerate(names)]
    row_w = max(text_width(t) for t in rows)
    cell = max(4, len(str(int(confusion.max()))), *(text_width(h) for h in heads)) + 1
    lines.append(" " * row_w + "".join(pad(h, cell, right=True) for h in heads))
    for label, row in zip(rows, confusion, strict=True):
        lines.append(pad(label, row_w) + "".join(f"{int(v):>{cell}}" for v in row))
    return lines

"""``convscope train``: train a LeNet on MNIST (or a dataset folder), evaluate it, save it.

Progress (epoch, loss, accuracy, images/s, ETA) goes to stderr; the result to stdout (one JSON
document with ``--json``). Ctrl+C asks the run to stop after the current batch (a second Ctrl+C
stops at once); with ``--save-on-interrupt`` the weights trained so far are saved. A diverging run
(NaN/inf loss) prints why, writes no file and exits with status 1: its weights are only the last
good ones, and a model file at ``--out`` from an earlier run must not be overwritten by them.

Exit status: 0 done, 1 diverged, 2 bad arguments or files, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from desktop.cli import CliError
from desktop.cli.progress import Progress, format_duration

HELP = "train a LeNet on MNIST or a dataset folder, evaluate it on the test split and save it"

ARCHS = ("lenet5", "lenet-article")
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "adam": 0.001}
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        default="mnist",
        help="'mnist' (bundled, the default), a folder of IDX files in MNIST layout, or a "
        "folder with one subfolder of images per class",
    )
    parser.add_argument("--arch", choices=ARCHS, default="lenet5", help="network (default lenet5)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the data (default 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: 0.1 for sgd, 0.01 for momentum, 0.001 for adam)",
    )
    parser.add_argument(
        "--optimizer", choices=tuple(DEFAULT_LR), default="momentum", help="(default momentum)"
    )
    parser.add_argument("--momentum", type=float, default=0.9, help="(default 0.9)")
    parser.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty (default 0)")
    parser.add_argument(
        "--loss",
        choices=("cross-entropy", "total-error"),
        default="cross-entropy",
        help="cross-entropy (default), or the article's total error 1/2*sum((target-output)^2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same model (default 0)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="split each batch over N shards trained in parallel (forked processes on Linux, "
        "threads elsewhere; BLAS gets one thread each). 2 is fastest on a 2-core machine; the "
        "model equals the one of --workers 1 up to float rounding (default 1)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="first N training images only"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="part of the training set held out for validation, seeded (default 0.1; 0 = none)",
    )
    parser.add_argument(
        "--augment",
        action="store_true",
        help="random shifts, rotations, scale and stroke width (for real handwriting)",
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=1,
        help="1 = grayscale (default), 3 = colour; used for image folders",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="MODEL.npz",
        help="where to save the model (default: ARCH-DATASET.npz in the current folder)",
    )
    parser.add_argument(
        "--save-on-interrupt",
        action="store_true",
        help="on Ctrl+C, save the weights trained so far",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


# -- helpers shared with evaluate_cmd -----------------------------------------------------------
def load_dataset_for(
    spec: str, input_shape: tuple[int, ...], limit: int | None = None, progress: Any = None
) -> Any:
    """``engine.datasets.load_dataset`` with image folders converted to a model input (C,H,W)
    (IDX datasets keep their size; the model's InputSpec pads 28x28 to 32x32)."""
    from engine.datasets import load_dataset

    channels, height, width = input_shape
    report = None
    if progress is not None:

        def report(done: int, total: int) -> None:
            progress.update(done / max(total, 1), f"reading {spec}: {done:,}/{total:,} images")

    return load_dataset(
        spec, limit=limit, image_size=(height, width), channels=channels, progress=report
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dataset"


def _check_out_path(out: str) -> Path:
    path = Path(out).expanduser()
    if path.suffix.lower() != ".npz":
        raise CliError(f"--out {out}: a model file name must end in .npz")
    if path.is_dir():
        raise CliError(f"--out {out}: is a folder; give a file name ending in .npz")
    if not path.parent.is_dir():
        raise CliError(f"--out {out}: the folder {path.parent} does not exist; create it first")
    return path


@contextmanager
def _ctrl_c_cancels(control: Any) -> Iterator[None]:
    """While inside: the first Ctrl+C cancels ``control`` (stop after this batch), the second
    raises KeyboardInterrupt as usual. Only possible in the main thread; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if control.cancelled:
            raise KeyboardInterrupt
        control.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


# -- the subcommand -----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from engine.evaluation import evaluate_iter
    from engine.model import build_model
    from engine.modelfile import save_model
    from engine.training import Cancelled, Diverged, Finished, TrainControl, train

    config = _config(args)
    out = _check_out_path(args.out) if args.out is not None else None
    augment = None
    if args.augment:
        if args.channels != 1:
            raise CliError(
                "--augment distorts grayscale digits; it cannot be used with --channels 3"
            )
        from engine.augment import augment_digits as augment

    progress = Progress()
    t_start = time.perf_counter()
    seeds = np.random.SeedSequence(args.seed).spawn(2)  # weights, validation split
    probe = build_model(args.arch, np.random.default_rng(0))
    input_shape = (args.channels, *probe.input_spec.shape[1:])
    dataset = load_dataset_for(args.dataset, input_shape, args.limit, progress)
    progress.close()
    _report_skipped(progress, dataset.skipped)
    if out is None:
        out = _check_out_path(f"{args.arch}-{_slug(dataset.name)}.npz")
    tr_x, tr_y = dataset.train_images, dataset.train_labels
    val_x = val_y = None
    if args.val_fraction > 0:
        from engine.datasets import split_validation

        tr_x, tr_y, val_x, val_y = split_validation(
            tr_x, tr_y, args.val_fraction, np.random.default_rng(seeds[1])
        )
    model = build_model(
        {"name": args.arch, "in_channels": args.channels},
        np.random.default_rng(seeds[0]),
        classes=list(dataset.classes),
    )
    n_val = 0 if val_x is None else len(val_x)
    t_loaded = time.perf_counter()

    progress.message(
        f"training {args.arch} on {dataset.name}: {len(tr_x):,} training + {n_val:,} validation "
        f"images, {config.epochs} epoch{'s' if config.epochs > 1 else ''}, batch "
        f"{config.batch_size}, {config.optimizer} lr {config.lr:g}, seed {config.seed}"
    )
    stack = contextlib.ExitStack()
    if args.workers > 1:
        from threadpoolctl import threadpool_limits

        stack.enter_context(threadpool_limits(1))  # the shards are the parallelism
        model.threads = args.workers
        model.processes = True
        stack.callback(setattr, model, "threads", 1)  # stops the worker processes
    control = TrainControl()
    events = train(
        model, tr_x, tr_y, config, val_images=val_x, val_labels=val_y, control=control,
        augment=augment,
    )  # fmt: skip
    with stack, _ctrl_c_cancels(control):
        outcome, epochs_done, rate = _follow(events, progress, config.epochs)
        t_trained = time.perf_counter()
        evaluation = None
        if isinstance(outcome, Finished):
            for item in evaluate_iter(
                model, dataset.test_images, dataset.test_labels, control=control
            ):
                if isinstance(item, float):
                    progress.update(item, f"evaluating on {len(dataset.test_images):,} test images")
                else:
                    evaluation = item
            if evaluation is None:  # Ctrl+C during the evaluation
                outcome = Cancelled(config.epochs, 0)
    progress.close()
    t_evaluated = time.perf_counter()

    last = epochs_done[-1] if epochs_done else None
    summary: dict[str, Any] = {
        "model": None,
        "arch": args.arch,
        "dataset": dataset.name,
        "epochs": len(epochs_done),
        "train_loss": last and last.train_loss,
        "train_accuracy": last and last.train_accuracy,
        "val_loss": last and last.val_loss,
        "val_accuracy": last and last.val_accuracy,
        "test_accuracy": evaluation and evaluation.accuracy,
        "test_loss": evaluation and evaluation.loss,
        "seconds": round(t_trained - t_loaded, 3),
        "samples_per_second": rate,
        "status": "finished",
    }
    model.meta["dataset"] = {
        "name": dataset.name,
        "source": str(dataset.source),
        "train": len(tr_x),
        "val": n_val,
        "test": len(dataset.test_images),
        "limit": args.limit,
        "augment": bool(args.augment),
    }
    model.meta["trained_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    model.meta["training_seconds"] = summary["seconds"]
    if evaluation is not None:
        model.meta["evaluation"] = {
            "dataset": dataset.name,
            "split": "test",
            **evaluation.to_json(),
        }

    if isinstance(outcome, Diverged):
        summary.update(status="diverged", message=outcome.message)
        _print_result(args, summary, f"training diverged: {outcome.message}")
        print(f"convscope train: {outcome.message}; nothing was written to {out}", file=sys.stderr)
        return EXIT_DIVERGED

    if isinstance(outcome, Cancelled):
        summary["status"] = "interrupted"
        where = f"epoch {outcome.epoch} batch {outcome.batch}"
        if not args.save_on_interrupt:
            _print_result(args, summary, f"interrupted at {where}; nothing saved")
            print(
                f"convscope train: interrupted at {where}; nothing saved (add "
                "--save-on-interrupt to keep the weights trained so far)",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        model.meta["interrupted_at"] = where
        save_model(model, out)
        summary["model"] = str(out)
        _print_result(args, summary, f"interrupted at {where}; saved the weights to {out}")
        print(
            f"convscope train: interrupted at {where}; saved the weights trained so far to {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED

    save_model(model, out)
    t_saved = time.perf_counter()
    summary["model"] = str(out)
    summary["timings"] = {
        "load": round(t_loaded - t_start, 3),
        "train": round(t_trained - t_loaded, 3),
        "evaluate": round(t_evaluated - t_trained, 3),
        "save": round(t_saved - t_evaluated, 3),
        "total": round(t_saved - t_start, 3),
    }
    _print_result(
        args,
        summary,
        f"test accuracy {_pct(summary['test_accuracy'])} on {len(dataset.test_images):,} "
        f"{dataset.name} test images (val {_pct(summary['val_accuracy'])}, train "
        f"{_pct(summary['train_accuracy'])}); trained in {format_duration(summary['seconds'])}\n"
        f"saved {out}",
    )
    return 0


def _config(args: argparse.Namespace) -> Any:
    from engine.training import TrainConfig

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be >= 1, got {args.limit}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise CliError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if not 1 <= args.workers <= 16:
        raise CliError(f"--workers must be between 1 and 16, got {args.workers}")
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr if args.lr is not None else DEFAULT_LR[args.optimizer],
        optimizer=args.optimizer,
        momentum=args.momentum,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
        loss=args.loss.replace("-", "_"),
        seed=args.seed,
    )
    config.validate()
    return config


def _follow(events: Iterator, progress: Progress, epochs: int) -> tuple[Any, list, float | None]:
    """Show the training events; returns (final event, EpochEnd list, last samples/s)."""
    from engine.training import BatchEnd, Cancelled, Diverged, EpochEnd, Finished

    outcome = None
    epochs_done = []
    rate = None
    for event in events:
        if isinstance(event, BatchEnd):
            rate = event.samples_per_second
            progress.update(
                event.samples_seen / event.samples_total,
                f"epoch {event.epoch}/{epochs}  loss {event.running_loss:.4f}  "
                f"acc {event.running_accuracy:.2%}  {event.samples_per_second:,.0f} img/s  "
                f"ETA {format_duration(event.eta_seconds)}",
                force=event.batch == 1 and event.epoch == 1,
            )
        elif isinstance(event, EpochEnd):
            epochs_done.append(event)
            val = ""
            if event.val_accuracy is not None:
                val = f", val loss {event.val_loss:.4f} acc {_pct(event.val_accuracy)}"
            progress.message(
                f"epoch {event.epoch}/{epochs}: train loss {event.train_loss:.4f} "
                f"acc {_pct(event.train_accuracy)}{val} ({event.seconds:.1f} s)"
            )
        elif isinstance(event, (Finished, Cancelled, Diverged)):
            outcome = event  # the last event
    return outcome, epochs_done, rate


def _report_skipped(progress: Progress, skipped: list) -> None:
    for file, reason in skipped[:5]:
        progress.message(f"skipped {file}: {reason}")
    if len(skipped) > 5:
        progress.message(f"... and {len(skipped) - 5} more unreadable files skipped")


def _print_result(args: argparse.Namespace, summary: dict, text: str) -> None:
    if args.json:
        print(json.dumps(summary))
    else:
        print(text)

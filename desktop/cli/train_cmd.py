"""``convscope train``: train a network (a LeNet, a family member or a custom one) on MNIST or
a dataset folder, evaluate it, save it.

Progress (epoch, loss, accuracy, images/s, ETA) goes to stderr; the result to stdout (one JSON
document with ``--json``). Ctrl+C (or SIGTERM) asks the run to stop after the current batch (a
second one stops at once); with ``--save-on-interrupt`` the weights trained so far are saved. A
diverging run (NaN/inf loss) prints why, writes no file and exits with status 1: its weights are
only the last good ones, and a model file at ``--out`` from an earlier run must not be
overwritten by them.

Exit status: 0 done, 1 diverged, 2 bad arguments or files, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from desktop.cli import CliError
from desktop.cli.common import json_text, load_dataset_for, safe_print
from desktop.cli.progress import Progress, format_duration
from desktop.cli.train_options import add_arguments as add_arguments  # the options
from engine.optim import DEFAULT_LR
from engine.run import RunSettings, family_name, model_file_name
from engine.training import TrainConfig

HELP = (
    "train a network (a LeNet, a ConvNet family member or your own) on MNIST or a dataset "
    "folder, evaluate it on the test split and save it"
)

EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130


def _check_out_path(out: str) -> Path:
    """``engine.run.check_writable`` with the option's name: refused before the dataset loads."""
    from engine.run import RunError, check_writable

    try:
        return check_writable(out)
    except RunError as exc:
        raise CliError(f"--out {exc}") from None


#: What stops a run as Ctrl+C does: SIGTERM is what ``kill``, ``timeout`` and job schedulers send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _ctrl_c_cancels(control: Any) -> Iterator[None]:
    """While inside: the first Ctrl+C (or SIGTERM) cancels ``control`` (stop after this batch,
    then what --save-on-interrupt asks), the second raises KeyboardInterrupt as usual. Only
    possible in the main thread; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        if control.cancelled:
            raise KeyboardInterrupt
        control.cancel()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _signals_held() -> Iterator[list[int]]:
    """While inside (a model file being written): Ctrl+C and SIGTERM are noted in the list
    yielded, not acted on, so that the file is written in full; a KeyboardInterrupt there would
    lose a whole run at its last step. Only possible in the main thread; elsewhere a no-op."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def note(signum: int, frame: Any) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _save(model: Any, out: Path) -> bool:
    """``save_model`` (with a rescue file if ``out`` fails), whole whatever signal comes
    meanwhile; whether a Ctrl+C or SIGTERM came during it."""
    from engine.modelfile import save_model

    with _signals_held() as caught:
        save_model(model, out, rescue=True)  # a full disk at the end loses no run
    return bool(caught)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


# -- the subcommand -----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """Load, check, train, evaluate, save: the CLI's sequence around ``engine.run``."""
    progress = Progress()
    t_start = time.perf_counter()
    dataset, label, run_, out = _start(args, progress)
    t_loaded = time.perf_counter()
    _announce(progress, label, dataset.name, run_)
    if run_.split_note():
        progress.message(run_.split_note())
    ended = _train(run_, args.workers, progress)
    t_done = time.perf_counter()
    summary = _summary(args, dataset.name, ended)
    if ended.status == "diverged":
        summary.update(status="diverged", message=ended.message)
        _print_result(args, summary, f"training diverged: {ended.message}")
        safe_print(
            f"convscope train: {ended.message}; nothing was written to {out}", file=sys.stderr
        )
        return EXIT_DIVERGED
    if ended.status == "cancelled":
        return _interrupted(args, summary, ended.where, run_.model, out)
    interrupted = _save(run_.model, out)
    t_saved = time.perf_counter()
    summary["model"] = str(out)
    summary["timings"] = {
        "load": round(t_loaded - t_start, 3),
        "train": round(ended.seconds, 3),
        "evaluate": round(max(0.0, t_done - t_loaded - ended.seconds), 3),
        "save": round(t_saved - t_done, 3),
        "total": round(t_saved - t_start, 3),
    }
    _print_result(
        args,
        summary,
        f"test accuracy {_pct(summary['test_accuracy'])} on {run_.counts()['test']:,} "
        f"{dataset.name} test images ({dataset.test_split}; val "
        f"{_pct(summary['val_accuracy'])}, train {_pct(summary['train_accuracy'])}); "
        f"trained in {format_duration(summary['seconds'])}\n"
        f"saved {out}",
    )
    if interrupted:
        safe_print(
            f"convscope train: interrupted while saving; the model was saved in full to {out} "
            "first",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _start(args: argparse.Namespace, progress: Progress) -> tuple[Any, str, Any, Path]:
    """Check the options, load the dataset, set the run up (every engine check before any
    training): the dataset, what is trained (the network's label), the run and the output
    path."""
    from engine.architectures import choose, image_sizes

    config = _config(args)
    if args.continue_from is not None:
        return _start_continued(args, config, progress)
    # NAME, TEXT or FILE.json: checked before loading. The images keep their own colour unless
    # --channels says otherwise or the network (a FILE.json) fixes it
    choice = choose(args.arch, args.channels)
    channels = args.channels or (choice.input_shape[0] if choice.kind == "file" else None)
    out = _check_out_path(args.out) if args.out is not None else None
    # the network's size for the images' colour (resnet8: 28x28 grey, 32x32 colour), known once
    # they are read: folders are read, IDX and CIFAR images resized, at the size it takes
    sizes = image_sizes(args.arch, channels)
    dataset = load_dataset_for(
        args.dataset,
        (channels, *choice.input_shape[1:]),
        args.limit,
        progress,
        classes=args.classes,
        image_size=sizes,
    )
    progress.close()
    if dataset.input_shape[0] != choice.input_shape[0]:
        choice = choose(args.arch, dataset.input_shape[0])
    if out is None:
        out = _check_out_path(model_file_name(choice.label, dataset.name))
    architecture = choice.architecture(len(dataset.classes))
    run_ = _set_up(args, progress, dataset, choice.label, config, out, architecture)
    return dataset, choice.label, run_, out


def _start_continued(
    args: argparse.Namespace, config: Any, progress: Progress
) -> tuple[Any, str, Any, Path]:
    """:func:`_start` for ``--continue MODEL.npz``: the model file is read and checked first,
    then the dataset at its input, with its classes (in the order of its outputs)."""
    from desktop.cli.common import resolve_model_path
    from engine.modelfile import load_model

    path = resolve_model_path(args.continue_from)
    model = load_model(path)
    shape = tuple(int(s) for s in model.input_spec.shape)
    if args.channels is not None and args.channels != shape[0]:
        raise CliError(f"{path.name} takes {shape[0]}-channel input; leave out --channels")
    args.arch = family_name(model)  # what --json reports as the network
    out = _check_out_path(args.out or f"{path.stem}-continued.npz")
    classes = args.classes if args.classes is not None else [str(c) for c in model.classes]
    dataset = load_dataset_for(args.dataset, shape, args.limit, progress, classes=classes)
    progress.close()
    run_ = _set_up(args, progress, dataset, path.name, config, out, model.architecture, model)
    return dataset, path.name, run_, out


def _set_up(
    args: argparse.Namespace,
    progress: Progress,
    dataset: Any,
    label: str,
    config: Any,
    out: Path,
    architecture: Any,
    model: Any = None,
) -> Any:
    """What the data's reading left to say (files skipped, images resized for ``label``), then
    the run of a new network (``architecture``) or of ``model`` further: every engine check
    (the classes, the images, the sizes) before anything is trained."""
    from engine.run import training_run

    for line in dataset.skipped_lines():
        progress.message(line)
    resized = dataset.resized_line(label)  # "CIFAR-10 32x32 images resized to 28x28 ..."
    if resized:
        progress.message(resized)
    augment, augment_name = _augment(args, dataset)
    settings = RunSettings(
        architecture=architecture,
        config=config,
        val_fraction=args.val_fraction,
        augment=augment,
        augment_name=augment_name,
        out=out,
        limit=args.limit,
    )
    try:
        return training_run(dataset, settings, model=model)
    except ValueError as exc:  # the engine's checks are EngineErrors; this is the rest
        raise CliError(str(exc)) from None


def _announce(progress: Progress, label: str, dataset_name: str, run_: Any) -> None:
    """One line: what is trained on what, and how."""
    config, counts = run_.settings.config, run_.counts()
    augment_name = run_.settings.augment_name
    progress.message(
        f"training {label} on {dataset_name}: {counts['train']:,} training + "
        f"{counts['val']:,} validation images, {config.epochs} epoch"
        f"{'s' if config.epochs > 1 else ''}, batch {config.batch_size}, {config.optimizer} lr "
        f"{config.lr:g}"
        + (f" ({config.schedule})" if config.schedule != "constant" else "")
        + (f", weight decay {config.weight_decay:g}" if config.weight_decay else "")
        + (f", {augment_name} augmentation" if augment_name else "")
        + f", seed {config.seed}"
    )


def _train(run_: Any, workers: int, progress: Progress) -> Any:
    """Run it to its end, ``workers`` shards per batch, Ctrl+C cancelling; the RunEnded."""
    model = run_.model
    stack = contextlib.ExitStack()
    if workers > 1:
        from threadpoolctl import threadpool_limits

        stack.enter_context(threadpool_limits(1))  # the shards are the parallelism
        model.threads = workers
        # forked processes (no shared GIL; BatchNorm's shards exchange the batch's
        # statistics through their pipes, see engine.shards)
        model.processes = True
        stack.callback(setattr, model, "threads", 1)  # stops the worker processes
    with stack, _ctrl_c_cancels(run_.control):
        ended = _follow(run_.events(), progress, run_.settings.config.epochs)
    progress.close()
    return ended


def _summary(args: argparse.Namespace, dataset_name: str, ended: Any) -> dict[str, Any]:
    """The result as printed with --json (``model`` and ``status`` filled in by the caller)."""
    last = ended.epochs[-1] if ended.epochs else None
    evaluation = ended.evaluation
    return {
        "model": None,
        "arch": args.arch,
        "dataset": dataset_name,
        "epochs": len(ended.epochs),
        "train_loss": last and last.train_loss,
        "train_accuracy": last and last.train_accuracy,
        "val_loss": last and last.val_loss,
        "val_accuracy": last and last.val_accuracy,
        "test_accuracy": evaluation and evaluation.accuracy,
        "test_loss": evaluation and evaluation.loss,
        "seconds": round(ended.seconds, 3),
        "samples_per_second": ended.samples_per_second,
        "status": "finished",
    }


def _interrupted(
    args: argparse.Namespace, summary: dict[str, Any], where: str, model: Any, out: Path
) -> int:
    """Ctrl+C: save the weights trained so far if asked to; exit status 130 either way."""
    summary["status"] = "interrupted"
    if not args.save_on_interrupt:
        _print_result(args, summary, f"interrupted at {where}; nothing saved")
        safe_print(
            f"convscope train: interrupted at {where}; nothing saved (add "
            "--save-on-interrupt to keep the weights trained so far)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    _save(model, out)  # already interrupted: a second signal while saving changes nothing
    summary["model"] = str(out)
    _print_result(args, summary, f"interrupted at {where}; saved the weights to {out}")
    safe_print(
        f"convscope train: interrupted at {where}; saved the weights trained so far to {out}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


def _augment(args: argparse.Namespace, dataset: Any) -> tuple[Any, str]:
    """The per-batch augmentation asked for (``auto``: by the data) and its name."""
    if not args.augment:
        return None, ""
    from engine.augment import augmenter

    kind = args.augment
    if kind == "auto":
        kind = "photos" if dataset.input_shape[0] == 3 else "digits"
    return augmenter(kind, dataset.train_images), kind


def _config(args: argparse.Namespace) -> Any:
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
        schedule=args.schedule,
    )
    config.validate()
    return config


def _follow(events: Iterator, progress: Progress, epochs: int) -> Any:
    """Show a run's events; returns its :class:`engine.run.RunEnded`."""
    from engine.progress import Progress as Done
    from engine.run import RunEnded
    from engine.training import BatchEnd, EpochEnd

    ended = None
    for event in events:
        if isinstance(event, BatchEnd):
            progress.update(
                event.samples_seen / event.samples_total,
                f"epoch {event.epoch}/{epochs}  loss {event.running_loss:.4f}  "
                f"acc {event.running_accuracy:.2%}  {event.samples_per_second:,.0f} img/s  "
                f"ETA {format_duration(event.eta_seconds)}",
                force=event.batch == 1 and event.epoch == 1,
            )
        elif isinstance(event, EpochEnd):
            val = ""
            if event.val_accuracy is not None:
                val = f", val loss {event.val_loss:.4f} acc {_pct(event.val_accuracy)}"
            progress.message(
                f"epoch {event.epoch}/{epochs}: train loss {event.train_loss:.4f} "
                f"acc {_pct(event.train_accuracy)}{val} ({event.seconds:.1f} s)"
            )
        elif isinstance(event, Done):
            progress.update(event.fraction, f"evaluating on {event.total:,} test images")
        elif isinstance(event, RunEnded):
            ended = event
    return ended


def _print_result(args: argparse.Namespace, summary: dict, text: str) -> None:
    if args.json:
        safe_print(json_text(summary))
    else:
        safe_print(text)

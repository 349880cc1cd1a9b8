"""A training run from start to end: split, build, train, evaluate, record the metadata.

The one home of "train a network on a dataset", used by ``convscope train`` and the Train tab::

    run = training_run(dataset, RunSettings("lenet5", TrainConfig(epochs=2)), control=control)
    for event in run.events():   # BatchEnd, EpochEnd, Paused, ..., Progress, then RunEnded
        ...
    run.model                    # trained, with model.meta filled in (see record_metadata)

:func:`training_run` does every check before anything is trained and raises at the call (an
:class:`~engine.errors.EngineError` naming what to fix): the settings, an empty training or
test split, images the network cannot take (2-channel images, a wrong size), a model being
continued on other classes, an output file that cannot be written, a network beyond the size
limits of :mod:`engine.modelsize` (checked by arithmetic, before anything is built).
Then ``events()``:

1. trains (the events of :func:`engine.training.train`, with the same ``control``: cancel,
   pause and step work as there);
2. after a finished run, evaluates on the test split (``Progress("evaluate", done, total)``
   after each batch; a cancel stops it and the run counts as cancelled);
3. records the metadata in ``model.meta`` (:func:`record_metadata`), whatever the outcome;
4. yields :class:`RunEnded` (status, message, evaluation, epochs) last.

It never writes a file: saving is the caller's choice (the CLI saves a finished run; the tab
when asked), through :func:`engine.modelfile.save_model`. Seeds: one ``SeedSequence(config.seed)``
spawns the weights' seed and the validation split's, so the same settings give the same model.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.atomic import writable_problem
from engine.errors import DatasetError, EngineError
from engine.progress import Progress
from engine.training import (
    Augment,
    BatchEnd,
    Cancelled,
    Diverged,
    EpochEnd,
    Finished,
    TrainConfig,
    TrainControl,
    make_optimizer,
    train,
)

if TYPE_CHECKING:
    from engine.datasets import Dataset
    from engine.evaluation import EvaluationResult
    from engine.graph import Network

EVALUATION_BATCH = 500
#: Classes up to which a model records its test confusion matrix (K*K numbers) in its file
META_CONFUSION_CLASSES = 300


class RunError(EngineError, ValueError):
    """A run cannot start: an output that cannot be written, a split that is empty, ..."""


@dataclass(frozen=True)
class RunSettings:
    """What to train and how.

    architecture: a name ("lenet5", ...) or an architecture dict for ``build_model``; a name is
        built for the dataset's channels and classes. Ignored when a model is continued.
    augment: ``augment(batch_uint8, rng)`` applied per training batch; ``augment_name`` says
        which in the metadata ("digits", "photos", ...).
    test_limit: evaluate on the first N test images only (quick looks, tests).
    out: the file the caller will save to; checked writable before training.
    limit: how many training images the dataset was cut to (recorded only).
    """

    architecture: str | dict = "lenet5"
    config: TrainConfig = field(default_factory=TrainConfig)
    val_fraction: float = 0.1
    augment: Augment | None = None
    augment_name: str = ""
    test_limit: int | None = None
    evaluate: bool = True
    out: Path | None = None
    limit: int | None = None


# The defaults: ``RunSettings()`` (and its ``TrainConfig()``) are what ``convscope train`` does
# without options: all the images, one epoch. FIRST_RUN is what the Train tab shows first: the
# same settings on 10,000 images for three epochs, a curve in a few seconds (LeNet-5 on MNIST:
# 95.9% on the test set, against 94.0% after one epoch).
FIRST_RUN = RunSettings(config=TrainConfig(epochs=3), limit=10_000)


@dataclass(frozen=True)
class RunEnded:
    """The last event of a run. status: "finished", "cancelled" or "diverged"."""

    status: str
    message: str
    evaluation: EvaluationResult | None
    epochs: tuple[EpochEnd, ...]
    samples_per_second: float | None
    seconds: float  # training time (batches and validation; pauses excluded)
    where: str = ""  # "epoch E batch B" for a cancelled run


def model_file_name(label: str, dataset_name: str | None = None) -> str:
    """The file name a trained model is offered under: ``resnet8-cifar4.npz`` for ``label``
    (a family member's name, ``custom`` for a network of one's own) trained on
    ``dataset_name`` (made safe for a file name; ``resnet8.npz`` without one)."""
    slug, name = _slug(dataset_name or ""), _slug(label) or "model"
    return f"{name}-{slug}.npz" if slug else f"{name}.npz"


def _slug(text: str) -> str:
    """``text`` in lower case with every run of other characters than a-z, 0-9 one dash."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def trained_model_file_name(model: Network) -> str:
    """:func:`model_file_name` of a model: its family member's name (``custom`` for others)
    and the dataset its metadata says it was trained on."""
    dataset = model.meta.get("dataset")
    return model_file_name(
        family_name(model), dataset.get("name") if isinstance(dataset, dict) else None
    )


def family_name(model: Network) -> str:
    """The family member ``model`` is (``resnet8``), or ``custom`` for a network of one's own."""
    from engine import architectures

    arch = model.architecture
    name = str(arch.get("name")) if isinstance(arch, dict) else str(arch)
    return name if name in architectures.names() else "custom"


def model_file_path(name: str | os.PathLike[str]) -> Path:
    """``name`` as a model file's path: ``.npz`` added unless it ends so already
    (``lenet.v2`` -> ``lenet.v2.npz``; never ``lenet.npz``, another file than the one named)."""
    path = Path(name).expanduser()
    return path if path.suffix.lower() == ".npz" else path.with_name(path.name + ".npz")


def check_writable(out: str | os.PathLike[str]) -> Path:
    """The model path ``out`` if a model file can be written there, else :class:`RunError`.

    Checks the name (``.npz``, not a folder), that the folder exists, and that a file can really
    be created in it (a temporary one, removed at once): a read-only folder or ``/proc`` fail
    here, not after the whole run.
    """
    path = Path(out).expanduser()
    if path.suffix.lower() != ".npz":
        raise RunError(f"{out}: a model file name must end in .npz")
    if path.is_dir():
        raise RunError(f"{out}: is a folder; give a file name ending in .npz")
    problem = writable_problem(path)
    if problem:
        raise RunError(f"{out}: {problem}")
    return path


def architecture_for(architecture: str | dict, dataset: Dataset) -> str | dict:
    """The architecture to build for ``dataset``: a name or a network in the text form is read
    by ``architectures.choose`` (as ``--arch``) for the dataset's channels and classes, a family
    member taking the dataset's image size; a custom one without an input shape gets the
    dataset's."""
    channels = dataset.input_shape[0]
    if isinstance(architecture, str):
        from engine import architectures

        choice = architectures.choose(architecture, channels)
        arch = choice.architecture(len(dataset.classes))
        if choice.kind == "name" and "input_shape" in arch:
            arch["input_shape"] = list(dataset.input_shape)
        return arch
    if architecture.get("name") == "custom" and "input_shape" not in architecture:
        return {**architecture, "input_shape": list(dataset.input_shape)}
    return architecture


class TrainingRun:
    """A run whose checks passed: the model, the three splits and the settings.

    Made by :func:`training_run`; ``events()`` runs it (once).
    """

    def __init__(
        self,
        dataset: Dataset,
        settings: RunSettings,
        model: Network,
        splits: tuple[np.ndarray, ...],
        control: TrainControl,
        clock: Callable[[], float],
    ) -> None:
        self.dataset = dataset
        self.settings = settings
        self.model = model
        self.control = control
        (self.train_images, self.train_labels, self.val_images, self.val_labels) = splits[:4]
        self.test_images, self.test_labels = splits[4:]
        self._clock = clock
        config = settings.config
        has_val = len(self.val_labels) > 0
        # the run's optimiser, in reach between batches (engine.step_explain reads its state)
        self.optimizer = make_optimizer(config, model.parameters())
        # train() checks images, labels and shapes now, at the call
        self._train_events = train(
            model, self.train_images, self.train_labels, config,
            val_images=self.val_images if has_val else None,
            val_labels=self.val_labels if has_val else None,
            control=control, augment=settings.augment, clock=clock, optimizer=self.optimizer,
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        return {
            "train": len(self.train_labels),
            "val": len(self.val_labels),
            "test": len(self.test_labels),
        }

    def split_note(self) -> str:
        """One line naming the classes with no image held out for the test (or, with a
        validation part, for the validation), whose accuracy the run cannot measure; ''
        when every class has both. The CLI and the Train tab show it as the run starts."""
        k = len(self.model.classes)
        tested = np.bincount(self.test_labels, minlength=k) > 0
        validated = np.bincount(self.val_labels, minlength=k) > 0
        validated |= self.settings.val_fraction == 0  # no validation asked for
        totals = sum(np.bincount(y, minlength=k) for y in (self.train_labels, self.val_labels))
        totals += np.bincount(self.test_labels, minlength=k)
        gaps = {
            (False, False): "is never tested or validated",
            (False, True): "is never tested",
            (True, False): "is never validated",
        }
        parts = [
            f"{self.model.classes[c]} ({totals[c]} image{'s' if totals[c] != 1 else ''}) "
            + gaps[(bool(tested[c]), bool(validated[c]))]
            for c in np.argsort(totals, kind="stable")
            if not (tested[c] and validated[c])
        ]
        if not parts:
            return ""
        shown = ", ".join(parts[:4]) + (f" and {len(parts) - 4} more" if len(parts) > 4 else "")
        which = "those classes" if len(parts) > 1 else "that class"
        return f"too few images to measure every class: {shown}; add images to {which}"

    def events(self) -> Iterator[Any]:
        """Train, evaluate, record (see the module docstring); :class:`RunEnded` last."""
        epochs: list[EpochEnd] = []
        rate = None
        outcome: Any = None
        t0 = self._clock()
        for event in self._train_events:
            if isinstance(event, BatchEnd):
                rate = event.samples_per_second
            elif isinstance(event, EpochEnd):
                epochs.append(event)
            elif isinstance(event, (Finished, Cancelled, Diverged)):
                outcome = event
            yield event
        seconds = sum(e.seconds for e in epochs) if epochs else self._clock() - t0
        evaluation, stopped_testing = None, False
        if isinstance(outcome, Finished) and self.settings.evaluate:
            evaluation = yield from self._evaluate()
            if evaluation is None:  # cancelled during the evaluation
                outcome = Cancelled(self.settings.config.epochs, 0, outcome.history)
                stopped_testing = True
        status, message, where = _outcome(outcome)
        if stopped_testing:  # not "epoch 2 batch 0": every epoch was trained
            n = len(epochs)
            where = f"the test evaluation ({n} of {n} epochs trained)"
            message = f"stopped at {where}"
        record_metadata(self, evaluation, seconds, where)
        yield RunEnded(status, message, evaluation, tuple(epochs), rate, seconds, where)

    def _evaluate(self) -> Generator[Progress, None, EvaluationResult | None]:
        from engine.evaluation import EvaluationResult, evaluate_iter

        items = evaluate_iter(
            self.model, self.test_images, self.test_labels, EVALUATION_BATCH, control=self.control
        )
        for item in items:
            if isinstance(item, EvaluationResult):
                return item
            yield item
        return None


def _outcome(event: Any) -> tuple[str, str, str]:
    """(status, message, where) of the training's last event."""
    if isinstance(event, Diverged):
        return "diverged", event.message, f"epoch {event.epoch} batch {event.batch}"
    if isinstance(event, Cancelled):
        where = f"epoch {event.epoch} batch {event.batch}"
        return "cancelled", f"stopped at {where}", where
    return "finished", "", ""


def record_metadata(
    run: TrainingRun, evaluation: EvaluationResult | None, seconds: float, where: str = ""
) -> None:
    """Write what a run was into ``run.model.meta``: ``trained_at`` (UTC), ``dataset`` (name,
    source, split sizes, limit, augmentation), ``config`` (the settings), ``training_seconds``,
    ``evaluation`` (on the test split, its confusion matrix null beyond
    META_CONFUSION_CLASSES classes; removed when this run has none, so a continued model
    never keeps a stale one) and ``interrupted_at`` for a stopped run. ``history`` was written
    by the training itself."""
    meta = run.model.meta
    dataset, settings = run.dataset, run.settings
    meta["trained_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["dataset"] = {
        "name": dataset.name,
        "source": str(dataset.source),
        **run.counts(),
        "limit": settings.limit,
        "augment": settings.augment_name or bool(settings.augment),
    }
    meta["config"] = {
        **asdict(settings.config),
        "val_fraction": settings.val_fraction,
        "augment": settings.augment_name or bool(settings.augment),
    }
    meta["training_seconds"] = round(float(seconds), 3)
    if evaluation is not None:
        record = {"dataset": dataset.name, "split": "test", **evaluation.to_json()}
        if evaluation.confusion.shape[0] > META_CONFUSION_CLASSES:
            # 1,000 classes: a million numbers, most of a model file's metadata limit
            # (engine.modelschema.MAX_META_VALUES) and seconds of JSON on every open
            record["confusion"] = None
        meta["evaluation"] = record
    else:
        meta.pop("evaluation", None)
    if where and meta.get("history", {}).get("status") == "cancelled":
        meta["interrupted_at"] = where
    else:
        meta.pop("interrupted_at", None)


def training_run(
    dataset: Dataset,
    settings: RunSettings,
    *,
    model: Network | None = None,
    control: TrainControl | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainingRun:
    """Check everything, split the data, build (or take) the model; see the module docstring.

    model: continue training this model instead of building one (its classes must be the
    dataset's). control: cancel/pause/step from another thread (a new one if None).
    """
    settings.config.validate()
    if not 0.0 <= settings.val_fraction < 1.0:
        raise RunError(f"the validation part must be in [0, 1), got {settings.val_fraction}")
    if settings.out is not None:
        check_writable(settings.out)
    _check_images(dataset)
    test_x, test_y = dataset.test_images, dataset.test_labels
    if settings.test_limit is not None:
        test_x, test_y = test_x[: settings.test_limit], test_y[: settings.test_limit]
    if settings.evaluate and len(test_y) == 0:
        raise DatasetError(
            f"{dataset.name}: the test split is empty, so the trained model could not be "
            "evaluated; give each class more images (or a non-empty test/ folder)"
        )
    seeds = np.random.SeedSequence(settings.config.seed).spawn(2)  # weights, validation split
    splits = _split(dataset, settings.val_fraction, np.random.default_rng(seeds[1]))
    if model is None:
        from engine.model import build_model
        from engine.modelsize import check_architecture

        architecture = architecture_for(settings.architecture, dataset)
        check_architecture(architecture, len(dataset.classes))  # by arithmetic, before building
        model = build_model(
            architecture, np.random.default_rng(seeds[0]), classes=list(dataset.classes)
        )
        if model.input_spec.shape[0] == 3:  # a photo model records its photos' statistics
            from engine.inputspec import fitted_to

            model.input_spec = fitted_to(splits[0], model.input_spec.shape)
    elif list(model.classes) != list(dataset.classes):
        raise RunError(
            f"the model knows the classes {_names(model.classes)} but {dataset.name} has "
            f"{_names(dataset.classes)}; start a new model for this dataset"
        )
    control = control if control is not None else TrainControl()
    return TrainingRun(dataset, settings, model, (*splits, test_x, test_y), control, clock)


def _names(classes: list[str]) -> str:
    shown = ", ".join(classes[:6])
    return shown + (f", ... ({len(classes)} in all)" if len(classes) > 6 else "")


def _check_images(dataset: Dataset) -> None:
    images = dataset.train_images
    if images.ndim == 4 and images.shape[1] not in (1, 3):
        raise DatasetError(
            f"{dataset.name}: the images have {images.shape[1]} channels; a network here takes "
            "grey (1 channel) or colour (3 channels) images"
        )
    if len(dataset.train_labels) == 0:
        raise DatasetError(f"{dataset.name}: the training split is empty")


def _split(
    dataset: Dataset, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from engine.datasets import split_validation

    tr_x, tr_y, va_x, va_y = split_validation(
        dataset.train_images, dataset.train_labels, fraction, rng
    )
    if len(tr_y) == 0:
        raise DatasetError(
            f"{dataset.name}: nothing is left to train on after holding out {fraction:.0%} for "
            "validation; use a smaller validation part"
        )
    return tr_x, tr_y, va_x, va_y


__all__ = [
    "RunEnded",
    "RunError",
    "RunSettings",
    "TrainingRun",
    "architecture_for",
    "check_writable",
    "family_name",
    "model_file_path",
    "record_metadata",
    "training_run",
]

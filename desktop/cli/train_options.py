"""The options of ``convscope train``, in four groups: the data, the network, how to train,
the run and its output. Their defaults are the engine's (``TrainConfig``, ``RunSettings``,
``DEFAULT_LR``); :mod:`desktop.cli.train_cmd` runs what they ask for.
"""

from __future__ import annotations

import argparse

from desktop.cli.common import add_classes_argument
from engine.augment import AUGMENTATIONS
from engine.losses import LOSSES
from engine.optim import DEFAULT_LR, OPTIMIZERS
from engine.run import RunSettings
from engine.schedule import SCHEDULES
from engine.training import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options in four groups: the data, the network, how to train, the run and its output.
    Their defaults are the engine's (``TrainConfig``, ``RunSettings``, ``DEFAULT_LR``)."""
    _add_data_arguments(parser.add_argument_group("data"))
    _add_network_arguments(parser, parser.add_argument_group("network"))
    _add_training_arguments(parser.add_argument_group("training"))
    _add_output_arguments(parser.add_argument_group("run and output"))


def _add_data_arguments(group: argparse._ArgumentGroup) -> None:
    from engine.datasets import DEFAULT_DATASET

    group.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"(default {DEFAULT_DATASET}) 'mnist' (bundled), 'cifar4' (bundled photos: "
        "bird, cat, dog, ship), 'fashion-mnist' or 'cifar10' once downloaded, a folder of "
        "IDX files in MNIST layout, of CIFAR-10 binary batches, or with one subfolder of "
        "images per class",
    )
    add_classes_argument(group)
    group.add_argument(
        "--limit", type=int, default=None, metavar="N", help="first N training images only"
    )
    val_fraction = RunSettings().val_fraction
    group.add_argument(
        "--val-fraction",
        type=float,
        default=val_fraction,
        help="part of the training set held out for validation, seeded "
        f"(default {val_fraction:g}; 0 = none)",
    )
    group.add_argument(
        "--augment",
        nargs="?",
        const="auto",
        default=None,
        choices=AUGMENTATIONS,
        help="augment the training images: 'digits' (random shifts, rotations, scale and stroke "
        "width, for real handwriting), 'photos' (random crop with 4 pixels of padding, "
        "horizontal flip), or 'auto' (the default: photos for colour data, digits for gray)",
    )
    group.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="1 = grayscale, 3 = colour (default: the data's own; colour photos stay colour)",
    )


def _add_network_arguments(parser: argparse.ArgumentParser, group: argparse._ArgumentGroup) -> None:
    from engine import architectures
    from engine.archtext import GRAMMAR

    arch = RunSettings().architecture
    one = group.add_mutually_exclusive_group()  # a new network, or a saved one further
    one.add_argument(
        "--arch",
        default=arch,
        metavar="NAME|TEXT|FILE.json",
        help=f"the network: one of {', '.join(architectures.names())} (default {arch}; see "
        "docs/FAMILY.md), a network in the text form below, or a JSON file with the "
        "architecture of a model file",
    )
    one.add_argument(
        "--continue",
        dest="continue_from",
        default=None,
        metavar="MODEL.npz",
        help="train a saved model further instead of a new network (a model file, or "
        "'shipped' / 'photos'), as the Train tab's Continue model does: its weights and "
        "BatchNorm statistics carry on, the optimiser and the schedule start afresh; the "
        "data is read at its input size, its classes picked from the dataset (default --out: "
        "NAME-continued.npz)",
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "--arch text form (layers separated by commas), e.g.\n"
        '  --arch "conv 16 3, relu, maxpool 2, flatten, dense 64, relu, dense 10"\n\n' + GRAMMAR
    )


def _add_training_arguments(group: argparse._ArgumentGroup) -> None:
    d = TrainConfig()
    group.add_argument(
        "--epochs", type=int, default=d.epochs, help=f"passes over the data (default {d.epochs})"
    )
    group.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help=f"images per step (default {d.batch_size})",
    )
    rates = ", ".join(f"{rate:g} for {name}" for name, rate in DEFAULT_LR.items())
    group.add_argument("--lr", type=float, default=None, help=f"learning rate (default: {rates})")
    group.add_argument(
        "--optimizer", choices=OPTIMIZERS, default=d.optimizer, help=f"(default {d.optimizer})"
    )
    group.add_argument(
        "--momentum", type=float, default=d.momentum, help=f"(default {d.momentum:g})"
    )
    group.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    group.add_argument(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help=f"L2 penalty (default {d.weight_decay:g})",
    )
    loss = d.loss.replace("_", "-")
    group.add_argument(
        "--loss",
        choices=tuple(name.replace("_", "-") for name in LOSSES),
        default=loss,
        help=f"cross-entropy or the article's total error 1/2*sum((target-output)^2) "
        f"(default {loss})",
    )
    group.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=d.schedule,
        help="learning-rate schedule over the run: constant, cosine (down to 0), "
        "onecycle (up from lr/25 to lr over 30%% of the steps, then down) "
        f"(default {d.schedule})",
    )
    group.add_argument(
        "--seed", type=int, default=d.seed, help=f"same seed, same model (default {d.seed})"
    )


def _add_output_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--workers",
        type=int,
        default=1,
        help="split each batch over N shards trained in parallel (forked processes on Linux, "
        "threads elsewhere; BatchNorm's shards share the batch's statistics; BLAS gets one "
        "thread each). 2 is fastest on a 2-core machine; the model equals the one of "
        "--workers 1 up to float rounding (default 1)",
    )
    group.add_argument(
        "--out",
        default=None,
        metavar="MODEL.npz",
        help="where to save the model (default: ARCH-DATASET.npz in the current folder)",
    )
    group.add_argument(
        "--save-on-interrupt",
        action="store_true",
        help="on Ctrl+C, save the weights trained so far",
    )
    group.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

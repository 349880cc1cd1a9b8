"""One home for the defaults of a run: the engine's ``RunSettings()`` / ``TrainConfig()`` (what
``convscope train`` does without options), ``FIRST_RUN`` (what the Train tab shows first) and
``DEFAULT_LR`` (the learning rate of each optimiser). The CLI and the tab read them."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from desktop.cli import train_cmd
from desktop.widgets.run_setup import RunSetup
from engine.datasets import DEFAULT_DATASET
from engine.optim import DEFAULT_LR, OPTIMIZERS
from engine.run import FIRST_RUN, RunSettings
from engine.training import TrainConfig


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_cli_defaults_are_the_engine_defaults():
    args = _cli([])
    assert train_cmd._config(args) == TrainConfig()
    assert args.val_fraction == RunSettings().val_fraction
    assert args.arch == RunSettings().architecture
    assert args.limit == RunSettings().limit is None  # all the images
    assert args.augment is None and RunSettings().augment is None
    assert args.dataset == DEFAULT_DATASET


def test_the_tab_starts_at_the_first_run_which_differs_only_in_epochs_and_limit(qtbot):
    setup = RunSetup()
    qtbot.addWidget(setup)
    assert setup.config() == FIRST_RUN.config
    assert setup.validation_fraction() == FIRST_RUN.val_fraction
    assert setup.limit() == FIRST_RUN.limit
    assert setup.architecture() == FIRST_RUN.architecture
    assert setup.augment_combo.currentData() == "none" and FIRST_RUN.augment is None
    assert setup._spec == DEFAULT_DATASET
    # the CLI's defaults but for a shorter first run: 10,000 images, three epochs
    defaults = RunSettings()
    assert FIRST_RUN == replace(
        defaults,
        config=replace(defaults.config, epochs=FIRST_RUN.config.epochs),
        limit=FIRST_RUN.limit,
    )


def test_the_default_optimiser_starts_at_its_engine_rate():
    assert TrainConfig().lr == DEFAULT_LR[TrainConfig().optimizer]


@pytest.mark.parametrize("optimizer", [o for o in OPTIMIZERS if o != TrainConfig().optimizer])
def test_another_optimiser_starts_at_the_engine_rate_in_both(qtbot, monkeypatch, optimizer):
    # a changed rate in the engine's table reaches both: they read it, they keep no copy
    monkeypatch.setitem(DEFAULT_LR, optimizer, DEFAULT_LR[optimizer] * 0.7)
    setup = RunSetup()
    qtbot.addWidget(setup)
    setup.optimizer_combo.setCurrentIndex(setup.optimizer_combo.findData(optimizer))
    args = _cli(["--optimizer", optimizer])
    assert setup.config().lr == pytest.approx(DEFAULT_LR[optimizer])
    assert train_cmd._config(args).lr == pytest.approx(DEFAULT_LR[optimizer])

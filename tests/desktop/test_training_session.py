"""The Train tab's worker job, run synchronously (no thread): the events the GUI receives."""

from __future__ import annotations

import numpy as np

from desktop.training_session import (
    ProbeLoss,
    RunEnded,
    TrainingLog,
    WeightsSnapshot,
    run_job,
)
from engine.datasets import load_dataset
from engine.progress import Progress
from engine.run import RunSettings, training_run
from engine.training import BatchEnd, EpochEnd, Finished, Paused, TrainConfig, TrainControl


def _run(control: TrainControl, epochs: int = 2):
    dataset = load_dataset("mnist", limit=256)
    settings = RunSettings("lenet5", TrainConfig(epochs=epochs, batch_size=64), test_limit=100)
    return training_run(dataset, settings, control=control)


def test_the_job_adds_snapshots_and_ends_with_the_run_ended_event():
    run = _run(TrainControl())
    log = TrainingLog()
    events = list(run_job(run, log, snapshot_interval=1e9, threads=1))
    kinds = [type(e) for e in events]
    batches = kinds.count(BatchEnd)
    assert len(log) == batches == 2 * 4  # every batch logged, 230 training images / 64
    # a snapshot after each epoch and after the training's end; none by time (interval huge)
    after = [kinds[i + 1] for i, k in enumerate(kinds[:-1]) if k in (EpochEnd, Finished)]
    assert after == [WeightsSnapshot] * 3
    assert kinds.index(Finished) < kinds.index(Progress) < kinds.index(RunEnded)
    assert isinstance(events[-1], RunEnded) and events[-1].evaluation.count == 100
    snapshot = [e for e in events if isinstance(e, WeightsSnapshot)][-1].weights
    live = run.model.get_weights()
    assert all(np.array_equal(snapshot[k], live[k]) for k in live)  # the final weights


def test_a_pause_measures_the_probe_loss_and_snapshots():
    control = TrainControl()
    control.step()  # one batch, then pause
    run = _run(control, epochs=1)
    job = run_job(run, TrainingLog(), threads=1)
    first = next(job)
    assert isinstance(first, ProbeLoss) and first.batches == 0  # the loss before the step
    assert isinstance(next(job), BatchEnd)
    while not isinstance(event := next(job), Paused):  # a timed snapshot may come first
        assert isinstance(event, WeightsSnapshot)
    probe = next(job)
    assert isinstance(probe, ProbeLoss) and probe.batches == 1
    assert isinstance(next(job), WeightsSnapshot)
    control.cancel()
    assert isinstance(list(job)[-1], RunEnded)

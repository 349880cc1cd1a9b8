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


def test_snapshots_carry_batchnorm_statistics_so_the_live_view_matches_the_model():
    """The tab's live view is a clone fed with snapshots and runs in evaluation mode, which
    reads BatchNorm's running statistics: snapshots of the weights alone left the clone's at
    their values of the run's start, and its bars and maps differed from the model's."""
    dataset = load_dataset("mnist", limit=96)
    config = TrainConfig(epochs=1, batch_size=32)
    run = training_run(dataset, RunSettings("resnet8", config, test_limit=10))
    view = run.model.clone()
    for event in run_job(run, TrainingLog(), snapshot_interval=1e9, threads=1):
        if isinstance(event, WeightsSnapshot):
            view.set_weights(event.weights)
    live = run.model.state_dict()
    assert int(live["bn1.num_batches_tracked"]) == 3
    assert all(np.array_equal(view.state_dict()[k], live[k]) for k in live)
    x = dataset.test_images[:4]
    np.testing.assert_array_equal(view.predict_proba(x), run.model.predict_proba(x))

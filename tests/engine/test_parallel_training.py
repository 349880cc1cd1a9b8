"""Sharded training steps: threads and forked worker processes give the single-thread result."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from desktop.cli import main as cli_main
from engine.losses import softmax_cross_entropy
from engine.model import lenet5


def _batch(n: int = 64):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return x, y


def _grads_after_step(threads: int, processes: bool) -> tuple[float, dict[str, np.ndarray]]:
    model = lenet5(np.random.default_rng(3))
    model.threads = threads
    model.processes = processes
    x, y = _batch()
    try:
        loss, logits = model.train_step(x, y, softmax_cross_entropy)
        assert logits.shape == (64, 10)
        return loss, {k: g.copy() for k, g in model.gradients().items()}
    finally:
        model.threads = 1  # stops worker processes


def test_sharded_threads_match_one_thread():
    loss1, g1 = _grads_after_step(1, False)
    loss2, g2 = _grads_after_step(2, False)
    assert loss2 == pytest.approx(loss1, rel=1e-5)
    for name in g1:
        np.testing.assert_allclose(g2[name], g1[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process shards need fork")
def test_process_shards_equal_thread_shards_bit_for_bit():
    loss_t, g_t = _grads_after_step(2, False)
    loss_p, g_p = _grads_after_step(2, True)
    assert loss_p == loss_t
    for name in g_t:
        np.testing.assert_array_equal(g_p[name], g_t[name], err_msg=name)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process shards need fork")
def test_shard_processes_poll_only_while_each_has_a_core(monkeypatch):
    # polling between batches keeps a process's core awake; with more shard processes than
    # cores a polling process would take a working one's core, so they sleep in recv instead
    from engine import shards

    monkeypatch.setattr(shards.os, "sched_getaffinity", lambda pid: {0, 1})
    assert shards._spin_seconds(2) == shards.SPIN_SECONDS > 0
    assert shards._spin_seconds(3) == 0.0
    model = lenet5(np.random.default_rng(0))
    model.threads, model.processes = 4, True  # four processes on two cores: no polling
    x = np.random.default_rng(1).random((32, 1, 28, 28), dtype=np.float32)
    loss, _ = model.train_step(x, np.arange(32) % 10, softmax_cross_entropy)
    assert model._shards._workers.spin == 0.0 and np.isfinite(loss)
    model.threads = 1  # stops the workers


def test_cli_train_with_two_workers_saves_a_model(tmp_path, capsys):
    out = tmp_path / "w2.npz"
    rc = cli_main(
        ["train", "--limit", "640", "--val-fraction", "0", "--workers", "2", "--out", str(out)]
    )
    assert rc == 0, capsys.readouterr().err
    assert out.is_file()


def test_cli_refuses_silly_worker_counts(capsys):
    assert cli_main(["train", "--workers", "0", "--limit", "64"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_cli_trains_a_batchnorm_network_with_two_workers(tmp_path, capsys):
    """BatchNorm with --workers 2: worker processes sharing the batch's statistics, not a
    refusal; the running statistics the file keeps moved from their start."""
    from engine.modelfile import load_model

    out = tmp_path / "bn.npz"
    arch = "conv 8 3, batchnorm, relu, maxpool 2, flatten, dense 10"
    args = ["train", "--limit", "256", "--val-fraction", "0", "--epochs", "1", "--workers", "2"]
    rc = cli_main([*args, "--arch", arch, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    state = load_model(out).state_dict()
    mean = next(v for k, v in state.items() if k.endswith("running_mean"))
    assert np.abs(mean).max() > 0


BN_NET = "conv 8 3, batchnorm, relu, maxpool 2, flatten, dense 10"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process shards need fork")
@pytest.mark.parametrize(("arch", "mid_batch"), [("lenet5", False), (BN_NET, True)])
def test_a_killed_worker_process_is_one_engine_error_and_the_next_step_trains(
    arch, mid_batch, monkeypatch
):
    """The system's out-of-memory killer (SIGKILL) takes a shard process, between two batches
    or in the middle of one (after a BatchNorm's forward exchange, so the caller waits for it at
    that BatchNorm's backward): the step raises WorkerDied saying so, and the next step starts
    new workers."""
    import os
    import signal as signals

    from engine.architectures import choose
    from engine.errors import WorkerDied
    from engine.layers import ReLU
    from engine.model import build_model

    model = build_model(choose(arch).architecture(10), np.random.default_rng(0))
    model.threads, model.processes = 2, True
    x, y = _batch(33)  # shards of 16 (this process) and 17 (the worker)
    relu = ReLU.forward

    def dying(self, a, *args, **kwargs):
        if kill_at_17[0] and a.shape[0] == 17:
            os.kill(os.getpid(), signals.SIGKILL)
        return relu(self, a, *args, **kwargs)

    kill_at_17 = [mid_batch]
    monkeypatch.setattr(ReLU, "forward", dying)
    try:
        if not mid_batch:
            model.train_step(x, y, softmax_cross_entropy)
            (proc,) = model._shards._workers.procs
            os.kill(proc.pid, signals.SIGKILL)
            proc.join()
        with pytest.raises(WorkerDied, match=r"killed \(SIGKILL, as when memory runs out\)"):
            model.train_step(x, y, softmax_cross_entropy)
        kill_at_17[0] = False  # the next workers are forked from here: they live
        loss, _ = model.train_step(x, y, softmax_cross_entropy)
        assert np.isfinite(loss) and model._shards._workers.procs[0].is_alive()
    finally:
        model.threads = 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process shards need fork")
def test_a_worker_whose_caller_vanished_at_a_batchnorm_ends_quietly(capfd):
    """The caller dies (killed) while a worker waits for a BatchNorm's sums: the worker ends
    with status 0 and no traceback on the terminal."""
    from engine.architectures import choose
    from engine.model import build_model

    model = build_model(choose(BN_NET).architecture(10), np.random.default_rng(0))
    model.threads, model.processes = 2, True
    x, y = _batch(32)
    try:
        model.train_step(x, y, softmax_cross_entropy)  # the worker is up
        shards = model._shards
        workers = shards._workers
        shards._prepare(32, {})
        workers.start(x, y, shards.bounds[1:], 32, {})
        assert isinstance(workers.conns[0].recv(), np.ndarray)  # its first BatchNorm's sums
        workers.conns[0].close()  # ... and the caller is gone
        (proc,) = workers.procs
        proc.join(30)
        assert proc.exitcode == 0
        assert "Traceback" not in capfd.readouterr().err
    finally:
        model.threads = 1

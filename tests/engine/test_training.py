"""The training generator: determinism, learning, cancel/pause/step, divergence, memory."""

from __future__ import annotations

import gzip
import math
import queue
import threading
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DatasetError, ShapeError
from engine.evaluation import evaluate
from engine.model import InputSpec, lenet5
from engine.training import (
    BatchEnd,
    Cancelled,
    Diverged,
    EpochEnd,
    Finished,
    Paused,
    Resumed,
    TrainConfig,
    TrainConfigError,
    TrainControl,
    train,
)

MNIST = Path(__file__).resolve().parents[2] / "resources" / "datasets" / "mnist"


def mnist_slice(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` bundled MNIST training images (uint8) and labels."""
    with gzip.open(MNIST / "train-images-idx3-ubyte.gz") as f:
        f.read(16)
        images = np.frombuffer(f.read(n * 784), np.uint8).reshape(n, 28, 28)
    with gzip.open(MNIST / "train-labels-idx1-ubyte.gz") as f:
        f.read(8)
        labels = np.frombuffer(f.read(n), np.uint8).astype(np.int64)
    return images, labels


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return mnist_slice(3000)


def _model(seed: int = 0):
    return lenet5(np.random.default_rng(seed))


def _small(digits, n=256):
    return digits[0][:n], digits[1][:n]


def test_same_seed_same_weights_bit_for_bit(digits):
    x, y = _small(digits)
    runs = []
    for seed in (5, 5, 6):
        model = _model()
        list(train(model, x, y, TrainConfig(epochs=2, batch_size=64, seed=seed)))
        runs.append(model.get_weights())
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_training_learns_mnist_and_reports_consistent_numbers(digits):
    x, y = digits[0][:2000], digits[1][:2000]
    vx, vy = digits[0][2000:], digits[1][2000:]
    model = _model()
    before = evaluate(model, vx, vy).accuracy
    events = list(train(model, x, y, TrainConfig(epochs=2, seed=1), val_images=vx, val_labels=vy))

    batches = [e for e in events if isinstance(e, BatchEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(batches) == 2 * 32 and batches[0].batches_per_epoch == 32  # ceil(2000/64)
    assert [e.batch for e in batches[:3]] == [1, 2, 3] and batches[-1].epoch == 2
    assert batches[-1].samples_seen == batches[-1].samples_total == 4000
    assert batches[-1].samples_per_second > 0
    assert isinstance(events[-1], Finished) and len(epochs) == 2

    after = evaluate(model, vx, vy)
    assert before < 0.3 and after.accuracy > 0.85, (before, after.accuracy)
    # the epoch summary's validation numbers are those evaluate() finds on the same images
    assert epochs[-1].val_accuracy == pytest.approx(after.accuracy)
    assert epochs[-1].val_loss == pytest.approx(after.loss, rel=1e-4)
    assert epochs[1].train_loss < epochs[0].train_loss
    # train_accuracy is the mean over the epoch's batches
    assert epochs[1].train_accuracy == pytest.approx(batches[-1].running_accuracy)

    history = model.meta["history"]
    assert history["status"] == "finished" and history == events[-1].history
    assert len(history["batch_loss"]) == 64 and history["batch_loss"][0] == pytest.approx(
        batches[0].loss, rel=1e-4
    )
    assert [h["epoch"] for h in history["epochs"]] == [1, 2]
    assert history["config"]["seed"] == 1


class TickClock:
    """A clock that advances one second per reading: a batch takes 1 s, a validation pass 1 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_speed_and_eta_follow_the_injected_clock(digits):
    x, y = _small(digits, 128)  # 4 batches of 32 per epoch
    vx, vy = digits[0][1000:1100], digits[1][1000:1100]
    events = list(
        train(_model(), x, y, TrainConfig(epochs=2, batch_size=32), val_images=vx,
              val_labels=vy, clock=TickClock())
    )  # fmt: skip
    batches = [e for e in events if isinstance(e, BatchEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [b.samples_per_second for b in batches] == [32.0] * 8  # 32 images per 1 s batch
    # before the first validation is timed, it is guessed at a third of a training step per
    # image (100 / (3 * 32) s); then it is known (1 s)
    guess = 100 / (3 * 32)
    assert batches[0].eta_seconds == pytest.approx(7 + 2 * guess)
    assert batches[3].eta_seconds == pytest.approx(4 + 2 * guess)
    assert batches[4].eta_seconds == pytest.approx(3 + 1)
    assert batches[-1].eta_seconds == pytest.approx(1)  # only the last validation is left
    assert [e.seconds for e in epochs] == [5.0, 5.0]  # 4 batches + 1 validation


def test_total_error_loss_also_learns(digits):
    x, y = _small(digits, 1000)
    model = _model()
    config = TrainConfig(epochs=2, loss="total_error", seed=2)
    events = list(train(model, x, y, config))
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    last_batch = [e for e in events if isinstance(e, BatchEnd)][-1]
    assert last_batch.eta_seconds == 0  # no validation: nothing left
    # it learns, slowly (the article's squared error on softmax has small gradients)
    assert 0 < epochs[1].train_loss < epochs[0].train_loss < 1
    assert epochs[1].train_accuracy > 0.3


def test_cancel_stops_after_the_current_batch(digits):
    x, y = _small(digits)
    model = _model()
    control = TrainControl()
    gen = train(model, x, y, TrainConfig(epochs=3, batch_size=16), control=control)
    for event in gen:
        if isinstance(event, BatchEnd) and event.batch == 3:
            weights = model.get_weights()
            control.cancel()
            break
    rest = list(gen)
    assert rest == [Cancelled(1, 3)]
    assert rest[0].history["status"] == "cancelled"
    assert len(rest[0].history["batch_loss"]) == 3
    now = model.get_weights()
    assert all(np.array_equal(weights[k], now[k]) for k in now)


def test_pause_and_step_sequence(digits):
    x, y = _small(digits, 128)  # 8 batches of 16
    control = TrainControl()
    gen = train(_model(), x, y, TrainConfig(batch_size=16), control=control)
    kinds = []

    def take() -> object:
        event = next(gen)
        kinds.append((type(event).__name__, getattr(event, "batch", None)))
        return event

    take()  # batch 1
    control.pause()
    take()  # Paused after batch 1
    control.step()
    take()  # batch 2
    take()  # Paused again
    control.step()
    control.step()  # two steps queued: two batches
    take()
    take()
    take()  # Paused after batch 4
    control.resume()
    take()  # Resumed
    take()  # batch 5: running again
    assert kinds == [
        ("BatchEnd", 1),
        ("Paused", 1),
        ("BatchEnd", 2),
        ("Paused", 2),
        ("BatchEnd", 3),
        ("BatchEnd", 4),
        ("Paused", 4),
        ("Resumed", 4),
        ("BatchEnd", 5),
    ]
    assert not control.paused
    # step() while running = run one more batch, then pause
    control.step()
    assert isinstance(take(), BatchEnd) and kinds[-1] == ("BatchEnd", 6)
    assert take() == Paused(1, 6)
    control.cancel()  # cancelling a paused run ends it
    assert take() == Cancelled(1, 6)
    assert list(gen) == []


def test_pause_blocks_a_worker_thread_until_step_resume_or_cancel(digits):
    """The generator runs in a worker thread; the test thread drives it with handshakes."""
    x, y = _small(digits, 512)  # 32 batches of 16
    control = TrainControl()
    gen = train(_model(), x, y, TrainConfig(epochs=3, batch_size=16), control=control)
    events: queue.Queue = queue.Queue()
    first_batch = threading.Event()

    def worker() -> None:
        for event in gen:
            events.put(event)
            if isinstance(event, BatchEnd) and event.batch == 1:
                control.pause()  # pause requested from the worker's own loop
                first_batch.set()
        events.put(None)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    assert first_batch.wait(30)

    def get() -> object:
        return events.get(timeout=30)

    assert isinstance(get(), BatchEnd)
    assert get() == Paused(1, 1)
    # the worker is now blocked inside the generator: nothing more arrives until we act
    assert events.empty() and thread.is_alive()
    control.step()
    assert get().batch == 2
    assert get() == Paused(1, 2)
    assert events.empty()
    control.resume()
    assert get() == Resumed(1, 2)
    assert get().batch == 3
    control.pause()
    while not isinstance(event := get(), Paused):
        assert isinstance(event, BatchEnd)
    control.cancel()
    assert isinstance(get(), Cancelled)
    assert get() is None
    thread.join(30)
    assert not thread.is_alive()


def test_exploding_learning_rate_ends_with_diverged_and_finite_weights(digits):
    x, y = _small(digits, 512)
    model = _model()
    initial = model.get_weights()
    events = list(train(model, x, y, TrainConfig(lr=10, optimizer="sgd", batch_size=32)))
    last = events[-1]
    assert isinstance(last, Diverged), last
    assert "learning rate 10 is probably too high" in last.message
    assert f"at epoch 1 batch {last.batch}" in last.message
    assert "restored to those at the start of training" in last.message
    assert not any(isinstance(e, (Finished, EpochEnd)) for e in events)
    now = model.get_weights()
    assert all(np.isfinite(v).all() for v in now.values())
    assert all(np.array_equal(initial[k], now[k]) for k in now)
    assert model.meta["history"]["status"] == "diverged"


@pytest.mark.parametrize("threads", [1, 2])
def test_an_overflowing_run_diverges_in_one_message_without_numpy_warnings(digits, threads):
    # --lr 1e308 overflowed the optimiser's float32 step, then every layer: NumPy printed four
    # RuntimeWarnings (file, line, code) on stderr around the one line saying it diverged
    x, y = _small(digits, 128)
    model = _model()
    model.threads = threads
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in the shards' threads too
        events = list(train(model, x, y, TrainConfig(lr=1e308, batch_size=32)))
    model.threads = 1
    assert isinstance(events[-1], Diverged)
    assert "learning rate 1e+308 is probably too high" in events[-1].message
    assert np.geterr()["invalid"] == "warn"  # the caller's own policy is left as it was


def test_nan_loss_restores_the_last_snapshot(digits):
    x, y = _small(digits, 256)
    model = _model()
    config = TrainConfig(batch_size=16, snapshot_every=2)
    gen = train(model, x, y, config)
    after = {}
    for event in gen:
        after[event.batch] = model.get_weights()
        if event.batch == 5:
            model.parameters()["fc3.bias"][3] = np.nan  # a broken update
            break
    (diverged,) = list(gen)
    assert isinstance(diverged, Diverged)
    assert (diverged.epoch, diverged.batch) == (1, 6)
    assert diverged.message.startswith("loss became NaN at epoch 1 batch 6; the learning rate")
    assert "weights restored to those after epoch 1 batch 4" in diverged.message
    now = model.get_weights()
    assert all(np.array_equal(after[4][k], now[k]) for k in now)


def test_non_finite_weights_at_the_end_of_an_epoch_are_caught(digits):
    x, y = _small(digits, 64)
    model = _model()
    gen = train(model, x, y, TrainConfig(epochs=2, batch_size=32))
    assert next(gen).batch == 1
    assert next(gen).batch == 2  # the last batch of epoch 1
    model.parameters()["conv1.weight"][0, 0, 0, 0] = np.inf
    (diverged,) = list(gen)
    assert isinstance(diverged, Diverged)
    assert "weights became NaN or infinite" in diverged.message
    assert all(np.isfinite(v).all() for v in model.get_weights().values())


@dataclass(frozen=True)
class SpySpec(InputSpec):
    """An InputSpec that records the size and dtype of every batch it converts."""

    calls: list = None  # type: ignore[assignment]

    def to_tensor(self, images: np.ndarray) -> np.ndarray:
        self.calls.append((len(images), images.dtype))
        return super().to_tensor(images)


def test_batches_are_converted_one_at_a_time_from_uint8(digits):
    x, y = _small(digits, 300)
    vx, vy = digits[0][300:1400], digits[1][300:1400]
    model = _model()
    model.input_spec = SpySpec(calls=[])
    list(train(model, x, y, TrainConfig(batch_size=50), val_images=vx, val_labels=vy))
    check, *calls = model.input_spec.calls
    assert check == (1, np.uint8)  # train() tries one image up front (a ShapeError at the call)
    train_calls, val_calls = calls[:6], calls[6:]
    assert train_calls == [(50, np.uint8)] * 6
    assert [n for n, _ in val_calls] == [500, 500, 100]
    assert all(dtype == np.uint8 for _, dtype in calls)


def test_memory_is_flat_across_epochs(digits):
    x, y = digits[0][:512], digits[1][:512]
    model = _model()
    gen = train(model, x, y, TrainConfig(epochs=3, batch_size=64))
    tracemalloc.start()
    try:
        next(gen)
        next(gen)  # steady state: one batch's caches alive while the next one is computed
        first_batch_peak = tracemalloc.get_traced_memory()[1]
        current = []
        for event in gen:
            if isinstance(event, EpochEnd):
                current.append(tracemalloc.get_traced_memory()[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # after the first epoch nothing grows but the loss history (8 floats an epoch)
    assert current[2] - current[0] < 10_000, current
    # the whole run needs no more than its first two batches did: a float copy of the data would
    # add 512*784*4 = 1.6 MB
    assert peak - first_batch_peak < 400_000, (peak, first_batch_peak)


def test_augment_sees_each_uint8_batch_and_keeps_runs_reproducible(digits):
    x, y = _small(digits, 96)
    seen = []

    def shift(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seen.append((batch.shape, batch.dtype))
        return np.roll(batch, int(rng.integers(-2, 3)), axis=2)

    weights = []
    for _ in range(2):
        model = _model()
        list(train(model, x, y, TrainConfig(batch_size=32), augment=shift))
        weights.append(model.get_weights())
    assert seen[:3] == [((32, 28, 28), np.uint8)] * 3
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_bad_settings_and_data_are_refused_at_the_call(digits):
    x, y = _small(digits, 64)
    model = _model()
    with pytest.raises(TrainConfigError, match="learning rate"):
        train(model, x, y, TrainConfig(lr=-1))
    with pytest.raises(TrainConfigError, match="batch size"):
        train(model, x, y, TrainConfig(batch_size=0))
    with pytest.raises(TrainConfigError, match="optimizer"):
        train(model, x, y, TrainConfig(optimizer="rmsprop"))
    with pytest.raises(DatasetError, match="uint8"):
        train(model, x.astype(np.float32), y, TrainConfig())
    with pytest.raises(DatasetError, match="10 classes"):
        train(model, x, y + 5, TrainConfig())
    with pytest.raises(ShapeError, match="3 channel"):
        train(model, np.zeros((4, 3, 28, 28), np.uint8), y[:4], TrainConfig())
    with pytest.raises(DatasetError, match="both"):
        train(model, x, y, TrainConfig(), val_images=x)
    assert math.isfinite(sum(float(v.sum()) for v in model.get_weights().values()))


def test_total_error_with_a_huge_learning_rate_is_caught_by_the_weights(digits):
    """The article's total error never exceeds 1, so the loss alone never shows this run blowing
    up: the weights grow to about 1e6 while the network sits at chance."""
    x, y = _small(digits, 256)
    model = _model()
    initial = model.get_weights()
    config = TrainConfig(epochs=3, lr=1e6, loss="total_error", batch_size=32)
    events = list(train(model, x, y, config))
    last = events[-1]
    assert isinstance(last, Diverged), last
    assert "weights exploded" in last.message and "learning rate 1e+06" in last.message
    assert not any(isinstance(e, EpochEnd) for e in events)  # caught in the first epoch
    now = model.get_weights()
    assert all(np.array_equal(initial[k], now[k]) for k in now)


def test_a_network_at_chance_after_its_weights_blew_up_is_diverged(digits, monkeypatch):
    """Below the absolute weight limit, a dead network (chance accuracy, weights grown many
    times) still ends the run, at the epoch's end; a slow but sound network does not."""
    import engine.training as training

    monkeypatch.setattr(training, "WEIGHT_LIMIT", 1e12)
    x, y = _small(digits, 256)
    model = _model()
    events = list(train(model, x, y, TrainConfig(epochs=2, lr=1e6, loss="total_error")))
    assert isinstance(events[-1], Diverged)
    assert "accuracy stays at chance" in events[-1].message
    slow = list(train(_model(), x, y, TrainConfig(epochs=1, lr=1e-4, optimizer="sgd")))
    assert isinstance(slow[-1], Finished)


def test_weight_decay_divergence_advice_names_the_weight_decay(digits):
    x, y = _small(digits, 256)
    config = TrainConfig(epochs=2, lr=0.01, weight_decay=300.0, batch_size=32)
    events = list(train(_model(), x, y, config))
    message = events[-1].message
    assert isinstance(events[-1], Diverged)
    assert "weight decay 300 is too strong" in message and "try weight decay 10" in message
    assert "learning rate 0.01 is probably too high" not in message


def test_a_last_batch_of_one_joins_the_one_before_when_batchnorm_sees_1x1_maps():
    """BatchNorm on 1x1 maps has one value per channel in a batch of one (no variance;
    PyTorch refuses it too): a last batch of one sample joins the batch before it, so the
    run finishes with every sample seen instead of failing at the end of the epoch."""
    from engine.archtext import to_spec
    from engine.model import build_model

    spec = to_spec(
        "conv 4 3 stride 2, conv 4 3 stride 2, conv 4 3 stride 2, bn, relu", (1, 8, 8), 3
    )
    model = build_model(spec, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (21, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, 21)
    events = list(train(model, images, labels, TrainConfig(epochs=2, batch_size=10)))
    assert isinstance(events[-1], Finished)
    ends = [e for e in events if isinstance(e, BatchEnd)]
    assert [e.batch for e in ends] == [1, 2, 1, 2] and {e.batches_per_epoch for e in ends} == {2}
    assert [e.samples_seen for e in ends] == [10, 21, 31, 42]
    assert int(model.buffers()["bn1.num_batches_tracked"]) == 4
    # maps larger than 1x1 keep the last batch of one as it is
    wide = build_model(to_spec("conv 4 3, bn, relu", (1, 8, 8), 3), np.random.default_rng(0))
    ends = [
        e
        for e in train(wide, images, labels, TrainConfig(batch_size=10))
        if isinstance(e, BatchEnd)
    ]
    assert [e.batch for e in ends] == [1, 2, 3]


def test_batches_of_one_on_1x1_batchnorm_maps_are_refused_at_the_call():
    """A batch size of 1, or a single training image, cannot train a BatchNorm on 1x1 maps.
    It failed at the first batch, after the run had begun, telling a user with batch 64 and
    one image to "train with a batch of 2 or more"; now the call says what is wrong."""
    from engine.archtext import to_spec
    from engine.model import build_model

    spec = to_spec("conv 4 3 stride 2, conv 4 3 stride 2, conv 4 3 stride 2, bn", (1, 8, 8), 3)
    model = build_model(spec, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, 5)
    with pytest.raises(TrainConfigError, match=r"^batch size 1 cannot train this network: bn1 "):
        train(model, images, labels, TrainConfig(batch_size=1))
    with pytest.raises(DatasetError, match=r"^only 1 training image: bn1 normalises 1x1 maps"):
        train(model, images[:1], labels[:1], TrainConfig())
    assert int(model.buffers()["bn1.num_batches_tracked"]) == 0
    assert isinstance(list(train(model, images[:2], labels[:2], TrainConfig()))[-1], Finished)


def test_batchnorm_statistics_that_overflow_end_the_run_with_them_restored():
    """A running variance can overflow float32 while every weight is still finite (a
    convolution's outputs near 1e19). The run had finished and its file did not load again
    ("bn1.running_var contains NaN or infinite values"); now it has diverged, and the
    statistics are the last good ones."""
    from engine.archtext import to_spec
    from engine.model import build_model

    model = build_model(to_spec("conv 4 3, bn, relu", (1, 8, 8), 3), np.random.default_rng(0))
    model.parameters()["conv1.weight"][...] *= np.float32(3e18)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, 20)
    events = list(train(model, images, labels, TrainConfig(batch_size=4)))
    assert isinstance(events[-1], Diverged)
    message = events[-1].message
    assert "the BatchNorm statistics became NaN or infinite (bn1.running_var)" in message
    assert message.endswith(
        "weights and BatchNorm statistics restored to those at the start of training"
    )
    buffers = model.buffers()
    assert np.all(buffers["bn1.running_var"] == 1) and int(buffers["bn1.num_batches_tracked"]) == 0

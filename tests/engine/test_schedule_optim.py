"""Learning-rate schedules, weight decay and Nesterov momentum, checked by hand and against
PyTorch (those comparisons are skipped where torch is not installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.model import build_model
from engine.optim import SGD, Adam
from engine.schedule import SCHEDULES, learning_rate
from engine.training import Finished, TrainConfig, TrainConfigError, train


def test_schedules_by_hand():
    assert [learning_rate("constant", 0.1, s, 10) for s in (0, 9)] == [0.1, 0.1]
    cos = [learning_rate("cosine", 0.1, s, 4) for s in range(4)]
    assert cos == pytest.approx(
        [
            0.1,
            0.1 * (1 + math.cos(math.pi / 4)) / 2,
            0.05,
            0.1 * (1 + math.cos(3 * math.pi / 4)) / 2,
        ]
    )
    one = [learning_rate("onecycle", 1.0, s, 100) for s in range(100)]
    assert one[0] == pytest.approx(1 / 25) and max(one) == pytest.approx(1.0)
    assert int(np.argmax(one)) == 29 and one[-1] == pytest.approx(1 / 25 / 1e4)
    rising, falling = np.diff(one[:30]), np.diff(one[29:])
    assert (rising > 0).all() and (falling < 0).all()
    with pytest.raises(TrainConfigError, match="schedule"):
        TrainConfig(schedule="step").validate()


@pytest.mark.parametrize("name", ["cosine", "onecycle"])
def test_schedules_match_torch(name):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.2, momentum=0.9)
    if name == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=37)
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.2, total_steps=37, cycle_momentum=False
        )
    for step in range(37):
        assert learning_rate(name, 0.2, step, 37) == pytest.approx(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()


def test_training_applies_the_schedule_every_batch(rng, monkeypatch):
    import engine.optim as optim

    seen = []
    real = optim.SGD.step

    def spy(self, grads):
        seen.append(self.lr)
        real(self, grads)

    monkeypatch.setattr(optim.SGD, "step", spy)
    model = build_model("lenet5", np.random.default_rng(0))
    x = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    y = np.arange(40) % 10
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, schedule="cosine")
    events = list(train(model, x, y, config))
    assert isinstance(events[-1], Finished)
    assert seen == pytest.approx([learning_rate("cosine", 0.05, s, 6) for s in range(6)])
    assert model.meta["history"]["config"]["schedule"] == "cosine"


def _steps(opt, p, grads):
    out = []
    for g in grads:
        opt.step({"w": g})
        out.append(p.copy())
    return out


def test_weight_decay_and_nesterov_by_hand():
    p = np.array([1.0, -2.0], np.float64)
    g = np.array([0.5, 0.5])
    _steps(SGD({"w": p}, lr=0.1, weight_decay=0.01), p, [g])
    np.testing.assert_allclose(p, [1 - 0.1 * (0.5 + 0.01), -2 - 0.1 * (0.5 - 0.02)])
    p = np.array([1.0], np.float64)
    opt = SGD({"w": p}, lr=0.1, momentum=0.9, nesterov=True)
    _steps(opt, p, [np.array([1.0]), np.array([1.0])])
    # step 1: v = g = 1, p -= 0.1 * (g + 0.9 v) = 0.19; step 2: v = 0.9 + 1 = 1.9,
    # p -= 0.1 * (1 + 0.9 * 1.9) = 0.271
    np.testing.assert_allclose(p, [1 - 0.19 - 0.271])


@pytest.mark.parametrize(
    "kind, kw",
    [
        ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
        ("sgd", {"momentum": 0.5, "weight_decay": 0.1}),
        ("sgd", {"weight_decay": 0.3}),
        ("adam", {"weight_decay": 0.05}),
    ],
)
def test_weight_decay_and_nesterov_match_torch(kind, kw, rng):
    torch = pytest.importorskip("torch")
    start = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(6)]
    p = start.copy()
    ours = SGD({"w": p}, lr=0.1, **kw) if kind == "sgd" else Adam({"w": p}, lr=0.1, **kw)
    mine = _steps(ours, p, grads)
    tp = torch.nn.Parameter(torch.tensor(start))
    topt = (torch.optim.SGD if kind == "sgd" else torch.optim.Adam)([tp], lr=0.1, **kw)
    for g, expected in zip(grads, mine, strict=True):
        tp.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(expected, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_schedule_names():
    assert SCHEDULES == ("constant", "cosine", "onecycle")

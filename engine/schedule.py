"""Learning-rate schedules: the rate of each optimiser step over a run.

``learning_rate(schedule, base_lr, step, total)`` for step ``0 .. total-1`` (one step per batch,
``total = epochs * batches per epoch``):

* ``"constant"``: ``base_lr`` throughout.
* ``"cosine"``: ``base_lr * (1 + cos(pi * step / total)) / 2``, from ``base_lr`` down towards
  0 (PyTorch's ``CosineAnnealingLR`` with ``T_max = total``, ``eta_min = 0``).
* ``"onecycle"``: Smith's one-cycle policy as PyTorch's ``OneCycleLR`` (``max_lr = base_lr``,
  ``pct_start = 0.3``, cosine annealing, ``div_factor = 25``, ``final_div_factor = 1e4``,
  momentum not cycled): a cosine rise from ``base_lr/25`` to ``base_lr`` over the first 30% of
  the steps, then a cosine fall to ``base_lr/25/1e4``.
"""

from __future__ import annotations

import math

from engine.errors import EngineError

__all__ = ["SCHEDULES", "learning_rate"]

SCHEDULES = ("constant", "cosine", "onecycle")
_PCT_START, _DIV, _FINAL_DIV = 0.3, 25.0, 1e4


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def learning_rate(schedule: str, base_lr: float, step: int, total: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total`` (see the module docstring)."""
    if schedule == "constant":
        return base_lr
    if schedule not in SCHEDULES:
        raise EngineError(f"unknown schedule {schedule!r}; choose {', '.join(SCHEDULES)}")
    total = max(int(total), 1)
    step = min(max(int(step), 0), total - 1)
    if schedule == "cosine":
        return base_lr * (1 + math.cos(math.pi * step / total)) / 2
    initial = base_lr / _DIV
    end1 = float(_PCT_START * total) - 1
    end2 = float(total - 1)
    if step <= end1:
        return _cos(initial, base_lr, step / end1 if end1 > 0 else 1.0)
    return _cos(base_lr, initial / _FINAL_DIV, (step - end1) / max(end2 - end1, 1e-12))

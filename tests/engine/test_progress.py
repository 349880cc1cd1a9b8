"""engine.progress.run_through: long work driven to its end, its progress reported."""

from __future__ import annotations

from engine.progress import Progress, run_through


def _work(n: int, result: object):
    for i in range(1, n + 1):
        yield Progress("count", i, n)
    if result is not None:
        yield result


def test_every_progress_is_reported_and_the_result_returned():
    seen: list[tuple[int, int]] = []
    assert run_through(_work(3, "done"), lambda p: seen.append((p.done, p.total))) == "done"
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_work_that_ends_without_a_result_gives_none():
    assert run_through(_work(2, None)) is None  # cancelled: no report asked for, none made

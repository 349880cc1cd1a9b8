"""Training inside the Train tab vs the bare engine generator vs ``convscope train``.

Runs offscreen. For each repeat it trains LeNet-5 with the same settings three ways and prints
medians:

- **bare**: ``engine.training.train()`` looped in this process, no Qt (**bare1**: the same with
  BLAS limited to ``BLAS_THREADS``, all cores but one, as the app does while training);
- **app**: the Train tab of a 1280x820 MainWindow (live charts, activations, filters);
  **probe**: the same run with a 10 ms QTimer probe in the GUI thread measuring the longest gap
  between its ticks (a stall); the probe's own wake-ups cost some throughput;
- **cli**: ``convscope train --json`` in a subprocess (its own samples/s figure); **cli1** the
  same with ``OPENBLAS_NUM_THREADS=BLAS_THREADS``.

Throughput is samples per second: the engine's own figure (batch time only, as the CLI reports
it) and the wall-clock one (training images x epochs / seconds from start to ``Finished``).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/gui_training.py [--limit 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from desktop.training_session import BLAS_THREADS


def bare_run(limit: int, epochs: int, batch: int, threads: int | None = None) -> dict:
    from desktop.training_session import blas_threads

    with blas_threads(threads):
        return _bare_run(limit, epochs, batch)


def _bare_run(limit: int, epochs: int, batch: int) -> dict:
    from engine.datasets import load_dataset, split_validation
    from engine.model import build_model
    from engine.training import BatchEnd, TrainConfig, train

    data = load_dataset("mnist", limit=limit)
    tr_x, tr_y, va_x, va_y = split_validation(
        data.train_images, data.train_labels, 0.1, np.random.default_rng(0)
    )
    model = build_model("lenet5", np.random.default_rng(0), classes=data.classes)
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=0.01, optimizer="momentum")
    t0 = time.perf_counter()
    last = None
    for event in train(model, tr_x, tr_y, config, val_images=va_x, val_labels=va_y):
        if isinstance(event, BatchEnd):
            last = event
    seconds = time.perf_counter() - t0
    return {"engine": last.samples_per_second, "wall": len(tr_y) * epochs / seconds}


def cli_run(limit: int, epochs: int, batch: int, threads: int | None = None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "m.npz"
        cmd = [
            sys.executable,
            "-m",
            "desktop.cli",
            "train",
            "--limit",
            str(limit),
            "--epochs",
            str(epochs),
            "--batch-size",
            str(batch),
            "--json",
            "--out",
            str(out),
        ]
        code = "import sys; from desktop.cli import main; sys.exit(main(sys.argv[1:]))"
        env = dict(os.environ)
        if threads is not None:
            env["OPENBLAS_NUM_THREADS"] = str(threads)
        done = subprocess.run(
            [sys.executable, "-c", code, *cmd[3:]],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
    summary = json.loads(done.stdout)
    n = round(limit * 0.9) * epochs
    return {"engine": summary["samples_per_second"], "wall": n / summary["seconds"]}


class AppRunner:
    """One MainWindow reused for every in-app run."""

    def __init__(self, limit: int, epochs: int, batch: int) -> None:
        from PySide6.QtCore import QEventLoop, QSettings, QTimer
        from PySide6.QtWidgets import QApplication

        import desktop.qt_compat  # noqa: F401  (binding work-arounds, as the app applies them)

        self.app = QApplication.instance() or QApplication([])
        from desktop.main_window import MainWindow

        self._folder = tempfile.TemporaryDirectory()
        settings = QSettings(str(Path(self._folder.name) / "s.ini"), QSettings.Format.IniFormat)
        self.window = MainWindow(settings=settings)
        self.window.resize(1280, 820)
        self.window.show()
        self.window.tabs.setCurrentWidget(self.window.train_tab)
        self.tab = self.window.train_tab
        self.QEventLoop, self.QTimer = QEventLoop, QTimer
        self.tab.setup.set_source("mnist", limit)
        self._wait(
            lambda: (
                self.tab.start_button.isEnabled()
                and len(self.tab.setup.dataset.train_labels) == limit
            )
        )
        self.tab.setup.epochs_spin.setValue(epochs)
        self.tab.setup.batch_spin.setValue(batch)
        self.tab.test_limit = 1000
        self.refresh_ms: list[float] = []
        original = self.tab.live.refresh

        def timed() -> None:
            t = time.perf_counter()
            original()
            self.refresh_ms.append(1000 * (time.perf_counter() - t))

        self.tab.live.refresh = timed

    def _wait(self, predicate, timeout: float = 300.0) -> None:
        loop = self.QEventLoop()
        timer = self.QTimer()
        timer.setInterval(20)
        start = time.perf_counter()
        timer.timeout.connect(
            lambda: (predicate() or time.perf_counter() - start > timeout) and loop.quit()
        )
        timer.start()
        if not predicate():
            loop.exec()
        timer.stop()

    def idle_stall(self, seconds: float = 3.0) -> float:
        """Longest gap of the 10 ms probe with nothing running: the machine's own noise."""
        gaps: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        probe = self.QTimer()
        probe.setInterval(10)
        probe.timeout.connect(tick)
        probe.start()
        end = time.perf_counter() + seconds
        self._wait(lambda: time.perf_counter() > end)
        probe.stop()
        return 1000 * max(gaps)

    def run(self, probe_on: bool = True) -> dict:
        """One run; with ``probe_on`` a 10 ms QTimer measures GUI stalls (it costs some
        throughput itself, so throughput is also measured in runs without it)."""
        from engine.training import BatchEnd, Finished

        tab = self.tab
        gaps: list[float] = []
        last_tick = [time.perf_counter()]
        seen: dict = {}

        self.gap_log: list[tuple[float, float]] = []  # (start, end) of each probe gap

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last_tick[0])
            self.gap_log.append((last_tick[0], now))
            last_tick[0] = now

        def on_event(event) -> None:
            if isinstance(event, BatchEnd):
                seen["batch"] = event
            elif isinstance(event, Finished):
                seen["finished"] = time.perf_counter()
                loop.quit()

        loop = self.QEventLoop()  # woken by the Finished event: no polling timer meanwhile
        tab.session.event_received.connect(on_event)
        probe = self.QTimer()
        probe.setInterval(10)
        probe.timeout.connect(tick)
        if probe_on:
            probe.start()
        t0 = time.perf_counter()
        last_tick[0] = t0
        tab.start_button.click()
        loop.exec()
        probe.stop()
        self._wait(lambda: not tab.is_busy())
        tab.session.event_received.disconnect(on_event)
        n = len(tab.session.run.train_labels) * tab.session.run.settings.config.epochs
        result = {
            "engine": seen["batch"].samples_per_second,
            "wall": n / (seen["finished"] - t0),
        }
        if not probe_on:
            return result
        return {
            **result,
            "stall_max_ms": 1000 * max(gaps),
            # the same without the start click's own work (building the run, one full repaint)
            "stall_running_ms": 1000 * max(b - a for a, b in self.gap_log if a - t0 > 0.25),
            "stall_p99_ms": 1000 * float(np.percentile(gaps, 99)),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runner = AppRunner(args.limit, args.epochs, args.batch_size)
    results: dict[str, list[dict]] = {
        "bare": [],
        "bare1": [],
        "app": [],
        "probe": [],
        "cli": [],
        "cli1": [],
    }
    for i in range(args.repeats):
        results["bare"].append(bare_run(args.limit, args.epochs, args.batch_size))
        results["bare1"].append(
            bare_run(args.limit, args.epochs, args.batch_size, threads=BLAS_THREADS)
        )
        results["app"].append(runner.run(probe_on=False))
        results["probe"].append(runner.run(probe_on=True))
        for kind, threads in (("cli", None), ("cli1", BLAS_THREADS)):
            try:
                results[kind].append(cli_run(args.limit, args.epochs, args.batch_size, threads))
            except subprocess.CalledProcessError as exc:  # report, keep the other figures
                print(f"{kind} failed: {exc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        results["probe"][-1]["idle_stall_ms"] = runner.idle_stall()
        print(
            f"repeat {i + 1}: "
            + "  ".join(
                f"{k} {v[-1]['engine']:,.0f}/{v[-1]['wall']:,.0f}" for k, v in results.items() if v
            ),
            file=sys.stderr,
        )

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    print(
        f"LeNet-5, {args.limit:,} MNIST images (90% train), {args.epochs} epochs, batch "
        f"{args.batch_size}, median of {args.repeats}"
    )
    print(f"{'':6}{'engine samples/s':>18}{'wall samples/s':>16}")
    for kind in ("bare", "bare1", "app", "probe", "cli", "cli1"):
        print(f"{kind:6}{med(kind, 'engine'):>18,.0f}{med(kind, 'wall'):>16,.0f}")
    print(
        f"app / cli (engine figure): {med('app', 'engine') / med('cli', 'engine'):.1%}; "
        f"app / cli with {BLAS_THREADS} BLAS thread(s): "
        f"{med('app', 'engine') / med('cli1', 'engine'):.1%}"
    )
    print(
        f"app / bare (wall clock):   {med('app', 'wall') / med('bare', 'wall'):.1%}; app / bare "
        f"with {BLAS_THREADS} BLAS thread(s): {med('app', 'wall') / med('bare1', 'wall'):.1%}"
    )
    print(
        f"GUI stall (10 ms probe): max {med('probe', 'stall_max_ms'):.1f} ms, "
        f"p99 {med('probe', 'stall_p99_ms'):.1f} ms (medians over runs; worst max "
        f"{max(r['stall_max_ms'] for r in results['probe']):.1f} ms)"
    )
    print(
        f"  while running (from 0.25 s after the start click): max "
        f"{med('probe', 'stall_running_ms'):.1f} ms (worst "
        f"{max(r['stall_running_ms'] for r in results['probe']):.1f} ms)"
    )
    print(
        f"same probe with the app idle (machine noise): max {med('probe', 'idle_stall_ms'):.1f} ms"
    )
    refresh = runner.refresh_ms
    print(
        f"activations + filters refresh in the GUI thread: median {statistics.median(refresh):.2f}"
        f" ms, max {max(refresh):.2f} ms over {len(refresh)} refreshes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GUI-thread stalls with a heavy network: drawing on the Classify canvas, the live view.

Offscreen, in the real widgets. A 2 ms QTimer on the GUI thread records its ticks; the longest
gap between two ticks is the longest the window was frozen (the timer alone, idle, is the
reference). The GUI thread's own CPU time (``time.thread_time`` read on it) counts only its
work, whatever the worker threads and the machine's neighbours do.

- **draw**: a digit drawn with the mouse on the Classify canvas (press, a move every 15 ms for
  0.6 s, release: the canvas asks for a classification every 30 ms and at the release), with
  a heavy digit network; from the press until the last stroke's bars are shown. Between
  repeats the occlusion map (seconds on such a network) is let finish, unmeasured.
- **live**: the Train tab's "Inside the network (live)" panel with a 512-channel network on
  3x32x32, pinned image, as a weight snapshot arrives: ``set_weights`` then ``refresh()``,
  until the new maps are shown.
- **train** (``--train``, instead of the others): 20 s of the Train tab training a 256-channel
  network on MNIST (batches of 16, its live page in sight): the longest gap, the gaps over
  50 ms, the GUI thread's CPU and the batches trained.

Prints medians of ``--repeats`` runs of each network.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/heavy_gui.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QEventLoop, QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

WIDE = "conv 512 3, relu, conv 512 3, relu, globalavgpool, dense 10"
DEEP = ", ".join(["conv 8 3, relu"] * 999) + ", flatten, dense 10"  # 2,000 nodes


def network(text: str, shape: tuple[int, int, int]):
    from engine.archtext import to_spec
    from engine.model import build_model

    classes = [str(i) for i in range(10)]
    return build_model(to_spec(text, shape, 10), np.random.default_rng(0), classes=classes)


class Probe:
    """The 2 ms timer: ticks while ``until()`` is false, then reports the longest gap."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.loop = QEventLoop()
        self.timer = QTimer(interval=2)
        self.timer.timeout.connect(self._tick)
        self.until = lambda: False

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())
        if self.until():
            self.loop.quit()

    def run(self, start, until) -> tuple[float, float, float]:
        """(longest gap s, GUI-thread CPU s, wall s) from ``start()`` until ``until()``."""
        self.ticks, self.until = [time.perf_counter()], until
        cpu, t0 = time.thread_time(), time.perf_counter()
        self.timer.start()
        start()
        self.loop.exec()
        self.timer.stop()
        return (
            float(np.diff(self.ticks).max()),
            time.thread_time() - cpu,
            time.perf_counter() - t0,
        )


def wait(until) -> None:
    loop = QEventLoop()
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: loop.quit() if until() else None)
    timer.start()
    loop.exec()
    timer.stop()


def draw(tab, probe: Probe) -> tuple[float, float, float]:
    """A digit drawn with the mouse; measured until the last stroke's bars are shown."""
    canvas = tab.canvas
    canvas.clear()
    side = min(canvas.width(), canvas.height())
    path = [
        QPoint(int(side * (0.3 + 0.4 * t)), int(side * (0.25 + 0.5 * t)))
        for t in np.linspace(0, 1, 40)
    ]
    state = {"i": 0, "released": False, "shown": False}

    def shown(_result) -> None:
        state["shown"] = state["released"]  # the release's own classification

    tab.classified.connect(shown)
    mover = QTimer(interval=15)

    def move() -> None:
        i = state["i"]
        if i < len(path):
            QTest.mouseMove(canvas, path[i])
            state["i"] = i + 1
            return
        mover.stop()
        state["released"] = True
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=path[-1])

    def start() -> None:
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=path[0])
        mover.timeout.connect(move)
        mover.start()

    busy = getattr(tab, "forward_busy", lambda: False)
    figures = probe.run(start, lambda: state["shown"] and not busy())
    tab.classified.disconnect(shown)
    wait(lambda: not tab.background_busy())  # the occlusion map, unmeasured
    return figures


def live(panel, model, probe: Probe, rng) -> tuple[float, float, float]:
    weights = {
        k: v + rng.normal(0, 0.01, v.shape).astype(v.dtype) for k, v in model.get_weights().items()
    }
    busy = getattr(panel, "busy", lambda: False)

    def start() -> None:
        model.set_weights(weights)
        panel.refresh()

    return probe.run(start, lambda: not busy())


def train(seconds: float = 20.0) -> None:
    """The Train tab training a 256-channel network; the 2 ms timer over ``seconds``."""
    import tempfile
    from pathlib import Path

    from PySide6.QtCore import QSettings

    from desktop.main_window import MainWindow

    text = "conv 256 3, relu, conv 256 3, relu, globalavgpool, dense 10"
    ini = Path(tempfile.mkdtemp()) / "s.ini"
    win = MainWindow(settings=QSettings(str(ini), QSettings.Format.IniFormat))
    win.resize(1400, 900)
    win.show()
    tab, setup = win.train_tab, win.train_tab.setup
    win.tabs.setCurrentWidget(tab)
    wait(lambda: setup.dataset is not None and not setup.is_loading())
    setup.arch_combo.setCurrentText("text")
    setup.arch_text.setText(text)
    wait(lambda: not setup.is_loading() and setup.architecture_ok())
    setup.batch_spin.setValue(16)
    tab.pages.setCurrentWidget(tab.live)
    tab.start_button.click()
    wait(lambda: len(tab.session.log) >= 1)  # the first batch is in
    first = len(tab.session.log)
    end = time.perf_counter() + seconds
    probe = Probe()
    stall, cpu, _wall = probe.run(lambda: None, lambda: time.perf_counter() >= end)
    gaps = np.diff(probe.ticks)
    print(
        f"training '{text}', {seconds:.0f} s: {len(tab.session.log) - first} batches of 16; "
        f"longest GUI stall {stall * 1e3:.0f} ms, {(gaps > 0.05).sum()} gaps over 50 ms, "
        f"GUI-thread CPU {cpu:.2f} s"
    )
    tab.stop_button.click()
    wait(lambda: not tab.is_busy())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip", choices=["draw", "live"], default=None)
    ap.add_argument("--train", action="store_true", help="only the training run")
    args = ap.parse_args()
    _app = QApplication.instance() or QApplication(sys.argv)
    if args.train:
        train()
        sys.stdout.flush()
        os._exit(0)
    from desktop.app_state import AppState
    from desktop.classify_tab import ClassifyTab
    from desktop.widgets.live_panel import LivePanel

    probe = Probe()
    idle = [probe.run(lambda: None, lambda: len(probe.ticks) > 100)[0] for _ in range(3)]
    print(f"idle 2 ms timer, longest gap: median {statistics.median(idle) * 1e3:.1f} ms")
    ms = lambda v: f"{statistics.median(v) * 1e3:.0f}"  # noqa: E731
    if args.skip != "draw":
        tab = ClassifyTab(AppState())
        tab.resize(1260, 760)
        tab.show()
        for name, text in (("512-channel", WIDE), ("2,000-node", DEEP)):
            tab.set_model(network(text, (1, 28, 28)), name)
            wait(lambda: not tab.background_busy())
            runs = [draw(tab, probe) for _ in range(args.repeats)]
            stall, cpu, wall = zip(*runs, strict=True)
            print(
                f"draw, {name} digit network: longest GUI stall median {ms(stall)} ms "
                f"(max {max(stall) * 1e3:.0f}), GUI-thread CPU {ms(cpu)} ms, press to last "
                f"bars {ms(wall)} ms ({args.repeats} digits); shows {tab.prediction_label.text()!r}"
            )
    if args.skip != "live":
        rng = np.random.default_rng(1)
        model = network(WIDE, (3, 32, 32))
        panel = LivePanel()
        panel.resize(1000, 700)
        panel.show()
        panel.set_model(model)
        panel.pin(rng.integers(0, 256, (3, 32, 32), dtype=np.uint8), "noise")
        wait(lambda: not getattr(panel, "busy", lambda: False)())
        runs = [live(panel, model, probe, rng) for _ in range(args.repeats)]
        stall, cpu, wall = zip(*runs, strict=True)
        print(
            f"live view refresh, 512-channel 3x32x32: longest GUI stall median {ms(stall)} ms "
            f"(max {max(stall) * 1e3:.0f}), GUI-thread CPU {ms(cpu)} ms, to the new maps "
            f"{ms(wall)} ms ({args.repeats} refreshes)"
        )
    sys.stdout.flush()
    os._exit(0)  # PySide6 may crash finalising after a worker thread ran; figures are out


if __name__ == "__main__":
    main()

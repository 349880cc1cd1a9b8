"""Time from process start to a usable ConvScope window (offscreen), median of several runs.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/startup.py [--repeats 7]
Target (issue 4): under 2 s to a usable window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
def ready():
    print("READY", flush=True)
    app.quit()
QTimer.singleShot(0, ready)  # runs once the event loop is up and the window was shown
from desktop.app import main
sys.exit(main())
"""


def one_run(home: str) -> float:
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home)
    # the app's bytecode is cached as in an installed copy (pip compiles it at install); with
    # PYTHONDONTWRITEBYTECODE set every start compiled ~40 modules again (0.3-0.4 s)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if "READY" not in out.stdout:
        raise SystemExit(f"the window did not start:\n{out.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        one_run(home)  # warm the file cache and write the bytecode cache
        times = [one_run(home) for _ in range(args.repeats)]
    print(
        f"start-up to usable window: median {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={len(times)}); "
        "process start and exit included"
    )


if __name__ == "__main__":
    main()

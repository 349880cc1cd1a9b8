"""Drop-to-bars latency of the Classify tab, and the cost of one drawing update.

Times, in the real tab (offscreen Qt), from handing a dropped file to the tab until the
probability bars hold the new prediction (decode, preprocess, forward pass with activations,
bars, prediction text, network view data: the tab's ``classified`` signal), for a 1-megapixel
PNG scan-like picture of a digit. The number reading and the occlusion map follow off the GUI
thread; they are let finish between drops. Also times one canvas update (a stroke on the
280x280 canvas -> bars). Prints medians of several runs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/classify_gui.py
    python bench/classify_gui.py --screenshot docs/screenshots/classify.png

``--screenshot PATH [MODEL]`` instead renders the main window (1280x820) on the Classify tab with a
hand-drawn 7 and a hovered pooling cell, and saves it as PNG (the README's picture).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtWidgets import QApplication

REPEATS = 15
SIZE = tuple(int(v) for v in os.environ.get("SHOT_SIZE", "1280x820").split("x"))


def _megapixel_digit(folder: Path) -> Path:
    """A 1000x1000 scan-like PNG: gray paper with a little noise and a large dark 7."""
    rng = np.random.default_rng(0)
    paper = 235 + rng.normal(0, 4, size=(1000, 1000))
    yy, xx = np.mgrid[0:1000, 0:1000]
    bar = (np.abs(yy - 250) < 35) & (xx > 300) & (xx < 700)
    stem = np.abs((xx - 700) + (yy - 250) * 0.45) < 40
    stem &= (yy > 250) & (yy < 800)
    paper[bar | stem] = 40
    path = folder / "seven_1mp.png"
    Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).save(path)
    return path


def _wait_idle(tab) -> None:
    """Run the event loop until the tab's background jobs are done (no processEvents loop:
    PySide6 6.12 on Python 3.11 loses a reference to None on each call of a void method)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: None if tab.background_busy() else loop.quit())
    timer.start()
    loop.exec()
    timer.stop()


def _drawn_seven() -> np.ndarray:
    """A 7 drawn with round strokes on the 280x280 canvas, as a mouse would."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QColor, QImage, QPainter, QPen

    from desktop.qt_image import qimage_to_array

    image = QImage(280, 280, QImage.Format.Format_Grayscale8)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(
        QPen(
            QColor(255, 255, 255),
            20,
            Qt.PenStyle.SolidLine,
            Qt.PenCapStyle.RoundCap,
            Qt.PenJoinStyle.RoundJoin,
        )
    )
    painter.drawPolyline([QPointF(72, 66), QPointF(205, 60), QPointF(186, 110), QPointF(132, 228)])
    painter.drawLine(QPointF(112, 148), QPointF(190, 146))
    painter.end()
    return qimage_to_array(image)[:, :, 0]


def screenshot(path: Path, model_path: Path | None = None) -> int:
    """The README picture: the main window on the Classify tab with a drawn digit."""
    _app = QApplication.instance() or QApplication(sys.argv)
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtTest import QTest

    from desktop.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings)
        window.resize(*SIZE)
        window.show()
        tab = window.classify_tab
        window.tabs.setCurrentWidget(tab)
        if model_path is not None:
            tab.open_model_file(model_path)
        if tab.model is None:
            print("no model: the screenshot would show 'No model loaded'", file=sys.stderr)
            return 1
        tab.canvas.set_pixels(_drawn_seven())
        loop = QEventLoop()
        QTimer.singleShot(600, loop.quit)  # occlusion map and painting
        loop.exec()
        view = tab.network_view
        pool1 = next(layer for layer in view.layers() if layer.name == "pool1").values
        c, y, x = np.unravel_index(int(np.argmax(pool1)), pool1.shape)  # a strong response
        QTest.mouseMove(view, view.cell_center("pool1", int(c), int(y), int(x)))
        window.grab().save(str(path))
        print(f"{path}: {tab.prediction_label.text()!r} with {tab.model_label.text()[:60]!r}")
    return 0


def main() -> int:
    _app = QApplication.instance() or QApplication(sys.argv)
    from desktop.app_state import AppState
    from desktop.classify_tab import ClassifyTab

    tab = ClassifyTab(AppState())
    tab.resize(1260, 760)
    tab.show()
    if tab.model is None:  # timings do not depend on the weights
        from engine.model import lenet5

        print("no shipped model yet: timing a randomly initialised LeNet-5")
        tab.set_model(lenet5(np.random.default_rng(0)), "random LeNet-5")
    with tempfile.TemporaryDirectory() as tmp:
        path = _megapixel_digit(Path(tmp))
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        drop, draw = [], []
        shown_at: list[float] = []
        tab.classified.connect(lambda _result: shown_at.append(time.perf_counter()))
        for _ in range(REPEATS):
            tab.chart.clear()
            shown_at.clear()
            t0 = time.perf_counter()
            tab.handle_drop(mime)
            drop.append(shown_at[0] - t0)  # the bars hold the new prediction
            assert tab.chart.probabilities().size == 10
            _wait_idle(tab)  # reading and occlusion finish between drops
        pixels = np.zeros((280, 280), np.uint8)
        pixels[60:230, 130:150] = 255
        for i in range(REPEATS):
            pixels[60:70, 90 + i : 190] = 255
            t0 = time.perf_counter()
            tab._on_canvas_drawing_changed(pixels.copy())
            draw.append(time.perf_counter() - t0)
            _wait_idle(tab)
        from engine.imageio import load_image
        from engine.reading import read_digits

        image = load_image(path)
        reads = []
        for _ in range(5):
            t0 = time.perf_counter()
            read_digits(tab.model, image)
            reads.append(time.perf_counter() - t0)
        shown = tab.prediction_label.text()
    print(
        f"drop of a 1-megapixel PNG -> bars: median {statistics.median(drop) * 1e3:.1f} ms "
        f"(min {min(drop) * 1e3:.1f}, max {max(drop) * 1e3:.1f}, {REPEATS} runs; shows {shown!r})"
    )
    print(f"canvas update -> bars:             median {statistics.median(draw) * 1e3:.1f} ms")
    print(f"reading the number (after the bars): median {statistics.median(reads) * 1e3:.1f} ms")
    _wait_idle(tab)
    return 0


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--screenshot":
        status = screenshot(Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else None)
    else:
        status = main()
    sys.stdout.flush()
    # PySide6 6.12 may crash while finalising after a QThread worker ran ("none_dealloc");
    # the figures are printed, so leave without the interpreter's teardown.
    os._exit(status)

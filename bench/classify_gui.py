"""Drop-to-bars latency of the Classify tab, and the cost of one drawing update.

Times, in the real tab (offscreen Qt), from handing a dropped file to the tab until the
probability bars hold the new prediction (decode, preprocess, forward pass with activations,
bars, prediction text, network view data: the tab's ``classified`` signal), for a 1-megapixel
PNG scan-like picture of a digit. The number reading and the occlusion map follow off the GUI
thread; they are let finish between drops. Also times one canvas update (a stroke on the
280x280 canvas -> bars). Prints medians of several runs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/classify_gui.py
    python bench/classify_gui.py --screenshot docs/screenshots/classify.png

``--screenshot PATH [MODEL]`` instead renders the main window (1280x820) on the Classify tab
with a hand-drawn 7 and a hovered pooling cell, and saves it as PNG (the README's picture);
``--photo-screenshot PATH MODEL PHOTO`` renders it (``SHOT_SIZE``, e.g. 1400x900) classifying
PHOTO with a photo model (docs/screenshots/classify-photo.png).

The photo timings drop a 12-megapixel JPEG with the photo model (``PHOTO_MODEL=FILE``, else the
shipped one, else a seeded untrained network): from the end of its decoding to the bars, and
the longest stall of the GUI thread (a 2 ms timer's largest gap); then a 49-megapixel PNG.
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


def photo_screenshot(path: Path, model_path: Path, photo: Path) -> int:
    """The main window on the Classify tab classifying ``photo`` with the photo model."""
    _app = QApplication.instance() or QApplication(sys.argv)
    from PySide6.QtCore import QSettings

    from desktop.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings)
        window.resize(*SIZE)
        window.show()
        tab = window.classify_tab
        window.tabs.setCurrentWidget(tab)
        if str(model_path) == "photos":  # the shipped photo model, chosen as a user would
            box = tab.model_box
            index = next(i for i in range(box.count()) if "photo" in box.itemText(i).lower())
            box.setCurrentIndex(index)
            box.activated.emit(index)
        else:
            tab.open_model_file(model_path)
        _wait_idle(tab)
        tab.open_image_file(photo)
        _wait_idle(tab)
        window.grab().save(str(path))
        print(f"{path}: {tab.prediction_label.text()!r} with {tab.model_box.currentText()!r}")
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
    photo_drops(tab)
    return 0


def _photo_model():
    """The shipped photo model, or a seeded untrained one (timings do not depend on weights)."""
    import resources
    from engine.model import build_model
    from engine.modelfile import load_model

    path = Path(os.environ.get("PHOTO_MODEL", str(resources.photo_model_path())))
    if path.is_file():
        return load_model(path), path.name
    classes = ["bird", "cat", "dog", "ship"]
    arch = {"name": "lenet-article", "in_channels": 3}
    return build_model(arch, np.random.default_rng(0), classes=classes), "random lenet-article"


def _max_stall(tab, start) -> tuple[float, float]:
    """(longest gap between 2 ms timer ticks while the job runs, job time) in seconds."""
    from PySide6.QtCore import QEventLoop, QTimer

    ticks: list[float] = []
    loop = QEventLoop()
    timer = QTimer(interval=2)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.timeout.connect(lambda: None if tab.background_busy() else loop.quit())
    t0 = time.perf_counter()
    start()
    timer.start()
    loop.exec()
    timer.stop()
    gaps = np.diff([t0, *ticks]) if ticks else np.array([time.perf_counter() - t0])
    return float(gaps.max()), time.perf_counter() - t0


def _idle_stall(seconds: float) -> float:
    """The longest gap of the same 2 ms timer with nothing to do: the machine's own noise."""
    from PySide6.QtCore import QEventLoop, QTimer

    ticks = [time.perf_counter()]
    loop = QEventLoop()
    timer = QTimer(interval=2)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    return float(np.diff(ticks).max()) if len(ticks) > 1 else seconds


def photo_drops(tab) -> None:
    """A 12-megapixel JPEG dropped with a photo model: decode end -> bars (the tab's
    ``last_timing``), and the longest GUI stall; then a 49-megapixel PNG's longest stall."""
    model, name = _photo_model()
    tab.set_model(model, name)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        small = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
        photo = Path(tmp) / "photo_12mp.jpg"
        Image.fromarray(small).resize((4000, 3000), Image.Resampling.BILINEAR).save(
            photo, quality=90
        )
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(photo))])
        after_decode, views, stalls, totals, idle = [], [], [], [], []
        for _ in range(9):
            tab.last_timing = None
            stall, total = _max_stall(tab, lambda: tab.handle_drop(mime))
            decoded, bars, shown = tab.last_timing
            after_decode.append(bars - decoded)
            views.append(shown - decoded)
            stalls.append(stall)
            totals.append(total)
            idle.append(_idle_stall(0.3))
        label = tab.prediction_label.text()
        huge = Path(tmp) / "huge_49mp.png"
        Image.new("RGB", (7000, 7000), (200, 210, 220)).save(huge)
        big_mime = QMimeData()
        big_mime.setUrls([QUrl.fromLocalFile(str(huge))])
        big_stall, big_total = _max_stall(tab, lambda: tab.handle_drop(big_mime))
    ms = statistics.median
    print(
        f"12 MP JPEG drop ({name}, 9 runs): decode end -> bars median "
        f"{ms(after_decode) * 1e3:.1f} ms (max {max(after_decode) * 1e3:.1f}), -> network view "
        f"{ms(views) * 1e3:.1f} ms; drop -> all done {ms(totals) * 1e3:.0f} ms; shows {label!r}"
    )
    print(
        f"longest GUI stall during a 12 MP drop: median {ms(stalls) * 1e3:.1f} ms; reference, "
        f"the same timer with no job: {ms(idle) * 1e3:.1f} ms "
        f"(ratio {ms(stalls) / max(ms(idle), 1e-6):.1f})"
    )
    print(
        f"49 MP PNG drop: longest GUI stall {big_stall * 1e3:.1f} ms "
        f"(the whole job {big_total:.2f} s off the GUI thread)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--photo-screenshot":
        status = photo_screenshot(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "--screenshot":
        status = screenshot(Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else None)
    else:
        status = main()
    sys.stdout.flush()
    # PySide6 6.12 may crash while finalising after a QThread worker ran ("none_dealloc");
    # the figures are printed, so leave without the interpreter's teardown.
    os._exit(status)

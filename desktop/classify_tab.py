"""The Classify tab: drop, paste, open or draw a digit; see what the network sees and why.

Left: where images arrive (the drop area with the drawing canvas or the image and its reading
boxes). Middle: the original next to the 28x28 the network sees, the occlusion map, the
prediction, the probability bars and the model in use. Right: the network view, or the table
of a batch of files.

A slot reads the UI, calls one engine function and updates the UI. The occlusion map, the
reading of a number and a batch of files run off the GUI thread
(:class:`desktop.workers.OneAtATime`, each job with its own copy of the model); a drop or a
stroke is classified on the GUI thread in a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import resources
from desktop.app_state import AppState
from desktop.widgets.batch_table import BatchProgress, BatchTable, classify_files_steps
from desktop.widgets.draw_canvas import DrawPanel
from desktop.widgets.drop_area import DropArea, ImagePreview, parse_mime
from desktop.widgets.network_view import NetworkView, PixelView, occlusion_rgb, view_layers
from desktop.widgets.probability_chart import ProbabilityChart
from desktop.workers import OneAtATime
from engine.errors import EngineError
from engine.imageio import load_image
from engine.modelfile import load_model
from engine.occlusion import occlusion_map
from engine.preprocess import PreparedDigit, prepare_digit
from engine.reading import Reading, read_digits

DROP_HINT = (
    "Drop an image of a digit (or of a number) here\n\nor paste it with Ctrl+V, "
    "use File › Open,\nor drop several files or a folder"
)


@dataclass(frozen=True)
class Classification:
    prepared: PreparedDigit
    probabilities: np.ndarray  # (K,)
    prediction: str
    confidence: float


def describe_model(model, label: str) -> str:
    """One rich-text paragraph: which model, its classes, accuracy and training date."""
    meta = getattr(model, "meta", {}) or {}
    arch = (getattr(model, "architecture", {}) or {}).get("name", "model")
    classes = [str(c) for c in model.classes]
    shown = ", ".join(classes) if len(classes) <= 10 else ", ".join(classes[:8]) + ", …"
    parts = [f"<b>{label}</b> ({arch})", f"{len(classes)} classes: {shown}"]
    accuracy = (meta.get("evaluation") or {}).get("accuracy")
    if accuracy is not None:
        parts.append(f"test accuracy {float(accuracy):.2%}")
    if meta.get("trained_at"):
        parts.append(f"trained {str(meta['trained_at'])[:10]}")
    return " · ".join(parts)


class ClassifyTab(QWidget):
    title = "Classify"
    classified = Signal(object)  # Classification, after the bars are updated
    number_read = Signal(object)  # Reading of a dropped/opened image
    occlusion_finished = Signal(object)
    batch_classified = Signal(object)  # list[BatchRow], once the batch table is filled

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self.model = None
        self._image: np.ndarray | None = None  # the last opened/dropped/pasted image
        self._image_name = ""
        self.result: Classification | None = None
        self.reading: Reading | None = None
        self._occlusion_jobs = OneAtATime(self, self._show_message)
        self._reading_jobs = OneAtATime(self, self._show_message)
        self._batch_jobs = OneAtATime(self, self._show_message)
        self._occlusion_timer = QTimer(self, singleShot=True, interval=120)
        self._occlusion_timer.timeout.connect(self._start_occlusion)
        self._build()
        state.model_changed.connect(self._on_state_model_changed)
        if state.current_model is not None:
            self.set_model(state.current_model, state.current_model_label)
        else:
            self._load_shipped_model()

    # ----- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.drop_area = DropArea(self)
        self.drop_area.mime_dropped.connect(self.handle_drop)
        self.draw_panel = DrawPanel()
        self.canvas = self.draw_panel.canvas
        self.canvas.drawing_changed.connect(self._on_canvas_drawing_changed)
        self.canvas.cleared.connect(self._on_canvas_cleared)
        self.preview = ImagePreview(DROP_HINT)
        self.preview.box_clicked.connect(self.show_reading_digit)
        self.sources = QStackedWidget()
        self.sources.addWidget(self.draw_panel)
        self.sources.addWidget(self.preview)
        self.mode_group = QButtonGroup(self)
        modes = QHBoxLayout()
        for i, text in enumerate(("Draw", "Image")):
            button = QToolButton(text=text, checkable=True, objectName=f"{text.lower()}Mode")
            button.setChecked(i == 0)
            self.mode_group.addButton(button, i)
            modes.addWidget(button)
        modes.addStretch(1)
        self.mode_group.idClicked.connect(self._on_mode_clicked)
        self.reading_label = QLabel(objectName="readingLabel", wordWrap=True)
        self.message_label = QLabel(objectName="messageLabel", wordWrap=True)
        self.message_label.setStyleSheet("color: #c0392b;")
        self.invert_box = QCheckBox("Auto-invert dark ink", checked=True)
        self.invert_box.setToolTip("Dark ink on light paper becomes white on black, as in MNIST")
        self.center_box = QCheckBox("Crop and centre (MNIST)", checked=True)
        self.center_box.setToolTip(
            "Crop to the ink, fit into 20×20 and centre by mass in 28×28, as MNIST was made; "
            "off: the whole picture is scaled to 28×28"
        )
        for box in (self.invert_box, self.center_box):
            box.toggled.connect(self._on_option_toggled)
        left = QVBoxLayout(self.drop_area)
        left.addLayout(modes)
        left.addWidget(self.sources, 1)
        left.addWidget(self.reading_label)
        left.addWidget(self.message_label)
        left.addWidget(self.invert_box)
        left.addWidget(self.center_box)

        self.original_view = PixelView("original")
        self.preprocessed_view = PixelView("network input")
        self.preprocessed_view.setObjectName("preprocessedView")
        self.occlusion_view = PixelView("occlusion map")
        self.occlusion_view.setObjectName("occlusionView")
        seen_box = QGroupBox("What the network sees")
        seen_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        seen = QGridLayout(seen_box)
        for i, view in enumerate((self.original_view, self.preprocessed_view, self.occlusion_view)):
            seen.addWidget(view, 0, i)
        self.occlusion_label = QLabel(objectName="occlusionLabel", wordWrap=True)
        seen.addWidget(self.occlusion_label, 1, 0, 1, 3)
        self.prediction_label = QLabel("–", objectName="predictionLabel")
        font = QFont(self.prediction_label.font())
        font.setPointSizeF(font.pointSizeF() * 2.4)
        font.setBold(True)
        self.prediction_label.setFont(font)
        self.top3_label = QLabel(objectName="top3Label", wordWrap=True)
        self.chart = ProbabilityChart()
        self.model_label = QLabel(objectName="modelLabel", wordWrap=True)
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        self.open_model_button = QPushButton("Open model…", objectName="openModelButton")
        self.open_model_button.clicked.connect(self._on_open_model_clicked)
        middle = QVBoxLayout()
        middle.addWidget(seen_box)
        middle.addWidget(self.prediction_label)
        middle.addWidget(self.top3_label)
        middle.addWidget(
            QLabel("Probability of each class (softmax: they sum to 100%)", wordWrap=True)
        )
        middle.addWidget(self.chart, 1)
        model_box = QGroupBox("Model")
        model_layout = QVBoxLayout(model_box)
        model_layout.addWidget(self.model_label)
        model_layout.addWidget(self.open_model_button, 0, Qt.AlignmentFlag.AlignLeft)
        middle.addWidget(model_box)

        self.network_view = NetworkView()
        self.batch_table = BatchTable()
        self.batch_table.setToolTip("Double-click a file to look at it inside the network")
        self.batch_table.cellDoubleClicked.connect(self._on_batch_row_double_clicked)
        self.export_button = QPushButton("Export CSV…", objectName="exportCsvButton")
        self.export_button.clicked.connect(self._on_export_clicked)
        batch_page = QWidget()
        batch_layout = QVBoxLayout(batch_page)
        self.batch_status = QLabel(
            "Drop several image files or a folder to classify them all.",
            objectName="batchStatus",
            wordWrap=True,
        )
        batch_row = QHBoxLayout()
        batch_row.addWidget(self.batch_status, 1)
        batch_row.addWidget(self.export_button)
        batch_layout.addWidget(self.batch_table, 1)
        batch_layout.addLayout(batch_row)
        self.right_tabs = QTabWidget(objectName="classifyViews")
        self.right_tabs.addTab(self.network_view, "Inside the network")
        self.right_tabs.addTab(batch_page, "Batch results")

        # In a scroll area: a small window scrolls the tab instead of growing to fit it.
        content = QWidget()
        columns = QHBoxLayout(content)
        columns.addWidget(self.drop_area, 3)
        columns.addLayout(middle, 3)
        columns.addWidget(self.right_tabs, 5)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.addWidget(scroll)
        paste = QShortcut(QKeySequence.StandardKey.Paste, self)
        paste.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        paste.activated.connect(self._on_paste_activated)

    # ----- the model ----------------------------------------------------------------------
    def _load_shipped_model(self) -> None:
        path = resources.shipped_model_path()
        if not path.exists():
            self.set_model(None, "")
            return
        try:
            self.set_model(load_model(path), "Shipped LeNet-5")
        except EngineError as exc:
            self.set_model(None, "")
            self._show_message(f"The shipped model could not be loaded: {exc}")

    def set_model(self, model, label: str) -> None:
        """Classify with ``model`` from now on (None: no model loaded)."""
        self.model = model
        if model is None:
            self.model_label.setText(
                "<b>No model loaded.</b> Train one in the Train tab or open a model file."
            )
            self.prediction_label.setText("No model loaded")
        else:
            self.model_label.setText(describe_model(model, label))
        self._rerun()

    def _on_state_model_changed(self, model, label: str) -> None:
        self.set_model(model, label)
        self._state.status_posted.emit(f"Classify tab: now using {label}")

    def _on_open_model_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open model", "", "Models (*.npz)")
        if name:
            self.open_model_file(Path(name))

    def open_model_file(self, path: Path) -> bool:
        try:
            model = load_model(path)
        except EngineError as exc:
            self._show_message(str(exc))
            return False
        self.set_model(model, f"{path.name} (opened)")
        return True

    # ----- input --------------------------------------------------------------------------
    def open_image_file(self, path: Path) -> bool:
        """File > Open, recent files, a single dropped file."""
        try:
            image = load_image(path)
        except EngineError as exc:
            self._show_message(str(exc))
            return False
        return self.show_image(image, Path(path).name)

    def handle_drop(self, mime: QMimeData) -> bool:
        """Files, a folder, image data or a URL dropped on the window or the drop area."""
        payload = parse_mime(mime)
        if payload.error:
            self._show_message(payload.error)
            return False
        if payload.batch:
            return self.classify_batch(payload.paths)
        if payload.paths and payload.paths[0].suffix.lower() == ".npz":
            return self.open_model_file(payload.paths[0])  # a model file: classify with it
        if payload.paths:
            return self.open_image_file(payload.paths[0])
        return self.show_image(payload.image, payload.name)

    def _on_paste_activated(self) -> None:
        self.handle_drop(QApplication.clipboard().mimeData())

    def show_image(self, image: np.ndarray, name: str) -> bool:
        """Classify ``image`` (uint8) and read the number in it; False if it has no digit."""
        if not self._classify(image, source=name):
            return False  # the message is shown; the previous result stays
        self._image, self._image_name = image, name
        self.mode_group.button(1).setChecked(True)
        self.sources.setCurrentIndex(1)
        self.preview.set_image(image)
        self.reading_label.clear()
        self._start_reading()  # off the GUI thread: a big photo takes a moment
        return True

    def classify_batch(self, paths: list[Path]) -> bool:
        """Classify ``paths`` off the GUI thread into the batch table."""
        if self.model is None:
            self._show_message("No model loaded: train one or open a model file first")
            return False
        model = self.model.clone()  # the worker's own copy: layers keep buffers between calls
        invert, center = self.invert_box.isChecked(), self.center_box.isChecked()
        self._batch_jobs.submit(
            lambda: classify_files_steps(model, paths, auto_invert=invert, center=center),
            self._on_batch_yielded,
            essential=lambda event: isinstance(event, list),
        )
        self.right_tabs.setCurrentIndex(1)
        self._show_message("", status=f"Classifying {len(paths)} files…")
        return True

    def _on_batch_yielded(self, event) -> None:
        if isinstance(event, BatchProgress):
            self.batch_status.setText(f"Preparing file {event.done} of {event.total}…")
            return
        self.batch_table.set_rows(event)
        bad = sum(1 for r in event if r.error)
        self.batch_status.setText(
            f"{len(event)} files classified" + (f"; {bad} could not be read" if bad else "")
        )
        self._show_message(
            f"{bad} of {len(event)} files could not be read" if bad else "",
            status=f"Classified {len(event)} files",
        )
        self.batch_classified.emit(event)

    def _on_batch_row_double_clicked(self, row: int, _column: int) -> None:
        if self.open_image_file(Path(self.batch_table.displayed_files()[row])):
            self.right_tabs.setCurrentIndex(0)

    def _on_canvas_drawing_changed(self, pixels: np.ndarray) -> None:
        self.mode_group.button(0).setChecked(True)
        self._classify(pixels, source="drawing", quiet=True)

    def _on_canvas_cleared(self) -> None:
        self._clear_result("Draw a digit")

    def _on_mode_clicked(self, index: int) -> None:
        self.sources.setCurrentIndex(index)
        self._rerun()

    def _on_option_toggled(self, _checked: bool) -> None:
        self._rerun()

    def _rerun(self) -> None:
        if self.mode_group.checkedId() == 1 and self._image is not None:
            self.show_image(self._image, self._image_name)
        elif self.mode_group.checkedId() == 0 and not self.canvas.is_empty():
            self._classify(self.canvas.pixels(), source="drawing", quiet=True)
        else:
            self._clear_result("Draw a digit" if self.mode_group.checkedId() == 0 else "–")

    # ----- classifying --------------------------------------------------------------------
    def _classify(self, image: np.ndarray, *, source: str, quiet: bool = False) -> bool:
        try:
            prepared = prepare_digit(
                image, auto_invert=self.invert_box.isChecked(), center=self.center_box.isChecked()
            )
        except EngineError as exc:
            if quiet:  # a few dots on the canvas: not a digit yet
                self._clear_result("Draw a digit")
                return True
            self._show_message(f"{source}: {exc}")
            return False
        self._show_message("")
        self._show_input(prepared, prepared.original)
        return True

    def _show_input(self, prepared: PreparedDigit, original: np.ndarray) -> None:
        """One forward pass of ``prepared.image``: bars, prediction, network view, occlusion."""
        self.original_view.set_array(original)
        self.preprocessed_view.set_array(prepared.image)
        self._state.classify_image_changed.emit(prepared.image)
        if self.model is None:
            self.network_view.clear("No model loaded")
            return
        x = prepared.image[None, None]
        channels = self.model.input_spec.shape[0]
        acts = self.model.activations(
            self.model.input_spec.to_tensor(np.repeat(x, channels, axis=1) if channels != 1 else x)
        )
        probs = acts[-1][1][0].astype(np.float64)
        k = int(np.argmax(probs))
        classes = [str(c) for c in self.model.classes]
        self.result = Classification(prepared, probs, classes[k], float(probs[k]))
        self.chart.set_probabilities(probs, classes)
        self.prediction_label.setText(f"{classes[k]}  {probs[k]:.1%}")
        top3 = np.argsort(probs)[::-1][:3]
        self.top3_label.setText(
            "Top 3: " + ",  ".join(f"{classes[i]} ({probs[i]:.1%})" for i in top3)
        )
        self.network_view.set_layers(view_layers(self.model, acts))
        self.classified.emit(self.result)
        self._occlusion_timer.start()

    def _clear_result(self, text: str) -> None:
        self.result = None
        self.chart.clear()
        self.prediction_label.setText(text if self.model is not None else "No model loaded")
        self.top3_label.clear()
        self.original_view.set_array(None)
        self.preprocessed_view.set_array(None)
        self.occlusion_view.set_array(None)
        self.occlusion_label.clear()
        self.network_view.clear()

    def _start_reading(self) -> None:
        if self.model is None or self._image is None:
            return
        model, image = self.model.clone(), self._image
        self._reading_jobs.submit(
            lambda: [(image, read_digits(model, image))], self._on_reading_yielded
        )

    def _on_reading_yielded(self, event) -> None:
        image, reading = event
        if image is not self._image or self.mode_group.checkedId() != 1:
            return  # stale: another image (or the canvas) is shown now
        self.reading = reading
        digits = reading.digits
        if reading.looks_like_a_number():  # not the blobs of a photo
            self.preview.set_boxes([(*d.box, f"{d.prediction} {d.confidence:.0%}") for d in digits])
            self.reading_label.setText(
                f"Reads as <b>{reading.text}</b> ({len(digits)} digits, left to right). "
                "Click a box to look inside the network for that digit."
            )
            self.show_reading_digit(0)
        else:
            self.preview.set_boxes([])
            self.reading_label.setText("One digit in this image" if len(digits) == 1 else "")
        self.number_read.emit(reading)

    def show_reading_digit(self, index: int) -> None:
        """Show digit ``index`` of the number read: its input, bars and feature maps."""
        if self.reading is None or not 0 <= index < len(self.reading.digits):
            return
        digit = self.reading.digits[index]
        x0, y0, x1, y1 = digit.box
        crop = self._image[y0:y1, x0:x1]
        self.preview.set_selected(index)
        self._show_input(PreparedDigit(digit.image, crop, False, digit.box), crop)
        self.prediction_label.setText(f"{self.reading.text}")
        self.top3_label.setText(
            f"Digit {index + 1} of {len(self.reading.digits)}: " + self.top3_label.text()
        )

    # ----- occlusion (off the GUI thread) -------------------------------------------------
    def _start_occlusion(self) -> None:
        if self.result is None or self.model is None:
            return
        # a copy: layers keep buffers between calls, and the GUI thread uses the model meanwhile
        model, image = self.model.clone(), self.result.prepared.image.copy()
        target = int(np.argmax(self.result.probabilities))
        self._occlusion_jobs.submit(
            lambda: [(image, occlusion_map(model, image, target=target))],
            self._on_occlusion_yielded,
        )

    def background_busy(self) -> bool:
        """Whether an occlusion map, a reading or a batch is still being computed."""
        jobs = (self._occlusion_jobs, self._reading_jobs, self._batch_jobs)
        return self._occlusion_timer.isActive() or any(j.busy() for j in jobs)

    def _on_occlusion_yielded(self, event) -> None:
        image, result = event
        if self.result is None or not np.array_equal(self.result.prepared.image, image):
            return  # stale: the image changed meanwhile (a newer map is on its way)
        self.occlusion_view.set_array(occlusion_rgb(image, result.heat))
        name = self.model.classes[result.target] if self.model is not None else result.target
        self.occlusion_label.setText(
            f"Occlusion: covering the orange parts lowers the probability of “{name}” the most "
            f"(a black {result.patch}×{result.patch} patch slid over the input); blue parts "
            "speak against it."
        )
        self.occlusion_finished.emit(result)

    # ----- output -------------------------------------------------------------------------
    def _on_export_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export CSV", "predictions.csv", "CSV (*.csv)")
        if name:
            self.batch_table.export_csv(Path(name))
            self._state.status_posted.emit(f"Saved {name}")

    def save_result(self) -> None:
        """File > Save result: the batch table as CSV, or a picture of the tab."""
        if self.right_tabs.currentIndex() == 1 and self.batch_table.rowCount():
            self._on_export_clicked()
            return
        name, _ = QFileDialog.getSaveFileName(self, "Save picture", "classify.png", "PNG (*.png)")
        if name:
            self.save_picture(Path(name))

    def save_picture(self, path: Path) -> bool:
        """A PNG of the tab as shown: input, prediction, bars and the network view."""
        ok = self.grab().save(str(path))
        self._show_message("" if ok else f"Could not write {path}", status=f"Saved {path}")
        return ok

    def _show_message(self, text: str, status: str = "") -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))
        if text or status:
            self._state.status_posted.emit(text or status)

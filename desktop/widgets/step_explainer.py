"""Figure 15 in numbers: what one training step did to the pinned image and to one weight.

:class:`StepExplainer` (objectName ``stepExplainer``) shows an
:class:`engine.step_explain.StepExplanation`: the image, its one-hot target beside the outputs
before and after the step, both errors and their change, the gradient norm of every layer (a
click on a row follows that layer's strongest weight), and one weight through the optimiser's
rule. :class:`StepWindow` is the Train tab's non-modal window around it, so the filters view
stays in reach: a click on a weight there calls :meth:`StepExplainer.pick`. Every number comes
from the explanation (engine); this module only lays them out.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.qt_image import array_to_pixmap
from desktop.widgets import scrolled
from desktop.widgets.tone import set_tone, surface, text_colour
from engine.errors import EngineError
from engine.preview import display_image
from engine.step_explain import StepExplanation, WeightStep

IMAGE_SIDE = 84
LOSS_NAMES = {"cross_entropy": "cross-entropy", "total_error": "total error"}
TARGET_ROW = QColor("#fff4c2")
TARGET_WRITTEN = 12  # the one-hot target is written out up to this many classes


def _signed(value: float, digits: int = 4) -> str:
    return f"{value:+.{digits}g}".replace("-", "−")


def _number(value: float, digits: int = 5) -> str:
    return f"{value:.{digits}g}".replace("-", "−")


def _table(name: str, headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers), objectName=name)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setTabKeyNavigation(False)  # Tab leaves the table (the arrow keys move in it)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setStretchLastSection(False)
    return table


def _fill(table: QTableWidget, rows: list[list[str]], highlight: int = -1) -> None:
    """``rows`` in ``table``, the ``highlight`` one shaded and scrolled into view. The columns
    are fitted to their contents once, after the items are in (fitted as each item replaced
    another, every row was measured again per item: 1,000 classes took two minutes a step)."""
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if r == highlight:
                item.setBackground(surface(TARGET_ROW, QApplication.palette(table)))
            table.setItem(r, c, item)
    table.resizeColumnsToContents()
    # tall enough for every row up to 10, then it scrolls; as wide as its columns
    shown = min(len(rows), 10)
    frame = 2 * table.frameWidth()
    height = table.horizontalHeader().height() + frame + 2
    table.setFixedHeight(height + sum(table.rowHeight(r) for r in range(shown)))
    scrollbar = table.verticalScrollBar().sizeHint().width() if len(rows) > shown else 0
    width = sum(table.columnWidth(c) for c in range(table.columnCount()))
    table.setFixedWidth(width + frame + scrollbar + 2)  # no sideways scrolling
    if 0 <= highlight < len(rows):  # in sight: with 1,000 classes it may be far down
        table.scrollToItem(table.item(highlight, 0), QAbstractItemView.ScrollHint.PositionAtCenter)


class StepExplainer(QWidget):
    """The numbers of one step. ``show_step(explanation)``, ``pick(key, index)``; signal
    ``weight_picked(key, index)`` when the user follows another weight from the layer table."""

    weight_picked = Signal(str, tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="stepExplainer")
        self.explanation: StepExplanation | None = None
        self.weight: WeightStep | None = None
        self.title = QLabel("Click Step to train one batch and see it here in numbers.")
        self.title.setObjectName("stepTitle")
        self.title.setWordWrap(True)
        self.image = QLabel(objectName="stepImage")
        self.image.setFixedSize(IMAGE_SIDE, IMAGE_SIDE)
        self.image.setScaledContents(True)
        self.image_caption = QLabel(objectName="stepImageCaption")
        self.image_caption.setWordWrap(True)
        self.image_caption.setTextFormat(Qt.TextFormat.PlainText)  # a class name, as written
        self.image_caption.setFixedWidth(IMAGE_SIDE)
        self.outputs = _table("stepOutputs", ["class", "target", "before", "after", "change"])
        self.errors = QLabel(objectName="stepErrors")
        self.errors.setWordWrap(True)
        self.errors.setTextFormat(Qt.TextFormat.RichText)
        self.errors.setMinimumWidth(180)
        self.init_note = QLabel(objectName="stepInitNote")
        self.init_note.setWordWrap(True)
        set_tone(self.init_note, "background: #e8f0fe; padding: 6px; border-radius: 4px;")
        self.init_note.setVisible(False)
        self.layers = _table(
            "stepLayers", ["layer", "kind", "parameters", "‖dE/dw‖ this image", "‖dE/dw‖ batch"]
        )
        self.layers.cellClicked.connect(self._on_layers_cell_clicked)
        self.layers.currentCellChanged.connect(self._on_layers_current_cell_changed)
        self.weight_label = QLabel(objectName="stepWeight")
        self.weight_label.setWordWrap(True)
        self.weight_label.setTextFormat(Qt.TextFormat.RichText)
        self.weight_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        head = QVBoxLayout()
        head.addWidget(self.image)
        head.addWidget(self.image_caption)
        head.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(head)
        top.addWidget(self.outputs, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.errors, 1, Qt.AlignmentFlag.AlignTop)
        outputs_box = QGroupBox("The pinned image: target and outputs (softmax), errors")
        outputs_layout = QVBoxLayout(outputs_box)
        outputs_layout.addLayout(top)
        outputs_layout.addWidget(self.init_note)
        layers_box = QGroupBox(
            "Backpropagation: the gradient of every layer (click one to follow it)"
        )
        QVBoxLayout(layers_box).addWidget(self.layers)
        weight_box = QGroupBox("One weight through the step")
        QVBoxLayout(weight_box).addWidget(self.weight_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.title)
        layout.addWidget(outputs_box)
        layout.addWidget(layers_box)
        layout.addWidget(weight_box)
        layout.addStretch(1)

    # ----- showing ------------------------------------------------------------------------
    def show_step(self, e: StepExplanation) -> None:
        """Show a new step; the weight followed stays the same when the model still has it."""
        keep = self.weight is not None and self.weight.key in e.weights_before
        self.explanation = e
        loss = LOSS_NAMES.get(e.loss, e.loss)
        images = "image" if e.batch_size == 1 else "images"
        self.title.setText(
            f"<b>One training step</b> (epoch {e.epoch}, batch {e.batch}): forward pass, "
            f"error, backpropagation, then each weight moves against its gradient. The batch "
            f"had {e.batch_size} {images}, mean {loss} {_number(e.batch_loss)} before the step; "
            "below, the pinned image's own numbers."
        )
        self.image.setPixmap(array_to_pixmap(display_image(e.image)))
        self.image_caption.setText(f"a {e.classes[e.label]}")
        self._show_outputs(e)
        self._show_errors(e, loss)
        rows = [
            [
                g.node,
                g.kind,
                f"{g.parameters:,}",
                f"{g.image_norm:.4g}",
                f"{g.batch_norm:.4g}",
            ]
            for g in e.layers
        ]
        _fill(self.layers, rows)
        if keep and self.weight is not None:
            self.pick(self.weight.key, self.weight.index)
        else:
            self.pick(*e.default_weight())

    def _show_outputs(self, e: StepExplanation) -> None:
        target, change = e.target, e.probability_change
        rows = [
            [
                name,
                f"{target[k]:.0f}",
                f"{e.before.probs[k]:.4f}",
                f"{e.after.probs[k]:.4f}",
                _signed(change[k], 3),
            ]
            for k, name in enumerate(e.classes)
        ]
        _fill(self.outputs, rows, highlight=e.label)

    def _show_errors(self, e: StepExplanation, loss: str) -> None:
        name, k = html.escape(e.classes[e.label]), len(e.classes)
        target = f"Target vector [{', '.join(f'{v:.0f}' for v in e.target)}] ({name})."
        if k > TARGET_WRITTEN:  # a thousand zeros would be a wall: say where the 1 is
            target = f"Target vector: 1 for {name} (place {e.label + 1} of {k:,}), 0 elsewhere."
        trained = " <i>(the loss being trained: E in dE/dw below)</i>"
        lines = [
            target,
            "Total error ½ Σ (target − output)²: "
            f"<b>{e.before.total_error:.4f} → {e.after.total_error:.4f}</b> "
            f"({_signed(e.total_error_change)})" + (trained if e.loss == "total_error" else ""),
            f"Cross-entropy −ln p({html.escape(e.classes[e.label])}): "
            f"<b>{e.before.cross_entropy:.4f} → {e.after.cross_entropy:.4f}</b> "
            f"({_signed(e.cross_entropy_change)})" + (trained if e.loss == "cross_entropy" else ""),
            "The step follows the batch's mean gradient, so this image's error can also rise "
            "when the image is not in the batch."
            if e.batch_size > 1
            else "The step followed the gradient of its one image (not necessarily this one).",
            f"A uniform guess over {len(e.classes)} classes scores ln {len(e.classes)} = "
            f"{e.uniform_loss:.3f}; the batch's {loss} before the step: {_number(e.batch_loss)}.",
        ]
        self.errors.setText("".join(f"<p style='margin:0 0 5px 0'>{line}</p>" for line in lines))
        self.init_note.setVisible(e.untrained)
        if e.untrained:
            self.init_note.setText(
                f"This network was untrained: its first batch loss is {e.batch_loss:.3f}, "
                f"against ln {len(e.classes)} = {e.uniform_loss:.3f} for a uniform guess. "
                f"{e.init_note}"
            )

    def pick(self, key: str, index: tuple) -> bool:
        """Follow weight ``key[index]`` (False, and nothing changes, when there is no step yet
        or the model has no such weight)."""
        e = self.explanation
        if e is None:
            return False
        try:
            w = e.weight(key, tuple(index))
        except EngineError:
            return False
        self.weight = w
        rule = "".join(f"<br>&nbsp;&nbsp;{html.escape(line)}" for line in w.rule_lines)
        same = (
            ""
            if abs(w.expected - w.new_value) <= 1e-6 * max(1.0, abs(w.value))
            else (f" (the rule gives {_number(w.expected, 7)})")
        )
        grey = text_colour(self.weight_label, "#555")
        self.weight_label.setText(
            f"<b>{html.escape(w.name)}</b> · click a weight in the filters view (Inside the "
            "network) or a layer above to follow another<br>"
            f"value before the step w = <b>{_number(w.value, 7)}</b><br>"
            f"dE/dw for the pinned image alone: {_number(w.image_grad)}<br>"
            f"dE/dw for the batch (the step uses this one): <b>{_number(w.batch_grad)}</b><br>"
            f"learning rate lr = {w.lr:g}<br>"
            f"rule: {html.escape(w.rule)}{rule}<br>"
            f"new value (read from the model): <b>{_number(w.new_value, 7)}</b> "
            f"(change {_signed(w.change)}){same}<br>"
            f"<span style='color:{grey}'>plain SGD, w − lr × dE/dw, would give "
            f"{_number(w.plain_sgd, 7)}</span>"
        )
        return True

    def _on_layers_current_cell_changed(self, row: int, column: int, before: int, _: int) -> None:
        """The arrow keys follow a layer as a click does (a click itself: cellClicked); the
        first row made current by tabbing into the table leaves the followed weight alone."""
        keys = self.layers.hasFocus() and QApplication.mouseButtons() == Qt.MouseButton.NoButton
        if keys and before >= 0:
            self._on_layers_cell_clicked(row, column)

    def _on_layers_cell_clicked(self, row: int, _column: int) -> None:
        e = self.explanation
        if e is None or not 0 <= row < len(e.layers):
            return
        node = e.layers[row].node
        keys = [k for k in e.parameter_keys() if k.rsplit(".", 1)[0] == node]
        key = next((k for k in keys if k.endswith(".weight")), keys[0])
        index = e.strongest(key)
        if self.pick(key, index):
            self.weight_picked.emit(key, index)

    def show_reason(self, reason: str) -> None:
        """A step ran but could not be explained: say why."""
        self.title.setText(f"This step cannot be shown in numbers: {reason}.")


class StepWindow(QDialog):
    """The non-modal window around a :class:`StepExplainer`, with its own Step button
    (signal ``step_requested``)."""

    step_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="stepWindow")
        self.setWindowTitle("One training step, in numbers")
        self.explainer = StepExplainer()
        self.step_button = QPushButton("Step again", objectName="stepAgainButton")
        self.step_button.setToolTip("Train on one more batch and explain it")
        self.step_button.clicked.connect(self.step_requested)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.step_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(scrolled(self.explainer), 1)
        layout.addLayout(buttons)
        self.resize(640, 720)

    def showEvent(self, event) -> None:
        # Fit the screen (a 1024x700 one too) and, the first time, sit over the left of the
        # window, so the filters view (right) stays in sight for picking weights.
        screen = (self.parentWidget() or self).screen().availableGeometry()
        self.resize(min(self.width(), screen.width()), min(self.height(), screen.height() - 40))
        if not self.property("placed") and self.parentWidget() is not None:
            self.move(self.parentWidget().window().geometry().topLeft())
            self.setProperty("placed", True)
        super().showEvent(event)

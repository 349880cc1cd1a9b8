"""The step-through of the article's Figure 5: a window slides over a small matrix and fills the
output one cell at a time.

Two sources: the article's 5x5 binary image with the kernel [[1,0,1],[0,1,0],[1,0,1]]
(built in), or a small gray crop of the loaded image with the user's kernel, stride and border
(given by the owner through :meth:`ConvAnimation.set_crop`). Play/pause, step, step back,
reset and a speed slider. The maths comes from :func:`engine.filters.conv_steps`.

Signals: ``position_changed(int)`` (cells filled so far).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets.pixel_inspector import draw_matrix, patch_colors, short
from engine.colormap import weight_tints
from engine.filters import FIGURE5_IMAGE, FIGURE5_KERNEL, ConvSteps, conv_steps

FIGURE5 = "Article's example (Figure 5)"
CROP = "Crop of your image, your kernel"


class _Board(QWidget):
    """Paints input (with the window), kernel and the output filled so far."""

    def __init__(self, owner: ConvAnimation) -> None:
        super().__init__(owner)
        self._owner = owner
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(200)

    def sizeHint(self) -> QSize:
        return QSize(760, 320)

    def paintEvent(self, event: QPaintEvent) -> None:
        owner = self._owner
        steps = owner.steps()
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        if steps is None:
            p.end()
            return
        pos = owner.position()
        current = steps.steps[pos - 1] if pos > 0 else None
        m, k = steps.matrix, steps.kernel
        f = k.shape[0]
        W, H = float(self.width()), float(self.height())
        # widths in proportion to the number of columns, with room for the signs
        cols = m.shape[1] + k.shape[1] + steps.output.shape[1]
        sign_w = 40.0
        unit = min((W - 2 * sign_w - 24) / cols, (H - 30) / max(m.shape[0], 1), 72.0)
        total_w = unit * cols + 2 * sign_w
        x = (W - total_w) / 2
        shaded = np.zeros(m.shape, bool)
        if steps.pad:
            shaded[:] = True
            shaded[steps.pad : -steps.pad, steps.pad : -steps.pad] = False
        fill = owner.matrix_fill(m)
        hl = (current.row0, current.col0, f, f) if current else None
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        draw_matrix(
            p,
            QRectF(x, 0, unit * m.shape[1], H),
            m,
            fill=fill,
            highlight=hl,
            shaded=shaded,
            title="input" + (" (padded)" if steps.pad else ""),
            max_cell=72.0,
        )
        x += unit * m.shape[1]
        big = QFont(p.font())
        big.setPixelSize(22)
        p.setFont(big)
        p.setPen(QColor(120, 124, 130))
        p.drawText(QRectF(x, 0, sign_w, H), Qt.AlignmentFlag.AlignCenter, "∗")
        x += sign_w
        draw_matrix(
            p,
            QRectF(x, 0, unit * k.shape[1], H),
            k,
            fill=weight_tints(k),
            title="kernel",
            max_cell=72.0,
        )
        x += unit * k.shape[1]
        p.setFont(big)
        p.setPen(QColor(120, 124, 130))
        p.drawText(QRectF(x, 0, sign_w, H), Qt.AlignmentFlag.AlignCenter, "→")
        x += sign_w
        out = steps.output
        shown = np.zeros(out.shape, bool)
        for s in steps.steps[:pos]:
            shown[s.out_row, s.out_col] = True
        ohl = (current.out_row, current.out_col, 1, 1) if current else None
        draw_matrix(
            p,
            QRectF(x, 0, unit * out.shape[1], H),
            out,
            shown=shown,
            highlight=ohl,
            fill=owner.output_fill(out),
            title="output (feature map)",
            max_cell=72.0,
        )
        p.end()


class ConvAnimation(QWidget):
    position_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepAnimation")
        self._steps: ConvSteps | None = None
        self._pos = 0
        self._crop: ConvSteps | None = None
        self._crop_is_image = True
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_timer_timeout)

        self.source_box = QComboBox(objectName="stepSourceBox")
        self.source_box.addItems([FIGURE5, CROP])
        self.source_box.currentTextChanged.connect(self._on_source_changed)
        self.play_button = QPushButton("▶ Play", objectName="stepPlayButton")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._on_play_toggled)
        self.back_button = QPushButton("◀ Back", objectName="stepBackButton")
        self.back_button.clicked.connect(self.step_back)
        self.step_button = QPushButton("Step ▶", objectName="stepButton")
        self.step_button.clicked.connect(self.step)
        self.reset_button = QPushButton("⟲ Reset", objectName="stepResetButton")
        self.reset_button.clicked.connect(self.reset)
        self.speed = QSlider(Qt.Orientation.Horizontal, objectName="stepSpeed")
        self.speed.setRange(1, 20)  # half-steps per second
        self.speed.setValue(4)
        self.speed.setFixedWidth(110)
        self.speed.setToolTip("Speed")
        self.speed.valueChanged.connect(self._on_speed_changed)
        self.speed_label = QLabel()
        self._on_speed_changed(self.speed.value())

        controls = QHBoxLayout()
        controls.addWidget(self.source_box)
        controls.addStretch(1)
        controls.addWidget(QLabel("Speed"))
        controls.addWidget(self.speed)
        controls.addWidget(self.speed_label)
        buttons = QHBoxLayout()
        for b in (self.reset_button, self.back_button, self.play_button, self.step_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.board = _Board(self)
        self.explain = QLabel(objectName="stepExplanation")
        self.explain.setWordWrap(True)
        self.explain.setTextFormat(Qt.TextFormat.RichText)
        self.explain.setMinimumHeight(48)
        self.explain.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        intro = QLabel(
            "The kernel slides over the input by the stride. At each position the numbers "
            "under it are multiplied by the weights and added up: that sum is one cell of the "
            "output, the <i>feature map</i>."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(controls)
        layout.addLayout(buttons)
        layout.addWidget(self.board, 1)
        layout.addWidget(self.explain)
        self._load(conv_steps(FIGURE5_IMAGE, FIGURE5_KERNEL))

    # ----- public -------------------------------------------------------------------------
    def steps(self) -> ConvSteps | None:
        return self._steps

    def position(self) -> int:
        """How many output cells are filled (0 .. number of steps)."""
        return self._pos

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def set_crop(self, steps: ConvSteps | None) -> None:
        """The image-crop source (computed by the owner with the current kernel)."""
        self._crop = steps
        if self.source_box.currentText() == CROP:
            self._load(steps)

    def show_figure5(self) -> None:
        self.source_box.setCurrentText(FIGURE5)

    def step(self) -> None:
        if self._steps is not None and self._pos < len(self._steps.steps):
            self._set_pos(self._pos + 1)
        if self._steps is None or self._pos >= len(self._steps.steps):
            self.play_button.setChecked(False)

    def step_back(self) -> None:
        if self._pos > 0:
            self._set_pos(self._pos - 1)

    def reset(self) -> None:
        self.play_button.setChecked(False)
        self._set_pos(0)

    def matrix_fill(self, m: np.ndarray) -> np.ndarray | None:
        if self.source_box.currentText() == FIGURE5:
            return None  # binary: the gray ramp shows 0/1 well
        return patch_colors(m)

    def output_fill(self, out: np.ndarray) -> np.ndarray | None:
        return weight_tints(out) if out.min() < 0 else None

    # ----- internals ----------------------------------------------------------------------
    def _load(self, steps: ConvSteps | None) -> None:
        self._steps = steps
        self._pos = 0
        self.play_button.setChecked(False)
        self._refresh()
        self.position_changed.emit(0)

    def _set_pos(self, pos: int) -> None:
        self._pos = pos
        self._refresh()
        self.position_changed.emit(pos)

    def _refresh(self) -> None:
        steps = self._steps
        n = len(steps.steps) if steps else 0
        self.step_button.setEnabled(self._pos < n)
        self.back_button.setEnabled(self._pos > 0)
        if steps is None:
            self.explain.setText("Open an image to step through a crop of it.")
        elif self._pos == 0:
            oh, ow = steps.output.shape
            self.explain.setText(
                f"{n} window positions make a {oh}×{ow} output. Press <b>Step</b> or <b>Play</b>."
            )
        else:
            s = steps.steps[self._pos - 1]
            terms = [
                f"{short(a)}·{short(b)}"
                for a, b in zip(s.patch.ravel(), steps.kernel.ravel(), strict=True)
                if b != 0
            ]
            if len(terms) > 12:
                terms = [*terms[:12], "…"]
            self.explain.setText(
                f"Step {self._pos} of {n}: output row {s.out_row + 1}, column {s.out_col + 1} "
                f"= {' + '.join(terms) or '0'} = <b>{short(s.total)}</b>"
            )
        self.board.update()

    def _on_source_changed(self, text: str) -> None:
        if text == FIGURE5:
            self._load(conv_steps(FIGURE5_IMAGE, FIGURE5_KERNEL))
        else:
            self._load(self._crop)

    def _on_play_toggled(self, on: bool) -> None:
        self.play_button.setText("⏸ Pause" if on else "▶ Play")
        if on:
            if self._steps is not None and self._pos >= len(self._steps.steps):
                self._set_pos(0)
            self._timer.start()
        else:
            self._timer.stop()

    def _on_speed_changed(self, value: int) -> None:
        per_second = value / 2
        self._timer.setInterval(int(1000 / per_second))
        self.speed_label.setText(f"{short(per_second)}/s")

    def _on_timer_timeout(self) -> None:
        self.step()

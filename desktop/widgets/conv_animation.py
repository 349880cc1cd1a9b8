"""The step-through: the article's Figure 5 window slides over a small matrix and fills the
feature map one cell at a time, then (when the tab's ReLU and pooling are on) ReLU turns the
negative cells to 0 one by one and the pooling window slides over the result, its winner
ringed (Figures 8 and 10).

Two sources: the article's 5x5 binary image with the kernel [[1,0,1],[0,1,0],[1,0,1]], or a
small gray crop of the loaded image with the user's kernel, stride and border; the owner
gives both as :class:`engine.filters.StepSequence` (:meth:`ConvAnimation.set_figure5`,
:meth:`ConvAnimation.set_crop`). Buttons and keys: Reset (Home), Back (←), Play/Pause
(Space), Step (→), End; a button per stage jumps to it; a speed slider. The drawing is
:class:`desktop.widgets.step_board.StepBoard`.

Signals: ``position_changed(int)`` (steps done so far).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets.pixel_inspector import patch_colors, short
from desktop.widgets.step_board import StepBoard
from engine.filters import STAGES, ConvSteps, StepSequence, figure5_sequence

FIGURE5 = "Article's example (Figure 5)"
CROP = "Crop of your image, your kernel"
STAGE_LABELS = {"conv": "1 Convolution", "relu": "2 ReLU", "pool": "3 Pooling"}
KEYS = {
    Qt.Key.Key_Right: "step",
    Qt.Key.Key_Left: "step_back",
    Qt.Key.Key_Home: "reset",
    Qt.Key.Key_End: "to_end",
    Qt.Key.Key_Space: "toggle_play",
}


def _signature(seq: StepSequence | None) -> tuple:
    """What tells two sequences of the same matrix apart (ReLU, pooling, windows)."""
    if seq is None:
        return ()
    return (seq.total, len(seq.relu), seq.pool_kind, tuple((w.row0, w.col0) for w in seq.pool))


def _same(a: StepSequence | None, b: StepSequence | None) -> bool:
    """The same steps: same stages, input and kernel (a recomputed result of the same crop)."""
    if a is None or b is None:
        return a is b
    return (
        _signature(a) == _signature(b)
        and np.array_equal(a.conv.matrix, b.conv.matrix)
        and np.array_equal(a.conv.kernel, b.conv.kernel)
    )


class ConvAnimation(QWidget):
    position_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepAnimation")
        self._seq: StepSequence | None = None
        self._pos = 0
        self._figure5 = figure5_sequence()
        self._crop: StepSequence | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.board = StepBoard(self)
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
            "output, the <i>feature map</i>. With ReLU and pooling on (left, <i>Then, as in a "
            "CNN</i>) the steps go on through them."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(self._build_controls())
        layout.addLayout(self._build_buttons())
        layout.addWidget(self.board, 1)
        layout.addWidget(self.explain)
        self._load(self._figure5)

    def _build_controls(self) -> QHBoxLayout:
        self.source_box = QComboBox(objectName="stepSourceBox")
        self.source_box.addItems([FIGURE5, CROP])
        self.source_box.currentTextChanged.connect(self._on_source_changed)
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
        return controls

    def _build_buttons(self) -> QHBoxLayout:
        self.play_button = QPushButton("▶ Play", objectName="stepPlayButton")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play or pause (Space)")
        self.play_button.toggled.connect(self._on_play_toggled)
        self.back_button = QPushButton("◀ Back", objectName="stepBackButton")
        self.back_button.setToolTip("One step back (←)")
        self.back_button.clicked.connect(self.step_back)
        self.step_button = QPushButton("Step ▶", objectName="stepButton")
        self.step_button.setToolTip("One step (→)")
        self.step_button.clicked.connect(self.step)
        self.reset_button = QPushButton("⟲ Reset", objectName="stepResetButton")
        self.reset_button.setToolTip("Back to the start (Home); End jumps to the last step")
        self.reset_button.clicked.connect(self.reset)
        buttons = QHBoxLayout()
        for b in (self.reset_button, self.back_button, self.play_button, self.step_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.stage_group = QButtonGroup(self)
        self.stage_buttons: dict[str, QPushButton] = {}
        for stage in STAGES:
            b = QPushButton(STAGE_LABELS[stage], objectName=f"stage_{stage}")
            b.setCheckable(True)
            b.setFlat(True)
            b.setToolTip("Jump to this stage")
            b.clicked.connect(lambda _c=False, s=stage: self.show_stage(s))
            self.stage_group.addButton(b)
            self.stage_buttons[stage] = b
            buttons.addWidget(b)
        return buttons

    # ----- public -------------------------------------------------------------------------
    def sequence(self) -> StepSequence | None:
        return self._seq

    def steps(self) -> ConvSteps | None:
        """The convolution part of the sequence shown."""
        return None if self._seq is None else self._seq.conv

    def position(self) -> int:
        """How many steps are done (0 .. the sequence's total)."""
        return self._pos

    def stage(self) -> str:
        """The stage shown: conv, relu or pool."""
        return self.board.stage()

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def set_crop(self, seq: StepSequence | None) -> None:
        """The image-crop source (computed by the owner with the current kernel); the position
        is kept when the steps are the same (the result was recomputed, nothing changed)."""
        same = _same(seq, self._crop)
        self._crop = seq
        if self.source_box.currentText() == CROP:
            if same:
                self._seq = seq
                self._refresh()
            else:
                self._load(seq)

    def set_figure5(self, seq: StepSequence) -> None:
        """The Figure 5 source with the owner's ReLU and pooling; the position is kept when
        nothing changed for it (a kernel edit does not restart the article's example)."""
        same = _same(seq, self._figure5)
        self._figure5 = seq
        if self.source_box.currentText() == FIGURE5 and not same:
            self._load(seq)

    def show_figure5(self) -> None:
        self.source_box.setCurrentText(FIGURE5)

    def show_crop(self) -> None:
        self.source_box.setCurrentText(CROP)

    def show_stage(self, stage: str) -> bool:
        """Go to the first step of ``stage`` (conv, relu, pool); False when the sequence has
        no such stage (ReLU or pooling off)."""
        seq = self._seq
        if seq is None or stage not in seq.stages():
            self._refresh()
            return False
        self.play_button.setChecked(False)
        self._set_pos(seq.stage_start(stage) + 1)
        return True

    def step(self) -> None:
        if self._seq is not None and self._pos < self._seq.total:
            self._set_pos(self._pos + 1)
        if self._seq is None or self._pos >= self._seq.total:
            self.play_button.setChecked(False)

    def step_back(self) -> None:
        if self._pos > 0:
            self._set_pos(self._pos - 1)

    def reset(self) -> None:
        self.play_button.setChecked(False)
        self._set_pos(0)

    def to_end(self) -> None:
        self.play_button.setChecked(False)
        if self._seq is not None:
            self._set_pos(self._seq.total)

    def toggle_play(self) -> None:
        self.play_button.toggle()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = KEYS.get(Qt.Key(event.key()))
        if action is None:
            super().keyPressEvent(event)
            return
        getattr(self, action)()
        event.accept()

    # ----- internals ----------------------------------------------------------------------
    def _load(self, seq: StepSequence | None) -> None:
        self._seq = seq
        self._pos = 0
        self.play_button.setChecked(False)
        self._refresh()
        self.position_changed.emit(0)

    def _set_pos(self, pos: int) -> None:
        self._pos = pos
        self._refresh()
        self.position_changed.emit(pos)

    def _refresh(self) -> None:
        seq = self._seq
        n = seq.total if seq else 0
        self.step_button.setEnabled(self._pos < n)
        self.back_button.setEnabled(self._pos > 0)
        stages = seq.stages() if seq else []
        for stage, b in self.stage_buttons.items():
            b.setEnabled(stage in stages)
        if seq is not None and seq.pool_kind != "none":
            self.stage_buttons["pool"].setText(f"3 {seq.pool_kind.capitalize()} pooling")
        fill = None
        if seq is not None and self.source_box.currentText() == CROP:
            fill = patch_colors(seq.conv.matrix)
        self.board.show_position(seq, self._pos, fill)
        self.stage_buttons[self.board.stage()].setChecked(True)
        self.explain.setText(self._explanation())

    def _explanation(self) -> str:
        seq = self._seq
        if seq is None:
            return "Open an image to step through a crop of it."
        if self._pos == 0:
            oh, ow = seq.conv.output.shape
            more = {"relu": "ReLU", "pool": f"{seq.pool_kind} pooling"}
            then = [more[s] for s in seq.stages()[1:]]
            tail = f", then {' and '.join(then)}" if then else ""
            note = f" (No pooling here: {seq.note}.)" if seq.note else ""
            return (
                f"{len(seq.conv.steps)} window positions make a {oh}×{ow} feature map{tail}: "
                f"{seq.total} steps. Press <b>Step</b> (→) or <b>Play</b> (Space).{note}"
            )
        stage, i = seq.at(self._pos)
        head = f"Step {self._pos} of {seq.total}: "
        if stage == "relu":
            s = seq.relu[i]
            why = "negative, so it becomes 0" if s.zeroed else "not negative, so it stays"
            return (
                f"{head}ReLU on row {s.row + 1}, column {s.col + 1}: "
                f"max(0, {short(s.before)}) = <b>{short(s.after)}</b> ({why})"
            )
        if stage == "pool":
            w = seq.pool[i]
            n = w.values.shape[0]
            vals = ", ".join(short(v) for v in w.values.ravel())
            win = "" if w.winner is None else "; the winner is ringed in green"
            return (
                f"{head}{seq.pool_kind} of the {n}×{n} window at rows {w.row0 + 1}–{w.row0 + n}, "
                f"columns {w.col0 + 1}–{w.col0 + n}: {seq.pool_kind}({vals}) = "
                f"<b>{short(w.result)}</b>{win}"
            )
        s = seq.conv.steps[i]
        kernel = seq.conv.kernel
        terms = [
            f"{short(a)}·{short(b)}"
            for a, b in zip(s.patch.ravel(), kernel.ravel(), strict=True)
            if b != 0
        ]
        if len(terms) > 12:
            terms = [*terms[:12], "…"]
        return (
            f"{head}output row {s.out_row + 1}, column {s.out_col + 1} "
            f"= {' + '.join(terms) or '0'} = <b>{short(s.total)}</b>"
        )

    def _on_source_changed(self, text: str) -> None:
        self._load(self._figure5 if text == FIGURE5 else self._crop)

    def _on_play_toggled(self, on: bool) -> None:
        self.play_button.setText("⏸ Pause" if on else "▶ Play")
        if on:
            if self._seq is not None and self._pos >= self._seq.total:
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

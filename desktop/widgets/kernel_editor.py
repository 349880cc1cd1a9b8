"""The Filters tab's kernel editor: presets, size, the stack of kernels, the grid of weights,
divisor/offset, undo/redo and kernel files.

It holds the stack as the user types it (cell texts may be invalid for a while: its
:class:`~desktop.widgets.kernel_edits.TypedKernel` and undo steps live in
:mod:`desktop.widgets.kernel_edits`) and offers it as engine
:class:`~engine.filters.KernelSpec` objects. Resizing a kernel is
:func:`engine.filters.resize_cells`; facts about a kernel come from the engine too.

Signals: ``kernels_changed()`` (any edit, undo, preset, stack change: recompute),
``message_posted(text)`` (for the status bar), ``error_posted(text)`` (for the tab's banner).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets.kernel_edits import KernelEdit, TypedKernel
from desktop.widgets.kernel_grid import KernelGrid
from desktop.widgets.pixel_inspector import short
from desktop.widgets.tone import set_tone, text_colour
from engine import filters as F
from engine.errors import EngineError

CUSTOM = "Custom kernel"
# kernels offered, in order, when the user adds one to the stack
STACK_ORDER = (
    "Edge detection 3",
    "Sobel x",
    "Sobel y",
    "Sharpen",
    "Emboss",
    "Box blur",
    "Edge detection 2",
    "Edge detection 1",
)


class KernelEditor(QGroupBox):
    kernels_changed = Signal()
    message_posted = Signal(str)
    error_posted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Kernel", parent)
        self.setObjectName("kernelEditor")
        self._kernels = [TypedKernel.from_spec(F.PRESETS["Edge detection 3"].spec())]
        self._current = 0
        self._updating = False
        self.undo_stack = QUndoStack(self)
        v = QVBoxLayout(self)
        v.setContentsMargins(10, 8, 10, 10)
        v.setSpacing(6)
        v.addLayout(self._build_top())
        v.addLayout(self._build_stack_row())
        self._build_grid(v)
        v.addLayout(self._build_scalars())
        v.addLayout(self._build_file_row())
        self._build_undo_actions()
        self._load_into_widgets()

    # ----- building ----------------------------------------------------------------------
    def _build_top(self) -> QHBoxLayout:
        top = QHBoxLayout()
        self.preset_box = QComboBox(objectName="presetBox")
        self.preset_box.addItem(CUSTOM)
        self.preset_box.addItems(list(F.PRESETS))
        self.preset_box.setToolTip("Presets: the article's table and a few classics")
        self.preset_box.currentIndexChanged.connect(self._on_preset_box_changed)
        self.size_box = QComboBox(objectName="kernelSizeBox")
        self.size_box.addItems([f"{n}×{n}" for n in F.KERNEL_SIZES])
        self.size_box.currentIndexChanged.connect(self._on_size_box_changed)
        top.addWidget(self.preset_box, 1)
        top.addWidget(self.size_box)
        return top

    def _build_stack_row(self) -> QHBoxLayout:
        stack = QHBoxLayout()
        stack.setSpacing(4)
        self.kernel_tabs = QTabBar(objectName="kernelTabs")
        self.kernel_tabs.setExpanding(False)
        self.kernel_tabs.setDrawBase(False)
        self.kernel_tabs.addTab("1")
        self.kernel_tabs.currentChanged.connect(self._on_kernel_tabs_changed)
        self.add_kernel_button = QToolButton(objectName="addKernelButton", text="+")
        self.add_kernel_button.setToolTip(
            f"Add a kernel (up to {F.MAX_KERNELS}): several kernels make depth-N maps"
        )
        self.add_kernel_button.clicked.connect(self.add_kernel)
        self.remove_kernel_button = QToolButton(objectName="removeKernelButton", text="−")
        self.remove_kernel_button.setToolTip("Remove this kernel")
        self.remove_kernel_button.clicked.connect(self.remove_kernel)
        stack.addWidget(QLabel("Kernels"))
        stack.addWidget(self.kernel_tabs, 1)
        stack.addWidget(self.add_kernel_button)
        stack.addWidget(self.remove_kernel_button)
        return stack

    def _build_grid(self, v: QVBoxLayout) -> None:
        self.grid = KernelGrid()
        self.grid.texts_edited.connect(self._on_grid_texts_edited)
        self.grid.validity_changed.connect(self._on_grid_validity_changed)
        self.grid.input_refused.connect(self._on_grid_input_refused)
        self.grid.kernel_pasted.connect(self._on_grid_kernel_pasted)
        self.grid.undo_requested.connect(self.undo_stack.undo)
        self.grid.redo_requested.connect(self.undo_stack.redo)
        v.addWidget(self.grid)
        self.hint = QLabel(objectName="kernelHint")
        self.hint.setWordWrap(True)
        set_tone(self.hint, "QLabel { color: #c5221f; }")
        self.hint.hide()
        v.addWidget(self.hint)
        self.kernel_info = QLabel(objectName="kernelInfo")
        self.kernel_info.setWordWrap(True)
        self.kernel_info.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.kernel_info)
        self.preset_note = QLabel(objectName="presetNote")
        self.preset_note.setWordWrap(True)
        set_tone(self.preset_note, "QLabel { color: #5f6368; font-style: italic; }")
        v.addWidget(self.preset_note)

    def _build_scalars(self) -> QGridLayout:
        row = QGridLayout()
        row.setHorizontalSpacing(8)
        self.divisor_spin = QDoubleSpinBox(objectName="divisorSpin")
        self.divisor_spin.setRange(-100000, 100000)
        self.divisor_spin.setDecimals(3)
        self.divisor_spin.setValue(1)
        self.divisor_spin.setToolTip("Every sum is divided by this (0 is not allowed)")
        self.divisor_spin.valueChanged.connect(self._on_divisor_spin_changed)
        self.normalize_check = QCheckBox("Normalise", objectName="normalizeCheck")
        self.normalize_check.setToolTip("Divide by the kernel's sum when it is not 0")
        self.normalize_check.toggled.connect(self._on_normalize_check_toggled)
        self.offset_spin = QDoubleSpinBox(objectName="offsetSpin")
        self.offset_spin.setRange(-100000, 100000)  # as the divisor: a file's 2500 shows
        self.offset_spin.setDecimals(1)
        self.offset_spin.setToolTip("Added after dividing: 128 shows signed results as gray")
        self.offset_spin.valueChanged.connect(self._on_offset_spin_changed)
        row.addWidget(QLabel("Divisor"), 0, 0)
        row.addWidget(self.divisor_spin, 0, 1)
        row.addWidget(self.normalize_check, 0, 2)
        row.addWidget(QLabel("Offset"), 1, 0)
        row.addWidget(self.offset_spin, 1, 1)
        return row

    def _build_file_row(self) -> QHBoxLayout:
        files = QHBoxLayout()
        self.undo_button = QToolButton(objectName="undoButton", text="↶ Undo")
        self.undo_button.setToolTip("Undo kernel edit (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.undo_button.setEnabled(False)
        self.undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.redo_button = QToolButton(objectName="redoButton", text="↷ Redo")
        self.redo_button.setToolTip("Redo kernel edit (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(self.undo_stack.redo)
        self.redo_button.setEnabled(False)
        self.undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
        load = QPushButton("Load…", objectName="loadKernelButton")
        load.setToolTip("Load kernels from a JSON file")
        load.clicked.connect(self._on_load_clicked)
        save = QPushButton("Save…", objectName="saveKernelButton")
        save.setToolTip("Save the kernels as JSON")
        save.clicked.connect(self._on_save_clicked)
        files.addWidget(self.undo_button)
        files.addWidget(self.redo_button)
        files.addStretch(1)
        files.addWidget(load)
        files.addWidget(save)
        return files

    def _build_undo_actions(self) -> None:
        """Ctrl+Z / Ctrl+Shift+Z for the owner to add to its window (see :meth:`actions`)."""
        self.undo_action = self.undo_stack.createUndoAction(self, "Undo kernel edit")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "Redo kernel edit")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (self.undo_action, self.redo_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # ----- the stack as the engine sees it -------------------------------------------------
    def kernel_specs(self) -> list[F.KernelSpec] | None:
        """The stack as engine specs, or None while some cell is not a number."""
        try:
            return [k.spec() for k in self._kernels]
        except EngineError:
            return None

    def current_index(self) -> int:
        return self._current

    def current_size(self) -> int:
        return self._kernels[self._current].size

    def add_kernel(self) -> None:
        if len(self._kernels) >= F.MAX_KERNELS:
            return
        used = {k.name for k in self._kernels}
        name = next((n for n in STACK_ORDER if n not in used), "Identity")
        self._kernels.append(TypedKernel.from_spec(F.PRESETS[name].spec()))
        self.kernel_tabs.addTab(str(len(self._kernels)))
        self.kernel_tabs.setCurrentIndex(len(self._kernels) - 1)
        self.undo_stack.clear()  # snapshots refer to kernels by position
        self.kernels_changed.emit()

    def remove_kernel(self) -> None:
        if len(self._kernels) <= 1:
            return
        del self._kernels[self._current]
        self._updating = True
        self.kernel_tabs.removeTab(self.kernel_tabs.count() - 1)
        self._updating = False
        self._current = min(self._current, len(self._kernels) - 1)
        self.kernel_tabs.setCurrentIndex(self._current)
        self._load_into_widgets()
        self.undo_stack.clear()
        self.kernels_changed.emit()

    def load_specs(self, specs: list[F.KernelSpec]) -> None:
        """Replace the stack (a kernel file, another tab's learned filter)."""
        self._replace_stack([TypedKernel.from_spec(s) for s in specs[: F.MAX_KERNELS]], 0)

    def _replace_stack(self, kernels: list[TypedKernel], current: int) -> None:
        self._kernels = kernels
        self._updating = True
        while self.kernel_tabs.count() > len(self._kernels):
            self.kernel_tabs.removeTab(self.kernel_tabs.count() - 1)
        while self.kernel_tabs.count() < len(self._kernels):
            self.kernel_tabs.addTab(str(self.kernel_tabs.count() + 1))
        self._current = min(current, len(self._kernels) - 1)
        self.kernel_tabs.setCurrentIndex(self._current)
        self._updating = False
        self.undo_stack.clear()
        self._load_into_widgets()
        self.kernels_changed.emit()

    def stack_snapshot(self) -> tuple:
        """The whole stack as typed (red cells too) and the current kernel, for
        :meth:`restore_stack`."""
        return self._current, tuple(k.snapshot() for k in self._kernels)

    def restore_stack(self, snapshot: tuple) -> None:
        """Put back a :meth:`stack_snapshot` (the undo history starts again)."""
        current, kernels = snapshot
        self._replace_stack([TypedKernel.from_snapshot(k) for k in kernels], current)

    def load_kernel_file(self, path: Path) -> bool:
        """Load kernels from ``path``; a bad file is explained (``error_posted``)."""
        try:
            self.load_specs(F.load_kernels(path))
        except EngineError as exc:
            self.error_posted.emit(str(exc))
            return False
        return True

    def save_kernel_file(self, path: Path) -> bool:
        """Save the stack to ``path``; a problem (a red cell, a read-only folder, a full disk)
        is explained (``error_posted``) and nothing is lost."""
        specs = self.kernel_specs()
        if specs is None:
            self.error_posted.emit("Fix the red kernel cell before saving.")
            return False
        try:
            F.save_kernels(path, specs)
        except EngineError as exc:
            self.error_posted.emit(str(exc))
            return False
        self.message_posted.emit(f"Saved {len(specs)} kernel(s) to {path}")
        return True

    # ----- edits and undo ------------------------------------------------------------------
    def _push_edit(self, after: TypedKernel, label: str, cell: int | str | None = None) -> None:
        before = self._kernels[self._current].snapshot()
        edit = KernelEdit(self.apply_snapshot, self._current, before, after.snapshot(), label, cell)
        self.undo_stack.push(edit)

    def apply_snapshot(self, index: int, snap: tuple) -> None:
        """Undo/redo and edits land here: store the snapshot and show it."""
        self._kernels[index] = TypedKernel.from_snapshot(snap)
        if index != self._current:
            self.kernel_tabs.setCurrentIndex(index)  # loads the editor
        else:
            self._load_into_widgets()
        self.kernels_changed.emit()

    def _load_into_widgets(self) -> None:
        k = self._kernels[self._current]
        self._updating = True
        try:
            self.grid.set_texts(k.size, k.texts)
            self.size_box.setCurrentIndex(F.KERNEL_SIZES.index(k.size))
            self.divisor_spin.setValue(k.divisor)
            self.divisor_spin.setStyleSheet("")  # a 0 typed and not taken is gone
            self.normalize_check.setChecked(k.normalize)
            self.offset_spin.setValue(k.offset)
            self.preset_box.setCurrentText(k.name if k.name in F.PRESETS else CUSTOM)
            preset = F.PRESETS.get(k.name)
            self.preset_note.setText(preset.description if preset else k.name)
            self.preset_note.setVisible(bool(self.preset_note.text()))
        finally:
            self._updating = False
        # + and - are off where they would do nothing (8 kernels; the last one)
        self.add_kernel_button.setEnabled(len(self._kernels) < F.MAX_KERNELS)
        self.remove_kernel_button.setEnabled(len(self._kernels) > 1)
        self.refresh_info()

    def refresh_info(self) -> None:
        """The sum, the divisor and whether the current kernel is separable."""
        try:
            spec = self._kernels[self._current].spec()
        except EngineError as exc:
            self.kernel_info.setText("")
            if not self.grid.message():  # every cell is a number: the kernel as a whole is not
                self._show_hint(f"{exc} — the result keeps the last valid kernel.")
            return
        if not self.grid.message():
            self._clear_hint()
        total = float(spec.kernel.sum())
        div = spec.effective_divisor()
        text = f"Sum <b>{short(total)}</b>"
        if div != 1:
            text += f" ÷ {short(div)} = <b>{short(total / div)}</b>"
        factors = F.separable_factors(spec.kernel)
        green = text_colour(self.kernel_info, "#188038")
        if factors is not None:
            col, row = factors
            fmt = " ".join
            text += (
                f" · <span style='color:{green}'>separable</span>: "
                f"[{fmt(short(v) for v in col)}]ᵀ × [{fmt(short(v) for v in row)}]"
            )
        else:
            rank1, delta = F.split_centre(spec.kernel)
            if rank1 is not None:
                text += (
                    f" · {short(delta)}×centre + a separable kernel "
                    f"<span style='color:{green}'>(fast)</span>"
                )
            else:
                text += " · not separable"
        self.kernel_info.setText(text)

    def _on_grid_texts_edited(self, before: list, after: list) -> None:
        k = self._kernels[self._current]
        edited = TypedKernel(k.size, list(after), k.divisor, k.normalize, k.offset, "")
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        cell = changed[0] if len(changed) == 1 else None
        self._push_edit(edited, "edit kernel cell", cell)

    def _on_grid_validity_changed(self, message: str) -> None:
        if message:
            self._show_hint(message + " — the result keeps the last valid kernel.")
        else:
            self._clear_hint()

    def _on_grid_kernel_pasted(self, text: str) -> None:
        try:
            F.parse_kernel(text)
        except EngineError as exc:
            self._show_hint(f"The pasted text is not a kernel: {exc}")
            return
        rows = F.kernel_cells(text)  # the numbers as written (1/16 stays 1/16)
        k = self._kernels[self._current]
        cells = [cell for row in rows for cell in row]
        edited = TypedKernel(len(rows), cells, k.divisor, k.normalize, k.offset, "")
        self._push_edit(edited, f"paste a {len(rows)}×{len(rows)} kernel")

    def _on_grid_input_refused(self) -> None:
        self._show_hint("Only numbers go in a kernel cell: 2, -0.5, 1e-3 or a fraction like 1/9.")

    def _show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.show()
        self.message_posted.emit(text)

    def _clear_hint(self) -> None:
        """The complaint is over: off the hint and the status bar (a half-typed ``1/`` must
        not still be 'not a number' once the cell holds ``1/9``)."""
        if not self.hint.isHidden():
            self.hint.hide()
            self.message_posted.emit("")

    def _on_preset_box_changed(self, index: int) -> None:
        name = self.preset_box.itemText(index)
        if self._updating or name not in F.PRESETS:
            return
        self._push_edit(TypedKernel.from_spec(F.PRESETS[name].spec()), f"preset {name}")

    def _on_size_box_changed(self, index: int) -> None:
        if self._updating:
            return
        k = self._kernels[self._current]
        new = F.KERNEL_SIZES[index]
        cells = F.resize_cells(k.texts, k.size, new, fill="0")
        edited = TypedKernel(new, cells, k.divisor, k.normalize, k.offset, "")
        self._push_edit(edited, f"kernel size {new}×{new}")

    def _on_divisor_spin_changed(self, divisor: float) -> None:
        if self._updating:
            return
        if divisor == 0:
            self.divisor_spin.setStyleSheet("QDoubleSpinBox { border: 2px solid #d93025; }")
            self.divisor_spin.setToolTip("0 is not a divisor: a division by 0 has no value")
            return
        self.divisor_spin.setStyleSheet("")
        self._push_scalar("divisor", divisor=divisor)

    def _on_offset_spin_changed(self, offset: float) -> None:
        if not self._updating:
            self._push_scalar("offset", offset=offset)

    def _on_normalize_check_toggled(self, normalize: bool) -> None:
        if not self._updating:
            self._push_scalar("normalise" if normalize else "no normalising", normalize=normalize)

    def _push_scalar(self, label: str, **change) -> None:
        """An edit of the box the user touched only: the others keep the kernel's own values
        (a file's divisor 1/3 shows as 0.333, its offset 2500 as 1000: never written back)."""
        k = self._kernels[self._current]
        values = {"divisor": k.divisor, "normalize": k.normalize, "offset": k.offset, **change}
        edited = TypedKernel(k.size, list(k.texts), name=k.name, **values)
        # typing in one box is one undo step, as in one cell; a tick is one step each
        self._push_edit(edited, label, label if label in ("divisor", "offset") else None)

    def _on_kernel_tabs_changed(self, index: int) -> None:
        if self._updating or index < 0:
            return
        self._current = index
        self._load_into_widgets()
        self.kernels_changed.emit()

    def _on_load_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Load kernels", "", "Kernels (*.json)")
        if name:
            self.load_kernel_file(Path(name))

    def _on_save_clicked(self) -> None:
        if self.kernel_specs() is None:
            self.error_posted.emit("Fix the red kernel cell before saving.")
            return
        name, _ = QFileDialog.getSaveFileName(
            self, "Save kernels", "kernels.json", "Kernels (*.json)"
        )
        if name:
            self.save_kernel_file(Path(name))

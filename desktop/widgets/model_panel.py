"""The Classify tab's model chooser: shipped models, models trained in this session, files opened.

:class:`ModelChooser` is a combo box (objectName ``modelBox``) whose entries each hold a label
and either a model object (trained or already loaded) or the path of a file to load when the
entry is chosen (the shipped photo model is loaded only when first chosen).
:class:`ModelPanel` puts it in the "Model" box with Open model… and the description of the
model in use, and loads files off the GUI thread (a crafted file gives a message).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

import resources
from desktop.workers import OneAtATime
from engine.errors import EngineError
from engine.export_torch import pytorch_training_summary
from engine.inference import preparation_for
from engine.modelfile import load_model


@dataclass
class ModelEntry:
    label: str
    model: object | None = None  # None until loaded
    path: Path | None = None  # where to load it from


class ModelChooser(QComboBox):
    """Entries in the order added; ``entry(i)`` gives the :class:`ModelEntry` of row ``i``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelBox")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._entries: list[ModelEntry] = []

    def add_entry(
        self, label: str, *, model: object | None = None, path: Path | None = None
    ) -> int:
        """Add an entry (or find the one holding the same model object or file); its index."""
        for i, entry in enumerate(self._entries):
            same_model = model is not None and entry.model is model
            same_file = model is None and path is not None and entry.path == path
            if same_model or same_file:
                return i
        self._entries.append(ModelEntry(label, model, path))
        self.addItem(label)
        self.setItemData(
            self.count() - 1, str(path) if path else label, Qt.ItemDataRole.ToolTipRole
        )
        return self.count() - 1

    def entry(self, index: int) -> ModelEntry:
        return self._entries[index]

    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    def set_loaded(self, index: int, model: object) -> None:
        """The model of entry ``index`` has been loaded from its file."""
        self._entries[index].model = model

    def select(self, index: int) -> None:
        """Show entry ``index`` as the current one without emitting ``activated``."""
        self.blockSignals(True)
        self.setCurrentIndex(index)
        self.blockSignals(False)


def describe_model(model, label: str) -> str:
    """One rich-text paragraph: which model, its classes, accuracy and training date."""
    meta = getattr(model, "meta", {}) or {}
    arch = (getattr(model, "architecture", {}) or {}).get("name", "model")
    classes = [str(c) for c in model.classes]
    shown = ", ".join(classes) if len(classes) <= 10 else ", ".join(classes[:8]) + ", …"
    kind = "digits" if preparation_for(model) == "digit" else "photos"
    # names come from the file (and its file name): shown as written, never as markup
    parts = [f"<b>{escape(label)}</b> ({escape(str(arch))}, {kind})"]
    parts.append(f"{len(classes)} classes: {escape(shown)}")
    evaluation = meta.get("evaluation") if isinstance(meta.get("evaluation"), dict) else {}
    accuracy = evaluation.get("accuracy")
    if isinstance(accuracy, int | float) and np.isfinite(accuracy):
        parts.append(f"test accuracy {float(accuracy):.2%}")
    if isinstance(meta.get("trained_at"), str):
        parts.append(f"trained {escape(meta['trained_at'][:10])}")
    further = pytorch_training_summary(meta)  # an exported file's `train` wrote it back
    if further:
        parts.append(escape(further))
    return " · ".join(parts)


def load_model_file(path: Path) -> tuple[object | None, str]:
    """(model, "") or (None, why): a crafted file gives a message, never an exception."""
    try:
        return load_model(path), ""
    except EngineError as exc:
        return None, str(exc)
    except Exception as exc:  # hostile files: whatever the loader missed is still a message
        return None, f"{path.name}: not a usable ConvScope model ({type(exc).__name__})"


class ModelPanel(QGroupBox):
    """The "Model" box: the chooser, Open model… and a description of the model in use.

    Signals: ``model_chosen(model, label)`` when the user picks or opens a model (loaded off
    the GUI thread; the newest request wins), ``load_finished(ok)`` after each file,
    ``problem(message)`` when a file is refused (the model in use stays).
    """

    model_chosen = Signal(object, str)
    load_finished = Signal(bool)
    problem = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.model_box = ModelChooser()
        self.model_box.setToolTip("The model that classifies: shipped, trained or opened")
        self.model_box.activated.connect(self._on_model_box_activated)
        self.open_model_button = QPushButton("Open model…", objectName="openModelButton")
        self.open_model_button.clicked.connect(self._on_open_model_clicked)
        self.model_label = QLabel(objectName="modelLabel", wordWrap=True)
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        row = QHBoxLayout()
        row.addWidget(self.model_box, 1)
        row.addWidget(self.open_model_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.model_label)
        self._jobs = OneAtATime(self, self.problem.emit)
        self._request = 0
        self._in_use = -1  # the entry whose model classifies now
        self.digit_entry = self.model_box.add_entry(
            "Shipped LeNet-5 (digits)", path=resources.shipped_model_path()
        )
        self.photo_entry = -1  # the shipped photo model's entry, when it ships
        photo = resources.photo_model_path()
        if photo.is_file():  # ships once trained (resources/models)
            self.photo_entry = self.model_box.add_entry(
                "Shipped photo model (bird, cat, dog, ship)", path=photo
            )

    def load_shipped(self) -> tuple[object | None, str, str]:
        """The digit model, loaded at once (small and ours): (model, label, problem)."""
        entry = self.model_box.entry(self.digit_entry)
        if entry.path is None or not entry.path.exists():
            return None, "", ""
        model, error = load_model_file(entry.path)
        if model is None:
            return None, "", f"The shipped model could not be loaded: {error}"
        self.model_box.set_loaded(self.digit_entry, model)
        self._use(self.digit_entry)
        return model, entry.label, ""

    def choose_shipped(self, kind: str) -> bool:
        """Choose the shipped "digits" or "photos" model as the user would (a file not
        loaded yet loads off the GUI thread); False when it does not ship."""
        index = self.digit_entry if kind == "digits" else self.photo_entry
        if index < 0:
            return False
        self._on_model_box_activated(index)
        return True

    def add_model(self, model: object, label: str) -> None:
        """A model trained (or loaded) elsewhere becomes an entry, and the one in use."""
        self._request += 1  # a file still loading must not replace this choice
        self._use(self.model_box.add_entry(label, model=model))

    def offer_model(self, model: object, label: str) -> None:
        """A model trained (or loaded) in another tab becomes one more entry; the model in use
        stays (``AppState.model_offered``)."""
        self.model_box.add_entry(label, model=model)

    def other_photo_model(self) -> str:
        """The label of the newest photo model trained or opened here that is not in use
        ('' for none): what a photo read by a digit model was most likely meant for."""
        for i in range(self.model_box.count() - 1, -1, -1):
            entry = self.model_box.entry(i)
            mine = i not in (self.digit_entry, self.photo_entry, self._in_use)
            if mine and entry.model is not None and preparation_for(entry.model) == "photo":
                return entry.label
        return ""

    def show_model(self, model: object | None, label: str) -> None:
        if model is None:
            self.model_label.setText(
                "<b>No model loaded.</b> Train one in the Train tab or open a model file."
            )
        else:
            self.model_label.setText(describe_model(model, label))

    def open_file(self, path: Path) -> None:
        """Load ``path`` off the GUI thread; it becomes an entry and the model in use."""
        self._load(Path(path), None)

    def busy(self) -> bool:
        return self._jobs.busy()

    def _use(self, index: int) -> None:
        self._in_use = index
        self.model_box.select(index)

    def _on_model_box_activated(self, index: int) -> None:
        entry = self.model_box.entry(index)
        if entry.model is not None:
            self._request += 1  # a file still loading must not replace this choice
            self._use(index)
            self.model_chosen.emit(entry.model, entry.label)
        elif entry.path is not None:
            self._load(entry.path, index)

    def _on_open_model_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open model", "", "Models (*.npz)")
        if name:
            self.open_file(Path(name))

    def _load(self, path: Path, index: int | None) -> None:
        self._request += 1
        request = self._request
        self._jobs.submit(lambda: [(request, path, index, *load_model_file(path))], self._on_loaded)

    def _on_loaded(self, event) -> None:
        request, path, index, model, error = event
        if request != self._request:
            return  # a newer choice was made meanwhile
        if model is None:
            self.model_box.select(max(self._in_use, 0))  # the model in use stays
            self.problem.emit(f"Could not open the model: {error}")
            self.load_finished.emit(False)
            return
        if index is None:
            index = self.model_box.add_entry(f"{path.name} (opened)", path=path)
        self.model_box.set_loaded(index, model)
        self._use(index)
        self.model_chosen.emit(model, self.model_box.entry(index).label)
        self.load_finished.emit(True)

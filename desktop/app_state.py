"""The small hub through which tabs talk to each other without knowing each other.

``MainWindow`` makes one :class:`AppState` and hands it to every tab. A tab emits on it
(e.g. the Train tab when a model is trained) and other tabs listen (the Classify tab switches to
that model). Payloads are plain data: NumPy arrays, engine objects, dicts.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class AppState(QObject):
    # (model, label): the model in use changed (a tab chose it; everyone follows).
    model_changed = Signal(object, str)
    # (model, label): a model trained or loaded in the Train tab, offered as one more choice
    # (the Classify tab's model chooser lists it; nothing switches to it by itself).
    model_offered = Signal(object, str)
    # (kernel as float ndarray (k, k), description): open this kernel in the Filters tab's editor.
    kernel_requested = Signal(object, str)
    # (uint8 28x28 ndarray as the network sees it): the image the Classify tab now shows.
    classify_image_changed = Signal(object)
    # (text): a short message for the status bar.
    status_posted = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.current_model: object | None = None
        self.current_model_label = ""
        self.offered_models: list[tuple[str, object]] = []  # (label, model), oldest first

    def offer_model(self, model: object, label: str) -> None:
        """Add ``model`` to the models a tab may choose from, without switching to it."""
        self.offered_models.append((label, model))
        self.model_offered.emit(model, label)

    def publish_model(self, model: object, label: str) -> None:
        """Remember ``model`` as the one in use and tell every tab."""
        self.current_model = model
        self.current_model_label = label
        self.model_changed.emit(model, label)

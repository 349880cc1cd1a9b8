""" "What it learned" (the article's Figure 17): each convolution's top dataset patches or
synthesised images, layer by layer, computed off the GUI thread with progress and Cancel.

The engine does the work (:func:`engine.feature_layers.every_layer`); this view only shows the
grids.
Grids are kept per (weights, images, method) in memory, and on disk in the per-user cache
(:class:`engine.feature_cache.FeatureCache`): showing the same model again, in this session or
a later one, costs nothing. "Forget saved results" empties the disk cache.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop.qt_image import array_to_pixmap
from desktop.workers import OneAtATime
from engine import feature_layers, features
from engine.errors import EngineError
from engine.feature_cache import FeatureCache, images_key
from engine.progress import CancelFlag, Progress

METHODS = {"patches": "Top dataset patches", "synthesis": "Synthesised inputs"}
EXPLAIN = {
    "patches": "Each row is one filter: the {k} pieces of the dataset images (its receptive "
    "field) that excite it most, strongest first.",
    "synthesis": "Each picture is an input grown from noise to excite one filter (or, for the "
    "output, one class), by gradient ascent with jitter and blur.",
}


class FeatureView(QWidget):
    """``set_source(model, images, name)`` then Show; ``sections`` holds one QLabel per layer."""

    def __init__(self, parent: QWidget | None = None, cache: FeatureCache | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("featureView")
        self.disk_cache = cache if cache is not None else FeatureCache()
        self.method_box = QComboBox(objectName="featureMethodBox")
        for key, text in METHODS.items():
            self.method_box.addItem(text, key)
        self.show_button = QPushButton("Show what it learned", objectName="featureShowButton")
        self.cancel_button = QPushButton("Cancel", objectName="featureCancelButton")
        self.clear_button = QPushButton("Forget saved results", objectName="featureClearButton")
        self.clear_button.setToolTip(
            f"Empty the cache of computed grids ({self.disk_cache.folder})"
        )
        self.progress = QProgressBar(objectName="featureProgress", textVisible=True)
        self.progress.setFormat("%p%")
        self.status = QLabel(objectName="featureStatus", wordWrap=True)
        top = QHBoxLayout()
        for w in (self.method_box, self.show_button, self.cancel_button):
            top.addWidget(w)
        top.addWidget(self.progress, 1)
        top.addStretch(1)
        top.addWidget(self.clear_button)
        self._sections = QVBoxLayout()
        # the grids keep their size and the area scrolls (by default a long column was squeezed
        # to the viewport's height, each grid cut to its first row)
        self._sections.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        self._sections.addStretch(1)
        inner = QWidget()
        inner.setLayout(self._sections)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        self.sections: dict[str, QLabel] = {}  # node -> its grid
        self._headers: list[QLabel] = []
        self._jobs = OneAtATime(self, self._on_job_errored)
        self._cancel: CancelFlag | None = None
        self._model = None
        self._images: np.ndarray | None = None
        self._source = ""
        self._images_key = ""
        self._misfit = ""  # why the images do not fit the model ("" when they do)
        self._cache: dict[tuple[str, str, str], list[feature_layers.LayerGrid]] = {}
        self._grids: list[feature_layers.LayerGrid] = []
        self.show_button.clicked.connect(self._on_show_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.clear_button.clicked.connect(self._on_clear_clicked)
        self._from_disk = 0
        self._set_running(False)
        self.status.setText("Load or train a model, then press Show.")

    def set_source(self, model, images: np.ndarray, name: str) -> None:
        """The model (a copy is taken) and the uint8 images (named ``name``) patches come from."""
        self._jobs.cancel()  # a job on the previous model: its events are ignored from now on
        self._cancel = None
        self._model = model.clone()
        self._images = images
        self._source = name
        self._images_key = images_key(images)  # the memory's key: a name may hold other images
        self._clear()
        self._misfit = _misfit(model, images, name)
        self.status.setText(self._misfit or f"{len(images):,} images of {name}. Press Show.")
        self._set_running(False)

    def is_busy(self) -> bool:
        return self._jobs.busy()

    def start(self) -> None:
        """Compute the grids now, as Show does."""
        self._on_show_clicked()

    def _set_running(self, running: bool) -> None:
        self.show_button.setEnabled(not running and self._model is not None and not self._misfit)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)

    def _clear(self) -> None:
        for label in [*self.sections.values(), *self._headers]:
            label.deleteLater()
        self.sections.clear()
        self._headers.clear()
        self._grids = []

    def _on_show_clicked(self) -> None:
        if self._model is None or self._images is None or self._misfit:
            return
        method = self.method_box.currentData()
        self._clear()
        if method == "patches" and not features.conv_nodes(self._model):
            self.status.setText(
                "This network has no convolution: no filter has dataset patches to show. "
                f"{METHODS['synthesis']} shows what each of its classes looks like to it."
            )
            return
        key = (feature_layers.weights_key(self._model), self._images_key, method)
        if key in self._cache:
            for grid in self._cache[key]:
                self._add_grid(grid)
            self.status.setText(EXPLAIN[method].format(k=9))
            return
        cancel = CancelFlag()
        self._cancel = cancel
        model, images = self._model, self._images
        self.status.setText(f"Computing {METHODS[method].lower()}…")
        self._set_running(True)
        self._from_disk = 0
        self._jobs.submit(
            lambda: self._job(model, images, method, cancel, key),
            self._on_event,  # a slot of this widget: runs on the GUI thread
            essential=lambda e: not isinstance(e[1], Progress),
            cancel=cancel,
        )

    def _job(self, model, images, method, cancel, key):
        grids = []
        events = feature_layers.every_layer(
            model, images, method, control=cancel, cache=self.disk_cache
        )
        for item in events:
            if isinstance(item, feature_layers.LayerGrid):
                grids.append(item)
            yield cancel, item
        if cancel.cancelled:
            yield cancel, "cancelled"
        else:
            self._cache[key] = grids  # a dict assignment, read on the GUI thread after "done"
            yield cancel, "done"

    def _on_event(self, tagged: tuple) -> None:
        job, event = tagged
        if job is not self._cancel:  # a job on a previous source
            return
        if isinstance(event, Progress):  # the stage is a layer's name, or "a to b" for a group
            self.progress.setValue(int(100 * event.fraction))
            method = METHODS[self.method_box.currentData()].lower()
            self.status.setText(f"Computing {method} of {event.stage}…")
        elif isinstance(event, feature_layers.LayerGrid):
            self._from_disk += event.cached
            self._add_grid(event)
        elif event == "cancelled":
            self._set_running(False)
            self.status.setText("Cancelled. Press Show to start again.")
        elif event == "done":
            self._set_running(False)
            text = EXPLAIN[self.method_box.currentData()].format(k=9)
            if self._from_disk:
                text += f" ({self._from_disk} of {len(self._grids)} read from the saved results.)"
            self.status.setText(text)

    def _add_grid(self, grid: feature_layers.LayerGrid) -> None:
        title = "output (one per class)" if grid.node == self._model.output else grid.node
        label = QLabel(objectName=f"featureGrid_{grid.node}")
        label.setPixmap(array_to_pixmap(grid.image))
        label.setAlignment(Qt.AlignmentFlag.AlignLeft)
        label.setToolTip(title)
        header = QLabel(f"<b>{title}</b>")
        self._sections.insertWidget(self._sections.count() - 1, header)
        self._sections.insertWidget(self._sections.count() - 1, label)
        self.sections[grid.node] = label
        self._headers.append(header)
        self._grids.append(grid)

    def hideEvent(self, event) -> None:  # a closed window stops its work
        self._jobs.cancel()
        super().hideEvent(event)

    def _on_cancel_clicked(self) -> None:
        self._jobs.cancel()

    def _on_clear_clicked(self) -> None:
        removed = self.disk_cache.clear()
        self._cache.clear()
        self.status.setText(
            f"Forgot {removed} saved grid{'s' * (removed != 1)}: Show computes them again."
        )

    def _on_job_errored(self, message: str) -> None:
        self._set_running(False)
        self.status.setText(f"Could not compute: {message}")


def _misfit(model, images: np.ndarray, name: str) -> str:
    """Why ``images`` (named ``name``) cannot go through ``model`` ("" when they can): a colour
    model and grey digits, say; the engine's check (``InputSpec.to_tensor``) decides."""
    try:
        model.input_spec.to_tensor(np.asarray(images[:1]))
    except (EngineError, ValueError):
        shape = images.shape[1:] if images.ndim == 4 else (1, *images.shape[1:])
        return (
            f"The images of {name} ({'×'.join(map(str, shape))}) do not fit this model's input "
            f"({'×'.join(map(str, model.input_spec.shape))}): choose a dataset of its kind "
            "in the Train tab's setup to see what it learned."
        )
    return ""

""" "What the network sees": the original, the network's input (a digit, or a photo in colour)
and the occlusion map, computed off the GUI thread a moment after the input settles."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QSizePolicy, QWidget

from desktop.widgets.pixel_view import PixelView
from desktop.workers import OneAtATime
from engine.inference import ClassifiedImage
from engine.occlusion import OcclusionCancelled, occlusion_map, overlay
from engine.progress import CancelFlag

WORKING = "Occlusion: working out this image's map (the network runs once per patch position)…"


class SeenBox(QGroupBox):
    """Three pictures and the occlusion caption. Signals: ``occlusion_finished(OcclusionMap)``
    and ``problem(message)`` (an occlusion job failed)."""

    occlusion_finished = Signal(object)
    problem = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("What the network sees", parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.original_view = PixelView("original")
        self.preprocessed_view = PixelView("network input")
        self.preprocessed_view.setObjectName("preprocessedView")
        self.occlusion_view = PixelView("occlusion map")
        self.occlusion_view.setObjectName("occlusionView")
        self.occlusion_label = QLabel(objectName="occlusionLabel", wordWrap=True)
        self.occlusion_label.setTextFormat(Qt.TextFormat.PlainText)  # a class name, as written
        # room for three lines: the box keeps its height whatever the width (no clipped text)
        self.occlusion_label.setMinimumHeight(3 * self.fontMetrics().lineSpacing() + 4)
        grid = QGridLayout(self)
        for i, view in enumerate((self.original_view, self.preprocessed_view, self.occlusion_view)):
            grid.addWidget(view, 0, i)
        grid.addWidget(self.occlusion_label, 1, 0, 1, 3)
        self._jobs = OneAtATime(self, self._on_job_failed)
        self._timer = QTimer(self, singleShot=True, interval=120)
        self._timer.timeout.connect(self._start_occlusion)
        self._model = None
        self._result: ClassifiedImage | None = None

    def show_input(self, original: np.ndarray | None, display) -> None:
        """Show ``original`` beside the network input (a display picture)."""
        self.original_view.set_array(original)
        self.preprocessed_view.set_array(display)

    def schedule_occlusion(self, model, result: ClassifiedImage) -> None:
        """Compute the occlusion map of ``result`` shortly (a newer request replaces it); the
        caption says so meanwhile (a very deep or wide network takes seconds, and the map
        shown is the previous image's until then)."""
        self._model, self._result = model, result
        self.occlusion_label.setText(WORKING)
        self._timer.start()

    def await_result(self) -> None:
        """A newer input's forward pass is on its way (a heavy network): the previous input's
        map is taken away and one being made is stopped; the caption says one is coming."""
        self._result = None
        self._timer.stop()
        self._jobs.cancel()
        self.occlusion_view.set_array(None)
        self.occlusion_label.setText(WORKING)

    def clear(self, keep_input: bool = False) -> None:
        """No result; with ``keep_input`` the original and the network input stay (the input
        was read, the network gave nothing for it), only the occlusion map goes."""
        self._result = None
        self._timer.stop()
        self._jobs.cancel()
        views = [self.occlusion_view]
        if not keep_input:
            views += [self.original_view, self.preprocessed_view]
        for view in views:
            view.set_array(None)
        self.occlusion_label.clear()

    def busy(self) -> bool:
        return self._timer.isActive() or self._jobs.busy()

    def _start_occlusion(self) -> None:
        if self._result is None or self._model is None:
            return
        # the worker's own copy, made there (a 2,000-node network takes a moment): layers keep
        # buffers between calls, and the GUI thread uses the model meanwhile
        model, image = self._model, self._result.prepared.network.copy()
        target, cancel = self._result.index, CancelFlag()

        def job():
            try:
                yield image, occlusion_map(model.clone(), image, target=target, cancel=cancel)
            except OcclusionCancelled:
                return  # a newer input's map (or none) is wanted

        self._jobs.submit(job, self._on_job_yielded, cancel=cancel)

    def _on_job_failed(self, message: str) -> None:
        self.occlusion_label.clear()  # no map is on its way
        self.problem.emit(message)

    def _on_job_yielded(self, event) -> None:
        image, occlusion = event
        result = self._result
        if result is None or not np.array_equal(result.prepared.network, image):
            return  # stale: the image changed meanwhile (a newer map is on its way)
        self.occlusion_view.set_array(overlay(result.prepared.gray(), occlusion.heat))
        covering = "a black" if image.ndim == 2 else "a mean-colour"
        self.occlusion_label.setText(
            "Occlusion: covering the orange parts lowers the probability of "
            f"“{result.classes[occlusion.target]}” the most ({covering} "
            f"{occlusion.patch}×{occlusion.patch} patch slid over the input); blue parts speak "
            "against it."
        )
        self.occlusion_finished.emit(occlusion)

"""The Train tab: set up a run, watch LeNet learn live, then inspect what it got wrong.

Composition only: the run setup panel (left), the controls and progress bar, live charts, the
activation and filter views and the results page. Training runs in a :class:`TrainingSession`
(one worker thread over the engine's run, :func:`engine.run.training_run`, the same as
``convscope train``); every number shown comes from an engine function (training events, the
evaluation, :mod:`engine.visualize`). A trained or loaded model is offered to the other tabs as
one more choice (``AppState.offer_model``); nothing switches to it by itself. Model files are
opened off the GUI thread.

Tab protocol (see ``main_window``): ``is_busy()``, ``stop_work()`` and ``work_stopped``.
Own signal: ``training_finished(status)`` once a run and its evaluation are over ("finished",
"cancelled", "diverged" or "error").

Size: the composition plus the run's life cycle (start, pause, cancel, divergence,
evaluation, publishing) in one place; the panels it composes live in ``desktop/widgets/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLayout,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.app_state import AppState
from desktop.training_session import (
    Cancelled,
    Diverged,
    EpochEnd,
    Finished,
    Paused,
    ProbeLoss,
    Progress,
    Resumed,
    RunEnded,
    StepExplanation,
    StepNotExplained,
    TrainingSession,
    WeightsSnapshot,
)
from desktop.widgets import compact, replace_allowed, scrolled
from desktop.widgets.confusion_view import ResultsPanel
from desktop.widgets.feature_view import FeatureView
from desktop.widgets.live_panel import LivePanel
from desktop.widgets.run_setup import RunSetup
from desktop.widgets.step_explainer import StepWindow
from desktop.widgets.tone import set_tone
from desktop.widgets.training_charts import TrainingCharts
from desktop.workers import GeneratorWorker, hold_collection_while, start_worker
from engine.errors import EngineError
from engine.layers import INIT_NOTE
from engine.losses import uniform_guess_loss
from engine.run import family_name
from engine.training import BatchEnd
from engine.visualize import format_duration

UI_INTERVAL_MS = 200  # charts+progress and views refresh, alternating (each ~2.5/s)
# The live views take at most about this share of the GUI thread (a heavy network's: of a core,
# off the GUI thread) while training: a network whose views cost more to refresh (hundreds of
# wide layers) refreshes them less often.
VIEWS_SHARE = 0.25
_clock = time.monotonic
START_TIP = "Build the network and train it with these settings"


@dataclass(frozen=True, eq=False)
class TrainSnapshot:
    """What :meth:`TrainTab.snapshot` keeps."""

    architecture: str
    arch_page: int
    scroll: int
    learned: tuple | None  # the "What it learned" window's source, when it was shown


class TrainTab(QWidget):
    title = "Train"
    work_stopped = Signal()
    training_finished = Signal(str)
    model_load_finished = Signal(bool)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        hold_collection_while(self)  # garbage collected on the GUI thread (desktop.workers)
        self._state = state
        self.model = None  # the model trained or loaded last (trained in the worker thread)
        self._unsaved = False  # the model was trained since it was last saved or loaded
        self._view_model = None  # a GUI-thread clone fed with weight snapshots
        self._probe: tuple[float, int] | None = None
        self._run_status = "error"
        self.result = None
        self.test_limit: int | None = None  # tests evaluate on a slice
        self._run_label = ""
        self._loading_model: Path | None = None  # a model file being opened
        self._model_loaded_ok = False
        self._pinned_from: str | None = None  # the dataset whose image is pinned
        self.session = TrainingSession(self)
        self.session.event_received.connect(self._on_session_event_received)
        self.session.errored.connect(self._on_session_errored)
        self.session.stopped.connect(self._on_session_stopped)
        self._pending_batch: BatchEnd | None = None
        self._pending_weights: dict | None = None
        self._charts_last = False
        self._views_next = 0.0  # _clock() time before which the views wait
        self._ui_timer = QTimer(self)
        self._ui_timer.setInterval(UI_INTERVAL_MS)
        self._ui_timer.timeout.connect(self._on_ui_timer_timeout)

        self.setup = RunSetup()
        self.setup.dataset_loaded.connect(self._on_setup_dataset_loaded)
        self.setup.sample_clicked.connect(self._on_setup_sample_clicked)
        self.setup.loading_started.connect(self._update_buttons)
        self.setup.loading_finished.connect(self._update_buttons)
        self.setup.architecture_changed.connect(self._update_buttons)
        self.setup.architecture_changed.connect(self._on_architecture_checked)
        self.setup_area = setup_area = scrolled(self.setup)
        setup_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        setup_area.setMinimumWidth(340)
        setup_area.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Tab: to its fields, in sight

        self.charts = TrainingCharts()
        self.live = LivePanel()
        self.live.kernel_clicked.connect(self._on_live_kernel_clicked)
        self.live.sample_pinned.connect(self.session.pin)
        self.live.weight_picked.connect(self._on_live_weight_picked)
        self.live.refreshed.connect(self._on_live_refreshed)
        self.step_window: StepWindow | None = None  # Figure 15 in numbers, made at the first step

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.charts)
        self.pages = QTabWidget(objectName="trainPages")
        self.pages.addTab(self.live, "Inside the network (live)")
        self.results = ResultsPanel()
        self.pages.addTab(self.results, "Results on the test set")
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(4, 4, 4, 4)
        right_layout.addLayout(self._build_controls())
        self.message = QLabel(objectName="trainMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # file and class names, no markup
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        right_layout.addWidget(self.message)
        right_layout.addWidget(splitter, 1)
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(setup_area)
        outer.addWidget(right)
        outer.setStretchFactor(1, 1)
        outer.setSizes([370, 910])
        layout = QHBoxLayout(self)
        layout.addWidget(outer)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        state.classify_image_changed.connect(self.live.offer_classify_image)
        self._update_buttons()

    def minimumSizeHint(self) -> QSize:
        # Never force the window to the full layout's minimum (about 1160x670): in a small
        # window the panels are squeezed instead (the splitters and scroll areas adapt).
        return QSize(480, 360)

    def showEvent(self, event) -> None:
        # The dataset loads when the tab is first shown, not at every start of the app.
        if self.setup.dataset is None and not self.setup.is_loading():
            self.setup.load()
        super().showEvent(event)

    # ----- building ---------------------------------------------------------------------
    def _build_controls(self) -> QVBoxLayout:
        row = QHBoxLayout()
        self.start_button = QPushButton("▶ Start", objectName="startButton")
        self.start_button.setToolTip(START_TIP)
        self.pause_button = QPushButton("Pause", objectName="pauseButton")
        self.step_button = QPushButton("Step", objectName="stepButton")
        self.step_button.setToolTip("Train on one batch, then pause (the loss before and after)")
        self.stop_button = QPushButton("■ Stop", objectName="stopButton")
        self.stop_button.setToolTip("Stop after the current batch; the model trained so far stays")
        self.start_button.clicked.connect(self._on_start_clicked)
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.step_button.clicked.connect(self._on_step_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.progress = QProgressBar(objectName="epochProgress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not started")
        self.progress.setValue(0)
        self.continue_check = QCheckBox("Continue model", objectName="continueCheck")
        self.continue_check.setToolTip(
            "Continue the current model: Start trains the loaded or last trained model further"
        )
        self.continue_check.toggled.connect(self._on_continue_check_toggled)
        self.save_button = QPushButton("Save…", objectName="saveModelButton")
        self.save_button.setToolTip("Save the model to a file")
        self.load_button = QPushButton("Load…", objectName="loadModelButton")
        self.load_button.setToolTip("Load a model file (to look inside it or train it further)")
        self.save_button.clicked.connect(self._on_save_clicked)
        self.load_button.clicked.connect(self._on_load_clicked)
        self.learned_button = QPushButton("What it learned…", objectName="learnedButton")
        self.learned_button.setToolTip("Each layer's top dataset patches and synthesised inputs")
        self.learned_button.clicked.connect(self._on_learned_clicked)
        self._learned_dialog: QDialog | None = None
        self._learned_source: tuple | None = None  # (model, images, name) it shows
        for w in (self.start_button, self.pause_button, self.step_button, self.stop_button):
            row.addWidget(compact(w))
        row.addStretch(1)
        for w in (self.continue_check, self.learned_button, self.save_button, self.load_button):
            row.addWidget(compact(w) if isinstance(w, QPushButton) else w)
        column = QVBoxLayout()
        column.addLayout(row)
        column.addWidget(self.progress)
        return column

    # ----- tab protocol -----------------------------------------------------------------
    def is_busy(self) -> bool:
        """Training (or its evaluation) runs. A dataset load is not work to stop: it ends by
        itself within a second and survives the window (see RunSetup.load)."""
        return self.session.is_running()

    def stop_work(self) -> None:
        self.session.stop()

    def _on_work_maybe_stopped(self) -> None:
        if not self.is_busy():
            self.work_stopped.emit()
        self._update_buttons()

    # ----- buttons ----------------------------------------------------------------------
    def _on_continue_check_toggled(self, checked: bool) -> None:
        self.setup.show_kept_model(self.model if checked else None)  # what Start will train
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.session.is_running()
        paused = running and self.session.control.paused
        # Start waits for a dataset load: it would train the previous dataset otherwise
        ready = self.setup.dataset is not None and not self.setup.is_loading()
        ready = ready and self._loading_model is None
        ready = ready and (
            running or self.continue_check.isChecked() or self.setup.architecture_ok()
        )
        self.start_button.setEnabled(not running and ready)
        problem = self.setup.architecture_problem()
        self.start_button.setToolTip(
            f"Cannot start: {problem}"
            if problem and not running and not self.continue_check.isChecked()
            else START_TIP
        )
        self.pause_button.setEnabled(running)
        self.pause_button.setText("▶ Resume" if paused else "Pause")
        self.step_button.setEnabled(ready and (paused or not running))
        if self.step_window is not None:
            self.step_window.step_button.setEnabled(self.step_button.isEnabled())
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(self.model is not None and not running)
        self.learned_button.setEnabled(
            self.model is not None and not running and self.setup.dataset is not None
        )
        self.load_button.setEnabled(not running and self._loading_model is None)
        self.continue_check.setEnabled(self.model is not None and not running)
        self.setup.set_enabled_for_run(running)

    def _on_start_clicked(self) -> None:
        self._start(paused=False)

    def _on_pause_clicked(self) -> None:
        if self.session.control.paused:
            self.session.resume()
        else:
            self.session.pause()
        self._update_buttons()

    def _on_step_clicked(self) -> None:
        if self.session.is_running():
            self.session.step()
        else:
            self._start(paused=True)

    def _on_stop_clicked(self) -> None:
        self.session.stop()
        self._set_progress_text("Stopping after this batch…")

    def _start(self, *, paused: bool) -> None:
        if self.setup.is_loading() or self._loading_model is not None:
            return  # the buttons are disabled meanwhile; a queued click must not start
        keep = self.continue_check.isChecked() and self.model is not None
        try:
            settings = replace(self.setup.settings(), test_limit=self.test_limit)
            run = self.session.start(
                self.setup.dataset, settings, model=self.model if keep else None, step=paused
            )
        except (EngineError, ValueError) as exc:
            self._show_message(f"Cannot start: {exc}", error=True)
            return
        self.model = run.model
        self._unsaved = self._unsaved and keep  # a new network has learned nothing yet
        self._view_model = run.model.clone()  # the worker may have begun: snapshots follow
        self.live.set_model(self._view_model)
        self._probe = None
        self._run_status = "error"
        # a continued model is trained whatever the Network box shows: the label names it
        self._run_label = self.setup.describe(f"{family_name(run.model)} continued" if keep else "")
        config = settings.config
        self.charts.begin_run(self._run_label, config.epochs)
        k = len(run.model.classes)
        uniform = uniform_guess_loss(k, config.loss)
        name = f"ln {k} = {uniform:.2f}" if config.loss == "cross_entropy" else f"{uniform:.3f}"
        self.charts.set_uniform_loss(uniform, f"{name}: a uniform guess", INIT_NOTE)
        self._pending_batch = self._pending_weights = None
        self._ui_timer.start()
        self.result = None  # the results page showed the previous model's test
        self.pages.setCurrentIndex(0)  # the run is watched live; its test follows when it ends
        self.results.clear(
            "Training: the test accuracy, confusion matrix and mistakes of this model appear "
            "here when the run ends."
        )
        note = run.split_note()  # a class too small to hold an image out for testing
        self._show_message(f"{note[:1].upper()}{note[1:]}." if note else "")
        self.progress.setMaximum(max(1, config.epochs * len(run.train_labels)))
        self.progress.setValue(0)
        self._set_progress_text("Starting…")
        self._update_buttons()

    # ----- session events ---------------------------------------------------------------
    def _on_session_event_received(self, event: object) -> None:
        if isinstance(event, BatchEnd):
            self._on_batch_end(event)
        elif isinstance(event, WeightsSnapshot):
            self._pending_weights = event.weights
            if self.session.control.paused:
                self._flush_weights()
        elif isinstance(event, EpochEnd):
            self._flush_batch()
            self._refresh_charts()
            val = None if event.val_accuracy is None else 100 * event.val_accuracy
            self.charts.add_epoch(float(event.epoch), 100 * event.train_accuracy, val)
        elif isinstance(event, Paused):
            self._flush_batch()
            self._refresh_charts()
            self._set_progress_text(f"Paused at epoch {event.epoch}, batch {event.batch}")
            self._update_buttons()
        elif isinstance(event, Resumed):
            self._update_buttons()
        elif isinstance(event, ProbeLoss):
            self._on_probe_loss(event)
        elif isinstance(event, (Finished, Cancelled, Diverged)):
            self._on_training_ended(event)
        elif isinstance(event, Progress):
            self._set_progress_text(f"Evaluating on the test set… {event.fraction:.0%}")
        elif isinstance(event, RunEnded):
            self._on_run_ended(event)
        elif isinstance(event, (StepExplanation, StepNotExplained)):
            self._on_step_explained(event)

    def _on_batch_end(self, event: BatchEnd) -> None:
        # Shown by the UI timer (a few times a second: repainting plots and the progress bar
        # is the GUI's main cost), at once while stepping.
        self._pending_batch = event
        if self.session.control.paused:
            self._flush_batch()

    def _on_ui_timer_timeout(self) -> None:
        """One job per tick, alternating, so no tick stacks chart and view repaints."""
        views_due = (
            self._pending_weights is not None
            and _clock() >= self._views_next
            and not self.live.busy()  # a heavy network's last refresh is still on its way
            and (self._charts_last or self._pending_batch is None)
        )
        if views_due:
            start = _clock()
            self._flush_weights()
            spent = _clock() - start
            self._views_next = start + spent / VIEWS_SHARE
        else:
            self._flush_batch()
        self._charts_last = not views_due

    def _on_live_refreshed(self, seconds: float) -> None:
        """A refresh shown (a heavy network's worked out off the GUI thread): the next one waits
        in proportion to all it cost."""
        self._views_next = max(self._views_next, _clock() + seconds / VIEWS_SHARE)

    def _flush_weights(self) -> None:
        weights, self._pending_weights = self._pending_weights, None
        if weights is not None and self._view_model is not None:
            self._view_model.set_weights(weights)
            self.live.refresh()

    def _flush_batch(self) -> None:
        event, self._pending_batch = self._pending_batch, None
        if event is None:
            return
        self._refresh_charts()
        self.progress.setValue(event.samples_seen)
        epochs = self.session.run.settings.config.epochs
        self._set_progress_text(
            f"Epoch {event.epoch}/{epochs} · batch {event.batch}/{event.batches_per_epoch} · "
            f"{event.samples_per_second:,.0f} samples/s · ETA {format_duration(event.eta_seconds)}"
        )

    def _refresh_charts(self) -> None:
        x, loss, smooth, acc = self.session.log.arrays()
        self.charts.set_batch_curves(x, loss, smooth, acc)

    def _on_probe_loss(self, event: ProbeLoss) -> None:
        """Compare with the previous pause: the effect of one step (or of the batches since)."""
        n = event.batches
        if self._probe is not None and n > self._probe[1]:
            before, count = self._probe[0], n - self._probe[1]
            kind = "held-out" if event.held_out else "training"
            probe = f"On {event.images} fixed {kind} images the loss went from {before:.4f}"
            if count == 1:
                text = (
                    f"Step: the batch's own loss was {self.session.log.last_loss():.4f}. "
                    f"{probe} before this batch to {event.loss:.4f} after."
                )
            else:
                text = f"{probe} at the last pause to {event.loss:.4f} now, {count} batches later."
            self._show_message(text, error=False)
        self._probe = (event.loss, n)

    def _on_training_ended(self, event: object) -> None:
        """The training part is over (the evaluation may follow)."""
        self._pending_batch = None
        if len(self.session.log) and not (isinstance(event, Diverged) and event.at_start):
            self._unsaved = True  # new weights, in no file yet (none before a first batch)
        self._refresh_charts()
        if isinstance(event, Diverged):
            self._show_message(f"Training diverged and was stopped: {event.message}.", error=True)
            self._set_progress_text("Diverged: weights restored")
        elif isinstance(event, Cancelled):
            self._set_progress_text(f"Stopped at epoch {event.epoch}, batch {event.batch}")
        else:
            self.progress.setValue(self.progress.maximum())

    def _on_run_ended(self, event: RunEnded) -> None:
        """The run is over, its metadata recorded: offer the model, show the results."""
        self._run_status = event.status
        if event.status == "cancelled" and event.evaluation is None:
            self._set_progress_text(f"Stopped at {event.where}")
        if event.status != "diverged":
            label = f"Trained here: {self._run_label}"
            if event.status == "cancelled":
                label += f" (stopped at {event.where})"
            self._state.offer_model(self.model.clone(), label)
            self._state.status_posted.emit(
                f"Model {event.status}; the Classify tab can choose it now"
            )
        if event.evaluation is None:
            why = "diverged" if event.status == "diverged" else f"was stopped at {event.where}"
            self.results.clear(
                f"The run {why}: this model was not tested. A run that ends shows its test "
                "accuracy, confusion matrix and mistakes here."
            )
        else:
            self.result = event.evaluation
            run = self.session.run
            files = run.dataset.test_files  # image folders: shown with the mistakes
            files = None if files is None else list(files[: len(run.test_labels)])
            split = run.dataset.test_split
            self.results.show_result(event.evaluation, run.test_images, files, split)
            self._set_progress_text(f"Done: test accuracy {event.evaluation.accuracy:.2%}")
            self.pages.setCurrentIndex(1)

    def _on_session_errored(self, message: str) -> None:
        self._run_status = "error"
        self._show_message(f"Training failed: {message}", error=True)
        self.results.clear("Training failed: this model was not tested.")

    def _on_session_stopped(self) -> None:
        self._ui_timer.stop()
        self._pending_batch = None
        self._flush_weights()  # the final weights
        self._update_buttons()
        self.training_finished.emit(self._run_status)
        self._on_work_maybe_stopped()

    # ----- views ------------------------------------------------------------------------
    def _on_setup_dataset_loaded(self, dataset) -> None:
        source = f"{dataset.source}|{dataset.name}|{dataset.train_images.shape[1:]}"
        if self._pinned_from != source:  # a new dataset (or size): pin one of its images
            self._pinned_from = source
            label = int(dataset.train_labels[0])
            self.live.pin(
                np.asarray(dataset.train_images[0]),
                f"the first training image, of class {dataset.classes[label]}",
                label,
            )
        self._update_buttons()

    def _on_learned_clicked(self) -> None:
        """Open (or raise) the "What it learned" window on the current model and test images."""
        ds = self.setup.dataset
        self.show_learned(self.model, ds.test_images[:2000], ds.name)

    def show_learned(
        self, model, images: np.ndarray, name: str, *, start: bool = False, within=None
    ) -> FeatureView:
        """The "What it learned" window on ``model`` and ``images`` (named ``name``); ``start``
        computes the grids at once; ``within`` (a QRect on the screen) places the window.
        Returns its :class:`FeatureView`."""
        if self._learned_dialog is None:
            self._learned_dialog = QDialog(self, objectName="learnedDialog")
            self._learned_dialog.setWindowTitle("What it learned")
            self._learned_dialog.resize(1000, 700)
            QVBoxLayout(self._learned_dialog).addWidget(FeatureView())
        view = self._learned_dialog.findChild(FeatureView)
        view.set_source(model, images, name)
        self._learned_source = (model, images, name)
        if within is not None:
            self._learned_dialog.setGeometry(within)
        self._learned_dialog.show()
        self._learned_dialog.raise_()
        if start:
            view.start()
        return view

    def close_learned(self) -> None:
        if self._learned_dialog is not None:
            self._learned_dialog.hide()

    def show_step(self) -> None:
        """Show the live view beside the Step button, which gets the focus."""
        self.pages.setCurrentIndex(0)
        self.step_button.setFocus()

    def _on_architecture_checked(self) -> None:
        """A network that does not fit: its message scrolled into sight (below the fields in
        a small window), since Start stays disabled until it is fixed."""
        if self.setup.architecture_problem():  # once the label has its new height
            QTimer.singleShot(0, self, self._scroll_to_problem)

    def _scroll_to_problem(self) -> None:
        self.setup_area.ensureWidgetVisible(self.setup.arch_error, 0, 24)

    def show_architecture(self, name: str) -> bool:
        """Choose ``name`` in the setup panel and scroll its diagram into view. False when the
        Network box is frozen (a run goes, or Continue model is ticked): it keeps its network."""
        chosen = self.setup.choose_architecture(name)
        self.setup.arch_tabs.setCurrentIndex(0)
        self.setup_area.ensureWidgetVisible(self.setup.arch_tabs)
        self.setup_area.ensureWidgetVisible(self.setup.arch_combo)  # and the box, above it
        return chosen

    def snapshot(self) -> TrainSnapshot:
        """What the user set up that others may change: the architecture choice, the setup
        panel's scroll position and the "What it learned" window."""
        dialog = self._learned_dialog
        shown = dialog is not None and dialog.isVisible()
        return TrainSnapshot(
            self.setup.architecture_name(),
            self.setup.arch_tabs.currentIndex(),
            self.setup_area.verticalScrollBar().value(),
            self._learned_source if shown else None,
        )

    def restore(self, snap: TrainSnapshot) -> None:
        self.setup.choose_architecture(snap.architecture)
        self.setup.arch_tabs.setCurrentIndex(snap.arch_page)
        self.setup_area.verticalScrollBar().setValue(snap.scroll)
        if snap.learned is not None:
            self.show_learned(*snap.learned)
        else:
            self.close_learned()

    def _on_setup_sample_clicked(self, image: np.ndarray, label: int) -> None:
        classes = self.setup.dataset.classes if self.setup.dataset is not None else []
        # a user's folder names read 'an image of class Cats', never 'a Cats'
        name = f"of class {classes[label]} " if 0 <= label < len(classes) else ""
        self.live.pin(image, f"an image {name}from the dataset preview", label)

    def _on_step_explained(self, event: StepExplanation | StepNotExplained) -> None:
        """One step in numbers (Figure 15), in its own window beside the filters view."""
        if self.step_window is None:
            self.step_window = StepWindow(self)
            self.step_window.step_requested.connect(self._on_step_clicked)
            self.step_window.explainer.weight_picked.connect(self.live.show_picked_weight)
            self.step_window.finished.connect(self._on_step_window_finished)
        explainer = self.step_window.explainer
        if isinstance(event, StepNotExplained):
            explainer.show_reason(event.reason)
        else:
            explainer.show_step(event)
            if explainer.weight is not None:
                self.live.show_picked_weight(explainer.weight.key, explainer.weight.index)
        self.live.set_weight_picking(True)
        self.step_window.step_button.setEnabled(self.step_button.isEnabled())
        self.step_window.show()

    def _on_step_window_finished(self) -> None:
        self.live.set_weight_picking(False)  # clicks send filters to the Filters tab again

    def _on_live_weight_picked(self, key: str, index: tuple) -> None:
        if self.step_window is not None:
            self.step_window.explainer.pick(key, index)

    def _on_live_kernel_clicked(self, kernel: np.ndarray, layer: str, index: int) -> None:
        learned = f" learned by {self._run_label}" if self._run_label else ""
        self._state.kernel_requested.emit(kernel, f"{layer} filter {index + 1}{learned}")

    # ----- messages, saving, loading ----------------------------------------------------
    def _set_progress_text(self, text: str) -> None:
        self.progress.setFormat(text)
        self._state.status_posted.emit(text)

    def _show_message(self, text: str, *, error: bool = False) -> None:
        color = "#b00020" if error else "#0b5394"
        background = "#fdecea" if error else "#e8f0fe"
        set_tone(
            self.message,
            f"color: {color}; background: {background}; padding: 6px;border-radius: 4px;",
        )
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _on_save_clicked(self) -> None:
        self.save_model_as()

    def save_result(self) -> None:
        """File > Save result…: the model, as Save… saves it (when Save… is on)."""
        if self.model is None:
            self._state.status_posted.emit("Nothing to save yet: train or load a model first")
        elif self.session.is_running():
            self._state.status_posted.emit("Stop the run to save its model")
        else:
            self.save_model_as()

    def save_model_as(self) -> bool:
        """Ask where to keep the model and save it there: True once it is saved (or when
        there is no model), False when the user cancelled or the file could not be written
        (a message says why)."""
        from engine.modelfile import save_model
        from engine.run import model_file_path, trained_model_file_name

        if self.model is None:
            return True
        name, _ = QFileDialog.getSaveFileName(
            self, "Save model", trained_model_file_name(self.model), "ConvScope model (*.npz)"
        )
        if not name:
            return False
        path = model_file_path(name)
        if not replace_allowed(self, name, path, "model"):
            self._state.status_posted.emit(f"Not saved: {path.name} kept as it was")
            return False
        try:
            save_model(self.model, path)
        except (EngineError, OSError) as exc:
            self._show_message(f"Could not save {path.name}: {exc}", error=True)
            return False
        self._state.status_posted.emit(f"Saved the model to {path}")
        self._unsaved = False
        return True

    def has_unsaved_model(self) -> bool:
        """A model was trained here, one batch at least (by a run over or still going), and
        not saved since: quitting would lose it. A run stopped before its first batch ended
        trained nothing."""
        training = self.session.is_running() and len(self.session.log) > 0
        return self.model is not None and (self._unsaved or training)

    def open_dropped(self, paths: list[Path]) -> bool:
        """A folder dropped on the tab becomes the dataset (as Source > Folder… makes it), a
        model file loads (as Load…); False for anything else (a photo opens in Filters)."""
        if len(paths) != 1 or not (paths[0].is_dir() or paths[0].suffix.lower() == ".npz"):
            return False
        if self.session.is_running():
            self._state.status_posted.emit(f"Training runs: stop it to use {paths[0].name}")
        elif self._loading_model is not None:
            self._state.status_posted.emit(f"A model is opening: drop {paths[0].name} again soon")
        elif paths[0].is_dir():
            self.setup.set_source(paths[0], self.setup.limit())
        else:
            self.load_model_file(paths[0])
        return True

    def _on_load_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Load model", "", "ConvScope model (*.npz)")
        if name:
            self.load_model_file(Path(name))

    def load_model_file(self, path: Path) -> None:
        """Open ``path`` off the GUI thread; ``model_load_finished(ok)`` when done (a message
        says what went wrong: a crafted or foreign file never raises here)."""
        from engine.modelfile import load_model

        def job():
            try:
                model = load_model(path)  # and the view's and the Classify tab's copies: a
                yield path, (model, model.clone(), model.clone())  # big one takes a moment
            except (EngineError, OSError, ValueError, MemoryError, RecursionError) as exc:
                yield path, f"{exc}" or type(exc).__name__

        self._loading_model = path
        self._state.status_posted.emit(f"Opening {path.name}…")
        worker = GeneratorWorker(job)
        worker.yielded.connect(self._on_model_loader_yielded)
        worker.errored.connect(self._on_model_loader_errored)
        start_worker(worker, on_finished=self._on_model_loader_finished)
        self._update_buttons()

    def _on_model_loader_yielded(self, loaded: tuple) -> None:
        path, models = loaded
        if isinstance(models, str):
            self._show_message(f"Could not load {path.name}: {models}", error=True)
            self._state.status_posted.emit(f"Could not load {path.name}")  # was "Opening …"
            return
        self._state.status_posted.emit(f"Loaded {path.name}")
        self.model, self._view_model, offered = models
        self._unsaved = False  # the file has it
        self.result = None  # the results page showed another model's test
        self.results.clear(f"Loaded {path.name}: train it further to test it here.")
        self.continue_check.setChecked(True)
        self.setup.show_kept_model(self.model)  # ticked before: the new model all the same
        self._show_message(
            f"Loaded {path.name}. Start trains it further ('Continue model' is ticked); "
            "the Classify tab can choose it."
        )
        self._state.offer_model(offered, f"Loaded {path.name}")
        self.live.set_model(self._view_model)
        self._model_loaded_ok = True

    def _on_model_loader_errored(self, message: str) -> None:
        name = self._loading_model.name if self._loading_model else "the file"
        self._show_message(f"Could not load {name}: {message}", error=True)
        self._state.status_posted.emit(f"Could not load {name}")

    def _on_model_loader_finished(self) -> None:
        ok, self._model_loaded_ok = self._model_loaded_ok, False
        self._loading_model = None
        self._update_buttons()
        self.model_load_finished.emit(ok)

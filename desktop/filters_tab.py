"""The Filters tab: open an image, edit kernels, watch convolution, ReLU and pooling.

A composition: on the left the :class:`~desktop.widgets.kernel_editor.KernelEditor` and the
:class:`~desktop.widgets.filter_settings_panel.FilterSettingsPanel`; on the right the
:class:`~desktop.widgets.filter_pages.FilterPages` (*Image*, *Feature maps*, *Step through*).
Every change schedules one computation (a zero-delay timer coalesces bursts of signals): the
job :func:`desktop.filter_render.render` on a :class:`desktop.workers.OneAtATime`, so one job
runs at a time and the newest request wins (a running job is cancelled between bands). A result
that would not fit in memory is not computed: a screen-size preview is shown with a message.
Opening images follows the same rule: the newest open wins, even over a slower earlier one.

Signals: ``result_shown()`` after the views show a new result, ``preview_shown()`` after a
quick preview, ``activation_requested()`` when another tab sent a kernel here,
``result_saved(path)`` / ``save_failed(message)`` when a save (written off the GUI thread) ends.

Set-ups a guided tour (or a test) calls: :meth:`FiltersTab.open_figure` (the article's
Figures 5-6 and 10 as images), :meth:`FiltersTab.show_step_through`,
:meth:`FiltersTab.show_relu_figure`, :meth:`FiltersTab.inspect_result_pixel`, ... and
:meth:`FiltersTab.snapshot` / :meth:`FiltersTab.restore` to put the user's own back.

Size: over the limit: the composition with its render scheduling, image opening and those
set-ups; the kernel editor, settings panel, pages and render job live in their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

import resources
from desktop import filter_render
from desktop.app_state import AppState
from desktop.filter_render import Preview, Rendered, RenderRequest, render
from desktop.widgets import replace_allowed
from desktop.widgets.filter_pages import FilterPages
from desktop.widgets.filter_settings_panel import FilterSettingsPanel
from desktop.widgets.kernel_editor import KernelEditor
from desktop.widgets.pixel_inspector import short
from desktop.widgets.tone import set_tone
from desktop.workers import OneAtATime, hold_collection_while
from engine import filters as F
from engine.errors import EngineError
from engine.filters import memory
from engine.imageio import load_image
from engine.progress import CancelFlag, Progress

CROP = 8  # side of the image crop in the step-through
PAGES = ("image", "maps", "step", "relu")  # the result pages, in order


@dataclass(frozen=True, eq=False)  # holds an array
class FiltersSnapshot:
    """What :meth:`FiltersTab.snapshot` keeps: the image, the kernel stack as typed, the
    settings, the display mode and the page."""

    image: np.ndarray | None
    name: str
    kernels: tuple
    settings: dict
    display: str
    page: int
    figure: F.FigureSample | None = None  # the article's example, when one was open


def _load(path: Path) -> tuple[np.ndarray | None, str]:
    """``(RGB image, file name)``, or ``(None, the reason)`` for a file that cannot be used."""
    try:
        return load_image(path, mode="RGB"), path.name
    except EngineError as exc:
        return None, str(exc)


def _result_line(result: F.FilterResult, index: int, row: int, col: int) -> str:
    """``Result x 7, y 5: -58`` (each channel's value) for kernel ``index``'s map; "" when
    the pixel is outside it (a pooled map is smaller)."""
    maps = result.maps[min(index, result.maps.shape[0] - 1)]
    if not (0 <= row < maps.shape[0] and 0 <= col < maps.shape[1]):
        return ""
    values = " ".join(short(float(v)) for v in np.atleast_1d(maps[row, col]))
    return f"Result x {col}, y {row}: {values}"


class FiltersTab(QWidget):
    title = "Filters"
    result_shown = Signal()
    preview_shown = Signal()
    activation_requested = Signal()
    result_saved = Signal(str)
    save_failed = Signal(str)
    PREVIEW_PIXELS = filter_render.PREVIEW_PIXELS
    # files larger than this, or images of more pixels, are decoded off the GUI thread
    BACKGROUND_LOAD_BYTES = 2_000_000
    BACKGROUND_LOAD_PIXELS = 2_000_000

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        hold_collection_while(self)  # garbage collected on the GUI thread (desktop.workers)
        self._state = state
        self._image: np.ndarray | None = None  # RGB uint8 as loaded
        self._gray: tuple[np.ndarray, np.ndarray] | None = None  # (image, its gray version)
        self._image_name = ""
        self._rendered: Rendered | None = None
        self._token = 0  # of the newest render request
        self._open_token = 0  # of the newest open request
        self._shown_source: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None
        self._pending_zoom: tuple[float, tuple[int, int]] | None = None
        self._figure: F.FigureSample | None = None  # an article example is open
        self._pending_stage: str | None = None  # shown once the next result is in
        self._pending_mark: tuple[int, int] | None = None  # on the ReLU figure, likewise
        self._preview_shown: Preview | None = None  # on screen instead of self._rendered
        self._build()
        self._build_jobs()
        state.kernel_requested.connect(self._on_state_kernel_requested)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._on_app_about_to_quit)
        self._open_first_sample()

    # ===== building the UI ===================================================================
    def _build(self) -> None:
        self.editor = KernelEditor()
        self.editor.kernels_changed.connect(self._schedule)
        self.editor.message_posted.connect(self._state.status_posted)
        self.editor.error_posted.connect(self._show_error)
        self.settings_panel = FilterSettingsPanel()
        self.settings_panel.settings_changed.connect(self._schedule)
        self.pages = FilterPages()
        self.pages.display_changed.connect(self._schedule)
        self.pages.source_hovered.connect(self._on_pages_source_hovered)
        self.pages.result_hovered.connect(self._on_pages_result_hovered)
        self.pages.channel_changed.connect(self._refresh_inspector)

        controls = QWidget(objectName="filterControls")
        col = QVBoxLayout(controls)
        col.setContentsMargins(0, 0, 6, 0)
        col.setSpacing(10)
        col.addWidget(self.editor)
        col.addWidget(self.settings_panel)
        tip = QLabel(
            "Tip: hover the result to see how one pixel is computed; <b>Step through</b> "
            "plays the article's Figure 5, then ReLU and pooling when on; <b>ReLU</b> shows "
            "Figure 8; + stacks kernels into feature maps. File › Open sample image has the "
            "article's small examples (Figures 5-6, 10)."
        )
        tip.setWordWrap(True)
        set_tone(tip, "QLabel { color: #5f6368; }")
        col.addWidget(tip)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(320)
        scroll.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Tab: to its controls, in sight
        self._controls_scroll = scroll
        self._fit_controls_width()

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(6)
        self.banner = QLabel(objectName="filterMessage")
        self.banner.setWordWrap(True)
        set_tone(
            self.banner,
            "QLabel { background: #fce8e6; color: #a50e0e; border: 1px solid #f28b82;"
            " border-radius: 4px; padding: 6px 10px; }",
        )
        self.banner.hide()
        rl.addWidget(self.banner)
        rl.addWidget(self.pages, 1)
        rl.addLayout(self._build_action_row())

        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 8)
        layout.setSpacing(12)
        layout.addWidget(scroll)
        layout.addWidget(right, 1)

        self.addAction(self.editor.undo_action)
        self.addAction(self.editor.redo_action)
        copy = QAction("Copy result", self, shortcut=QKeySequence("Ctrl+Shift+C"))
        copy.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        copy.triggered.connect(self.copy_result)
        self.addAction(copy)

    def _fit_controls_width(self) -> None:
        """The controls column is at most 380 px wide, or as wide as a larger font needs: a
        fixed 380 cut the kernel grid's last column, Normalise and Save… at the right."""
        scroll = self._controls_scroll
        need = scroll.widget().minimumSizeHint().width()
        scroll.setMaximumWidth(max(380, need + scroll.verticalScrollBar().sizeHint().width()))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_controls_width()

    def _build_action_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        fit = QPushButton("Fit", objectName="fitButton")
        fit.setToolTip("Show the whole image (double-click does it too)")
        fit.clicked.connect(self.pages.source_view.fit)
        one = QPushButton("1:1", objectName="actualSizeButton")
        one.clicked.connect(lambda: self.pages.source_view.set_zoom(1.0))
        self.progress = QProgressBar(objectName="filterProgress")
        self.progress.setMaximumWidth(200)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.timing = QLabel(objectName="timingLabel")
        set_tone(self.timing, "QLabel { color: #5f6368; }")
        copy = QPushButton("Copy", objectName="copyButton")
        copy.setToolTip("Copy the result picture to the clipboard")
        copy.clicked.connect(self.copy_result)
        save = QPushButton("Save result…", objectName="saveResultButton")
        save.setToolTip("Save the picture (PNG) or the float values (.npy)")
        save.clicked.connect(self.save_result)
        row.addWidget(fit)
        row.addWidget(one)
        row.addSpacing(10)
        row.addWidget(self.progress)
        row.addWidget(self.timing)
        row.addStretch(1)
        row.addWidget(copy)
        row.addWidget(save)
        return row

    def _build_jobs(self) -> None:
        self._loads = OneAtATime(self, self._show_error)
        self._jobs = OneAtATime(self, self._on_job_errored)
        self._saves = OneAtATime(self, self._on_save_job_errored)
        self._saving: Path | None = None  # the file being written
        self._schedule_timer = QTimer(self, singleShot=True, interval=0)
        self._schedule_timer.timeout.connect(self._on_schedule_timer_timeout)
        self._refresh_labels()

    # ===== opening images (the main window's tab protocol) =================================
    def _open_first_sample(self) -> None:
        samples = resources.sample_images()
        preferred = [p for p in samples if p.name == "camera.png"] or samples
        if preferred:
            self.open_image_file(preferred[0])

    def open_image_file(self, path: Path) -> bool:
        """Load ``path`` as the input; on a bad file say why and keep the previous image. A
        kernel file (``.json``, dropped or a recent file) loads into the kernel editor instead.

        A large file or a large image (read from its header: a 47 KB PNG may hold 49 MP) is
        decoded off the GUI thread; it is then accepted at once and any problem is shown when
        the decoding has finished. The newest open always wins."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            return self.load_kernel_file(path)
        self._open_token += 1
        token = self._open_token
        if self._is_big(path):
            self._state.status_posted.emit(f"Opening {path.name}…")
            self._loads.submit(lambda: [(token, _load(path))], self._on_load_finished)
            return True
        loaded = _load(path)
        self._on_load_finished((token, loaded))
        return isinstance(loaded[0], np.ndarray)

    def _is_big(self, path: Path) -> bool:
        try:
            if path.stat().st_size > self.BACKGROUND_LOAD_BYTES:
                return True
        except OSError:
            return False  # load_image says what is wrong
        size = memory.image_size(path)
        return size is not None and size[0] * size[1] > self.BACKGROUND_LOAD_PIXELS

    def is_loading(self) -> bool:
        return self._loads.busy()

    def _on_load_finished(self, event: object) -> None:
        token, (image, text) = event  # type: ignore[misc]
        if token != self._open_token:
            return  # an older open, finished after a newer one: the newest wins
        if image is None:
            kept = f"; still showing {self._image_name}" if self._image is not None else ""
            self._show_error(f"Could not open {text.rstrip('.')}{kept}")  # no "first.; still"
        else:
            self.set_image(image, text)

    def set_image(self, image: np.ndarray, name: str) -> None:
        """Use ``image`` (uint8 RGB) as the input."""
        self._image = image
        self._figure = None
        self._gray = None
        self._rendered = None  # hover and saving wait for this image's result
        self._hover = None  # a pixel hovered on the previous image means nothing here
        self.pages.hover_label.setText("")
        self.pages.show_inspection(None)
        self._image_name = name
        self.banner.hide()
        self.pages.source_view.fit()
        self._state.status_posted.emit(f"Opened {name} ({image.shape[1]}×{image.shape[0]})")
        self._schedule()

    def image(self) -> np.ndarray | None:
        return self._image

    def _show_error(self, text: str, kind: str = "file") -> None:
        self.banner.setProperty("kind", kind)
        self.banner.setText(text)
        self.banner.show()
        self._state.status_posted.emit(text)

    def _hide_error(self, *kinds: str) -> None:
        if self.banner.isVisible() and self.banner.property("kind") in kinds:
            self.banner.hide()

    # ===== kernels from elsewhere ==========================================================
    def load_kernel_file(self, path: Path) -> bool:
        return self.editor.load_kernel_file(path)

    def _on_state_kernel_requested(self, kernel: object, description: str) -> None:
        k = np.asarray(kernel, dtype=np.float64)
        try:
            spec = F.KernelSpec(k, name=description)
        except EngineError as exc:
            self._state.status_posted.emit(f"Cannot edit this kernel: {exc}")
            return
        self.editor.load_specs([spec])
        self.settings_panel.use_gray()
        self.pages.set_display_mode("diverging")
        self.pages.setCurrentIndex(0)
        self._state.status_posted.emit(f"Filters: {description}")
        self.activation_requested.emit()

    # ===== settings and scheduling ==========================================================
    def settings(self) -> F.FilterSettings | None:
        specs = self.editor.kernel_specs()
        if specs is None:
            return None
        return F.FilterSettings(tuple(specs), **self.settings_panel.values())

    def display_mode(self) -> str:
        return self.pages.display_mode()

    def _refresh_labels(self) -> None:
        shape = None if self._image is None else self._image.shape[:2]
        self.settings_panel.show_formula(shape, self.editor.current_size())

    def _schedule(self) -> None:
        self._refresh_labels()
        self._schedule_timer.start()

    def is_computing(self) -> bool:
        """True while a result is being computed or waits to be."""
        return self._jobs.busy() or self._schedule_timer.isActive()

    def _on_schedule_timer_timeout(self) -> None:
        try:
            settings = self.settings()
            if self._image is None or settings is None:
                return
            settings.check_fits(*self._image.shape[:2])
        except EngineError as exc:
            self._show_error(str(exc), "settings")
            return
        self._hide_error("settings", "memory")
        step, full, message = filter_render.plan(
            self._image.shape, settings, preview_pixels=self.PREVIEW_PIXELS
        )
        if not full:
            self._show_error(message, "memory")
            if settings.pool != "none":
                self._jobs.cancel()
                return
        self._token += 1
        if step > 1:
            # its preview takes the shown result's place: that result's arrays go now, not
            # once the new one is computed beside them (a 24 MP photo's two results: 3 GB)
            self._rendered = None
            self.pages.forget_result()
        # the gray version of the image is made once (by the first gray job) and reused
        gray = self._gray if self._gray is not None and self._gray[0] is self._image else None
        request = RenderRequest(
            origin=self._image,
            image=gray[1] if gray is not None and settings.color == "gray" else self._image,
            settings=settings,
            display=self.display_mode(),
            current=self.editor.current_index(),
            token=self._token,
            step=step,
            full=full,
        )
        cancel = CancelFlag()
        self._jobs.submit(
            lambda: render(request, cancel),
            self._on_job_event,
            essential=lambda e: isinstance(e, (Rendered, Preview)),
            cancel=cancel,
        )
        self.progress.setVisible(step > 1 and full)
        self.progress.setValue(0)

    def _on_app_about_to_quit(self) -> None:
        # the job is cancelled between bands; desktop.workers waits for its thread
        self._jobs.cancel()

    def _on_job_event(self, event: object) -> None:
        if isinstance(event, Progress):
            self.progress.setMaximum(event.total)
            self.progress.setValue(event.done)
        elif isinstance(event, Rendered) and event.token == self._token:
            self.progress.hide()
            self._show_rendered(event)
        elif isinstance(event, Preview) and event.token == self._token:
            self._show_preview(event)

    def _on_job_errored(self, message: str) -> None:
        self.progress.hide()
        self._show_error(f"Filtering failed: {message}")

    # ===== showing results ==================================================================
    def _show_preview(self, preview: Preview) -> None:
        settings = self.settings()
        if settings is None or self._image is None:
            return
        h, w = self._image.shape[:2]
        if self._shown_source is None or self._shown_source[0] != id(self._image):
            self.pages.source_view.set_image(self._image)  # before any full result of it
            self._shown_source = (id(self._image), self._image.ndim)
        scale, offset = settings.placement(preview.step)
        self.pages.show_result(preview.qimage, scale, offset, (h, w))
        self._preview_shown = preview
        every = f"every {filter_render.ordinal(preview.step)} pixel"
        if preview.final:  # nothing else comes: say what is shown
            index = self.editor.current_index()
            self.pages.show_preview_only(
                f"Input — {self._image_name} · {w}×{h}", f"Result — kernel {index + 1} · {every}"
            )
            self.settings_panel.show_stages(F.stages(self._image.shape, settings))
        self.timing.setText(f"preview ({every})" if preview.final else f"quick preview ({every})…")
        self.preview_shown.emit()

    def _show_rendered(self, rendered: Rendered) -> None:
        self._rendered = rendered.shown()
        self._preview_shown = None
        if rendered.result.source.ndim == 2 and rendered.origin is self._image:
            self._gray = (self._image, rendered.result.source)
        result = rendered.result
        src = result.source
        h, w = src.shape[:2]
        key = (id(rendered.origin), src.ndim)
        pages = self.pages
        if self._shown_source != key:  # a 12 MP photo is not re-uploaded on every edit
            if self._figure is not None:  # the article's small numbers, told apart
                pages.source_view.set_image(F.sample_picture(src), values=src)
            else:
                pages.source_view.set_image(src)
            self._shown_source = key
        index = min(self.editor.current_index(), len(rendered.pictures) - 1)
        scale, offset = result.settings.placement()
        picture = rendered.qimage if index == rendered.current else None
        if picture is None:
            picture = rendered.pictures[index]
        pages.show_result(picture, scale, offset, (h, w), result.maps[index])
        colour = "grayscale" if src.ndim == 2 else "RGB"
        pages.source_caption.setText(f"Input — {self._image_name} · {w}×{h} {colour}")
        mh, mw = result.maps.shape[1:3]
        pages.result_caption.setText(f"Result — kernel {index + 1} · {mw}×{mh}")
        window = (0.0, 255.0) if self.display_mode() in ("clip", "abs") else None
        pages.show_values(
            rendered.counts, rendered.edges, window, tuple(map(short, rendered.stats))
        )
        self.settings_panel.show_stages(result.stages)
        self.timing.setText(f"{w}×{h} computed in {rendered.seconds * 1000:.0f} ms")
        self._show_maps(rendered, mh, mw)
        what = f"Kernel {index + 1}: " + ("red channel: " if src.ndim == 3 else "")
        pages.relu_view.show_figure(rendered.relu, what)
        newer = self._schedule_timer.isActive()  # a set-up waits for the result it asked for
        self._refresh_animation_crop()
        self._refresh_inspector()
        if self._pending_mark is not None and not newer:  # after the inspector: it wins
            pages.relu_view.mark(*self._pending_mark)
            self._pending_mark = None
        if not newer:
            self._apply_pending_zoom()
        self.result_shown.emit()

    def _show_maps(self, rendered: Rendered, mh: int, mw: int) -> None:
        # QImages made by the worker (a 24 MP picture takes 100-300 ms to convert); one map is
        # the result view's own picture, its cells written with the float values when zoomed
        count = len(rendered.pictures)
        if rendered.maps_qimage is not None:
            self.pages.show_maps(rendered.maps_qimage, count, mh, mw)
        else:
            picture = rendered.pictures[0] if rendered.qimage is None else rendered.qimage
            self.pages.show_maps(picture, count, mh, mw, rendered.result.maps[0])

    def result(self) -> F.FilterResult | None:
        return None if self._rendered is None else self._rendered.result

    # ===== hover, inspector, animation ======================================================
    def _on_pages_source_hovered(self, row: int, col: int) -> None:
        if self._rendered is None:
            return
        value = self._rendered.result.source[row, col]
        text = " ".join(str(int(v)) for v in np.atleast_1d(value))
        self.pages.hover_label.setText(f"Input x {col}, y {row}: {text}")

    def _on_pages_result_hovered(self, row: int, col: int) -> None:
        self._show_result_pixel(row, col)

    def _show_result_pixel(self, row: int, col: int) -> bool:
        """Inspect result pixel ``(row, col)`` as hovering it does (the pixel inspector, the
        pooling window); False before a result or outside it."""
        if self._preview_shown is not None:  # a preview of newer settings is on screen: its
            # pixels are not the kept result's, whose numbers belong to other settings
            preview = self._preview_shown
            every = f"Preview of every {filter_render.ordinal(preview.step)} pixel: "
            self.pages.hover_label.setText(
                every
                + (
                    "no numbers, the full result would not fit in memory"
                    if preview.final
                    else "the numbers come with the full result, being computed"
                )
            )
            self.pages.show_inspection(None)
            return False
        if self._rendered is None:
            return False
        result = self._rendered.result
        if not (0 <= row < result.maps.shape[1] and 0 <= col < result.maps.shape[2]):
            return False
        self._hover = (row, col)
        explained = self._refresh_inspector()
        figure = self._rendered.relu  # Figure 8 follows the hovered pixel (in one channel)
        one_channel = result.source.ndim == 2 or self.pages.channel_box.currentIndex() == 0
        if explained is not None and figure is not None and one_channel:
            self.pages.relu_view.mark(*figure.pixel_of(*explained))
        return True

    def _refresh_inspector(self) -> tuple[int, int] | None:
        """Show the hovered pixel's value (the hover line) and explanation, from the result
        shown now; returns the convolution pixel explained."""
        rendered = self._rendered
        rgb = self.settings_panel.values()["color"] == "rgb"
        self.pages.channel_box.setVisible(rgb)
        ex = None
        channel = self.pages.channel_box.currentIndex()
        if rendered is not None and self._hover is not None:
            index = self.editor.current_index()
            self.pages.hover_label.setText(_result_line(rendered.result, index, *self._hover))
            ex = F.explain_pixel(rendered.result, index, *self._hover, channel)
        if ex is None:
            self.pages.show_inspection(None)
            return None
        row, col = ex.conv_rc
        where = f"conv output x {col}, y {row}"
        if ex.pool is not None:
            where += " (the winner of the pooling window)" if ex.pool.window.winner else ""
        if rendered.result.source.ndim == 3:
            where += f" · {self.pages.channel_box.currentText().lower()} channel"
        ins = ex.inspection
        f = ins.weights.shape[0]
        self.pages.show_inspection(
            ins, where, (*ins.source_rc, f, f), relu_value=ex.relu_value, pool=ex.pool
        )
        return ex.conv_rc

    def _refresh_animation_crop(self) -> None:
        if self._rendered is not None:
            index = self.editor.current_index()
            result = self._rendered.result
            animation = self.pages.animation
            animation.set_figure5(F.figure5_sequence(result.settings))
            animation.set_crop(F.step_through(result, index, self._hover, CROP))
            if self._pending_stage is not None and not self._schedule_timer.isActive():
                animation.show_stage(self._pending_stage)
                self._pending_stage = None

    # ===== set-ups: the article's figures (a guided tour calls these) =======================
    def open_figure(self, key: str) -> bool:
        """Open the article's example ``key`` (``figure5``: Figures 5-6, ``figure10``: Figure
        10; :data:`engine.filters.FIGURE_SAMPLES`): its image, kernel and settings (pooling on
        for Figure 10), the Image page fitted so every cell shows its number, the result
        stretched min..max. The kernel stack is replaced (:meth:`snapshot` saves it first)."""
        try:
            sample = F.figure_sample(key)
        except EngineError as exc:
            self._show_error(str(exc), "settings")
            return False
        self._open_token += 1  # a photo still decoding loses to this open
        self.editor.load_specs([sample.kernel])
        keys = ("border", "stride", "relu", "pool", "pool_size", "pool_stride")
        values = {k: getattr(sample.settings, k) for k in keys}
        self.settings_panel.set_values({"color": "gray", **values})
        self.pages.set_display_mode("normalize")
        self.set_image(sample.image.copy(), sample.name)
        self._figure = sample
        self._hover = None
        self.pages.setCurrentIndex(0)
        self._state.status_posted.emit(f"{sample.name}: {sample.about}")
        return True

    def figure(self) -> F.FigureSample | None:
        """The article's example open now (None for a photo)."""
        return self._figure

    def show_step_through(self, source: str = "figure5", stage: str = "conv", **stages) -> bool:
        """The Step through page on ``source`` (``figure5``: the article's example; ``crop``:
        a crop of the image with the current kernel) at the first step of ``stage`` (conv,
        relu or pool). ``stages`` (``relu=True``, ``pool="max"``, ``pool_size=3``,
        ``pool_stride=2``) set the tab's ReLU and pooling first; the stage then shows once the
        new result is in (``result_shown``). False when the sequence has no such stage."""
        if source not in ("figure5", "crop"):
            raise ValueError(f"step-through source {source!r}: use figure5 or crop")
        before = self.settings_panel.values()
        self.settings_panel.set_values(stages)
        animation = self.pages.animation
        self.pages.setCurrentWidget(animation)
        if source == "figure5":
            animation.show_figure5()
        else:
            animation.show_crop()
        animation.board.setFocus()
        if self.settings_panel.values() != before or self.is_computing():
            self._pending_stage = stage
            return stage in F.STAGES
        return animation.show_stage(stage)

    def show_relu_figure(self, mark: tuple[int, int] | None = None) -> None:
        """The ReLU page (Figure 8); ``mark``: a pixel of its maps to mark on the curve, now or
        once the result being computed is in."""
        self.pages.setCurrentWidget(self.pages.relu_view)
        if mark is None:
            return
        if self._rendered is None or self.is_computing():
            self._pending_mark = mark
        else:
            self.pages.relu_view.mark(*mark)

    # ===== set up by others (the tour): public steps, and a snapshot to come back to ========
    def set_kernels(self, specs: list[F.KernelSpec]) -> None:
        """Replace the kernel stack (its undo history starts again)."""
        self.editor.load_specs(specs)

    def set_filter_settings(self, values: dict) -> None:
        """Border, stride, colour, ReLU and pooling, as :meth:`FilterSettingsPanel.values`."""
        self.settings_panel.set_values(values)

    def set_display_mode(self, mode: str) -> None:
        self.pages.set_display_mode(mode)

    def show_page(self, page: str) -> None:
        """Show the "image", "maps" or "step" page; "step" with the article's Figure 5."""
        self.pages.setCurrentIndex(PAGES.index(page))
        if page == "step":
            self.pages.animation.show_figure5()

    def current_page(self) -> str:
        return PAGES[self.pages.currentIndex()]

    def zoom_to(self, zoom: float, centre: tuple[int, int]) -> None:
        """Zoom the input and result to ``zoom`` screen pixels per pixel around (row, col),
        once the result being computed is shown (the views then hold the new image)."""
        self._pending_zoom = (zoom, centre)
        if not self.is_computing():
            self._apply_pending_zoom()

    def _apply_pending_zoom(self) -> None:
        if self._pending_zoom is not None:
            zoom, centre = self._pending_zoom
            self._pending_zoom = None
            self.pages.source_view.zoom_to(zoom, centre)

    def inspect_result_pixel(self, pixel: tuple[int, int] | None) -> None:
        """Explain result pixel (row, col) in the inspector, as hovering it does (now, or
        when the result being computed is shown); None empties the inspector."""
        self._hover = pixel
        if pixel is not None and self._rendered is not None:
            self._on_pages_result_hovered(*pixel)
        elif pixel is None:
            self._refresh_inspector()

    def snapshot(self) -> FiltersSnapshot:
        """What the user set up: image, kernels, settings, display and page."""
        return FiltersSnapshot(
            self._image,
            self._image_name,
            self.editor.stack_snapshot(),
            self.settings_panel.values(),
            self.display_mode(),
            self.pages.currentIndex(),
            self._figure,
        )

    def restore(self, snap: FiltersSnapshot) -> None:
        """Put back what :meth:`snapshot` saw (the view fits the image again)."""
        self.editor.restore_stack(snap.kernels)
        self.settings_panel.set_values(snap.settings)
        self.pages.set_display_mode(snap.display)
        self.pages.setCurrentIndex(snap.page)
        self._hover = self._pending_zoom = None
        if snap.image is not None and snap.image is not self._image:
            self.set_image(snap.image, snap.name)
        self._figure = snap.figure
        self._shown_source = None  # the input picture again (an example's is stretched)
        self.pages.source_view.fit()
        self._schedule()

    # ===== saving and copying ===============================================================
    def _unsaved_reason(self) -> str:
        """Why there is no result to save now ("" when there is one)."""
        preview = self._preview_shown
        if preview is not None and preview.final:
            return "Only a preview is shown (the full result would not fit in memory): no file"
        rendered = self._rendered
        later = "The result shown is not computed in full yet: save it once it is"
        if rendered is None:  # (a big photo's shown result goes when newer settings come)
            return later if self.is_computing() else "Nothing to save yet"
        if rendered.token != self._token or self._schedule_timer.isActive():
            return later  # newer settings asked for: the view shows their preview
        return ""

    def save_result(self) -> None:
        if reason := self._unsaved_reason():
            self._state.status_posted.emit(reason)
            return
        stem = Path(self._image_name).stem or "result"
        raw_kind = "Float values, NumPy (*.npy)"
        name, kind = QFileDialog.getSaveFileName(
            self, "Save result", f"{stem}-filtered.png", f"PNG picture (*.png);;{raw_kind}"
        )
        if not name:
            return
        path = filter_render.result_file_path(name, raw=kind == raw_kind)
        if not replace_allowed(self, name, path, "result"):
            self._state.status_posted.emit(f"Not saved: {path.name} kept as it was")
            return
        self.save_result_to(path)

    def save_result_to(self, path: Path) -> bool:
        """Write the picture (.png etc.) or the float values (.npy) of the last result, off the
        GUI thread (a big photo's PNG takes many seconds): ``result_saved(path)`` or
        ``save_failed(message)`` follows. False when there is no result yet, while a new one
        is computed (the kept one is not what the view shows) or while the previous save is
        still being written."""
        rendered = self._rendered
        if reason := self._unsaved_reason():
            self._state.status_posted.emit(reason)
            return False
        assert rendered is not None
        if self._saving is not None:
            self._state.status_posted.emit(f"Still saving {self._saving.name}: save again after it")
            return False
        path = self._saving = Path(path)
        self._state.status_posted.emit(f"Saving {path.name}…")
        self._saves.submit(lambda: filter_render.save(rendered, path), self._on_save_finished)
        return True

    def _on_save_finished(self, saved: object) -> None:
        assert isinstance(saved, filter_render.Saved)
        self._saving = None
        if saved.error:
            self._on_save_errored(saved.error)
        else:
            self._hide_error("save")  # an earlier save's failure is over
            self._state.status_posted.emit(f"Saved {saved.path}")
            self.result_saved.emit(str(saved.path))

    def _on_save_job_errored(self, message: str) -> None:  # not a file problem: a failure
        self._on_save_errored(f"Could not save the result: {message}")

    def _on_save_errored(self, message: str) -> None:
        self._saving = None
        self._show_error(message, "save")
        self.save_failed.emit(message)

    def copy_result(self) -> None:
        if self._rendered is None:
            return
        QGuiApplication.clipboard().setImage(self.pages.result_view.shown_qimage())
        self._state.status_posted.emit("Result copied to the clipboard")

"""The Filters tab's result pages: *Image* (input and result side by side with synchronised
zoom/pan, the pixel inspector and the display controls under them), *Feature maps* (the
depth-N stack), *Step through* (the article's Figure 5, then ReLU and pooling) and *ReLU*
(Figure 8: the feature map before and after, beside the curve).

A view: the tab computes, these widgets show. Signals: ``source_hovered(row, col)``,
``result_hovered(row, col)``, ``result_left()``, ``channel_changed()``, ``display_changed()``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets.conv_animation import ConvAnimation
from desktop.widgets.histogram import Histogram
from desktop.widgets.image_view import ImageView
from desktop.widgets.pixel_inspector import PixelInspector
from desktop.widgets.relu_view import ReluView
from desktop.widgets.tone import set_tone

DISPLAY_LABELS = {
    "clip": "Clip to 0–255",
    "abs": "Absolute value",
    "normalize": "Stretch min..max",
    "diverging": "Diverging: − blue, + red",
}
HOVER_HELP = "Hover the images to read pixel values · wheel zooms · drag pans · double-click fits"


class FilterPages(QTabWidget):
    source_hovered = Signal(int, int)
    result_hovered = Signal(int, int)
    result_left = Signal()
    channel_changed = Signal()
    display_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterPages")
        self.addTab(self._build_image_page(), "Image")
        self.addTab(self._build_maps_page(), "Feature maps")
        self.animation = ConvAnimation()
        self.addTab(self.animation, "Step through")
        self.relu_view = ReluView()
        self.addTab(self.relu_view, "ReLU (Figure 8)")

    def _build_image_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(6, 6, 6, 6)
        v.setSpacing(6)
        self.source_view = ImageView(placeholder="Open an image (Ctrl+O) or drop one here")
        self.source_view.setObjectName("sourceView")
        self.result_view = ImageView(placeholder="The result appears here")
        self.result_view.setObjectName("resultView")
        self.source_view.link(self.result_view)
        self.source_caption = QLabel("Input", objectName="sourceCaption")
        self.result_caption = QLabel("Result", objectName="resultCaption")
        split = QSplitter(Qt.Orientation.Horizontal)
        for caption, view in (
            (self.source_caption, self.source_view),
            (self.result_caption, self.result_view),
        ):
            pane = QWidget()
            pl = QVBoxLayout(pane)
            pl.setContentsMargins(0, 0, 0, 0)
            pl.setSpacing(3)
            set_tone(caption, "QLabel { font-weight: 600; color: #3c4043; }")
            pl.addWidget(caption)
            pl.addWidget(view, 1)
            split.addWidget(pane)
        split.setChildrenCollapsible(False)
        v.addWidget(split, 1)
        self.hover_label = QLabel(HOVER_HELP, objectName="hoverLabel")
        set_tone(self.hover_label, "QLabel { color: #3c4043; }")
        v.addWidget(self.hover_label)
        v.addLayout(self._build_inspector_row())
        self.source_view.pixel_hovered.connect(self.source_hovered)
        self.result_view.pixel_hovered.connect(self.result_hovered)
        self.result_view.hover_left.connect(self._on_result_view_hover_left)
        return page

    def _build_inspector_row(self) -> QHBoxLayout:
        self.inspector = PixelInspector()
        self.inspector.setFixedHeight(150)
        self.inspector.setMinimumWidth(340)
        self.channel_box = QComboBox(objectName="inspectorChannel")
        self.channel_box.addItems(["Red", "Green", "Blue"])
        self.channel_box.setToolTip("The channel the inspector shows (RGB mode)")
        self.channel_box.currentIndexChanged.connect(self.channel_changed)
        row = QHBoxLayout()
        row.setSpacing(10)
        row.addWidget(self.inspector, 3)
        row.addWidget(self.channel_box, 0, Qt.AlignmentFlag.AlignTop)
        display = self._build_display_panel()
        display.setMinimumWidth(200)
        display.setMaximumWidth(300)
        row.addWidget(display, 1)
        return row

    def _build_display_panel(self) -> QWidget:
        box = QWidget(objectName="displayPanel")
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(4)
        title = QLabel("Show signed results as", wordWrap=True)  # a large font: two lines
        set_tone(title, "QLabel { font-weight: 600; color: #3c4043; }")
        v.addWidget(title)
        self.display_box = QComboBox(objectName="displayBox")
        for key, label in DISPLAY_LABELS.items():
            self.display_box.addItem(label, key)
        self.display_box.currentIndexChanged.connect(self.display_changed)
        v.addWidget(self.display_box)
        self.histogram = Histogram()
        v.addWidget(self.histogram)
        self.value_label = QLabel(objectName="valueRange")
        set_tone(self.value_label, "QLabel { color: #5f6368; }")
        self.value_label.setWordWrap(True)  # a narrow window: "mean 3.465" on a line of its own
        v.addWidget(self.value_label)
        return box

    def _build_maps_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(6, 6, 6, 6)
        self.maps_caption = QLabel(objectName="mapsCaption")
        self.maps_caption.setWordWrap(True)
        v.addWidget(self.maps_caption)
        self.maps_view = ImageView(placeholder="")
        self.maps_view.setObjectName("mapsView")
        v.addWidget(self.maps_view, 1)
        return page

    # ----- what the tab calls ------------------------------------------------------------
    def display_mode(self) -> str:
        return self.display_box.currentData()

    def set_display_mode(self, mode: str) -> None:
        self.display_box.setCurrentIndex(list(DISPLAY_LABELS).index(mode))

    def show_result(
        self,
        picture: object,
        scale: float,
        offset: float,
        scene_size: tuple[int, int],
        values: np.ndarray | None = None,
    ) -> None:
        """The result picture placed over the input pixels it comes from, at the input's zoom;
        ``values`` are the numbers written in its cells when zoomed in (the float result)."""
        self.result_view.set_image(
            picture, scale=scale, offset=(offset, offset), scene_size=scene_size, values=values
        )
        self.result_view.follow(self.source_view)

    def show_values(self, counts, edges, window, stats: tuple[str, str, str]) -> None:
        self.histogram.set_data(counts, edges, window)
        lo, hi, mean = stats
        self.value_label.setText(f"values {lo} … {hi} · mean {mean}")

    def show_maps(
        self,
        picture: object,
        count: int,
        height: int,
        width: int,
        values: np.ndarray | None = None,
    ) -> None:
        """The mosaic of ``count`` maps of ``height`` x ``width`` (or the one map, whose
        ``values`` are written in its cells when zoomed in)."""
        self.maps_view.set_image(picture, values=values)
        if count > 1:
            caption = (
                f"{count} kernels give a stack of {count} feature maps (depth {count}), "
                f"{count}×{height}×{width}: what one convolution layer of a CNN outputs "
                "(the article's Figure 7). Kernels in reading order."
            )
        else:
            caption = (
                "One kernel gives one feature map. Add kernels with + (up to 8) to see a "
                "depth-N stack, like a convolution layer's output (the article's Figure 7)."
            )
        self.maps_caption.setText(caption)
        self.setTabText(1, f"Feature maps ({count})")

    def show_preview_only(self, source_caption: str, result_caption: str) -> None:
        """Only a preview exists (no values, no maps): captions say so, old details go."""
        self.source_caption.setText(source_caption)
        self.result_caption.setText(result_caption)
        self.histogram.set_data(np.zeros(0), np.zeros(1), None)
        self.value_label.setText("values: only with the full result")
        self.maps_view.clear()
        self.maps_caption.setText("The feature maps need the full result (see the message).")
        self.setTabText(1, "Feature maps")

    def forget_result(self) -> None:
        """A newer result is being computed and the shown one lets go of its memory: the
        result picture stays until the new one replaces it, without its numbers; the
        feature maps go."""
        self.result_view.forget_values()
        self.maps_view.clear()
        self.maps_caption.setText("The feature maps come with the full result, being computed.")

    def show_inspection(
        self, inspection, where: str = "", marker=None, *, relu_value=None, pool=None
    ) -> None:
        """The pixel inspector's content and the kernel's square on the input (or none)."""
        self.inspector.show_inspection(inspection, where, relu_value=relu_value, pool=pool)
        self.source_view.set_marker(marker)

    def _on_result_view_hover_left(self) -> None:
        self.source_view.set_marker(None)
        self.result_left.emit()

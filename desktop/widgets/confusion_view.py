"""The results page: test accuracy, the confusion matrix and galleries of images.

The confusion matrix (rows = true class, columns = predicted)

Cells are shaded by the fraction of their row (from :func:`engine.visualize.row_fractions`);
the diagonal is green, mistakes red, drawn as one picture of the cells' colours
(:func:`engine.visualize.confusion_colours`) scaled to the matrix without smoothing. The last
column shows each class's accuracy. Clicking a cell emits ``cell_clicked(true_class,
predicted_class)``; pointing at one names it in the tooltip.

Many classes (up to the dataset limit of 1,000): the matrix shrinks to fit the widget, cells
below a pixel included. Counts are written only in cells big enough to read them; names and the
accuracy column only when a row is as tall as a line of text (else a hint line says to point
at a cell). The layout is worked out once per result and size, not per cell.
"""

from __future__ import annotations

import math
from html import escape
from typing import NamedTuple

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QFontMetricsF,
    QIcon,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop.qt_image import array_to_qimage
from desktop.widgets import plain_tip
from engine.preview import display_image
from engine.visualize import (
    confusion_cell,
    confusion_colours,
    confusion_shades,
    row_fractions,
)

CELL_IMAGES = 60
MISTAKES = 40

TITLE_H = 16  # the "predicted" line; the "true" strip is as wide
ACC_W = 58
CELL_NAME = 240  # pixels of a class name above a cell's images (the line's tooltip has it whole)
MAX_LABEL = 110  # class names longer than this (pixels) are elided; the tooltip has them whole
HINT_H = 18  # the line saying where the names are, when there are too many to write
GRID_FROM = 6  # cells at least this many pixels wide are outlined (smaller ones: just colour)
DARK_SHADE = 150 / 255  # counts on cells coloured more strongly than this are written white


class MatrixGeometry(NamedTuple):
    """Where the matrix lies in the widget: its top-left corner, the side of a cell, the width
    given to the row names, whether column names are written vertically and whether names (and
    the accuracy column) are shown at all: they are left out when a row is shorter than a line
    of the label font, and the tooltip names the cell instead."""

    left: float
    top: float
    cell: float
    label: float
    rotated: bool
    names: bool


class ConfusionView(QWidget):
    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="confusionView")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(260, 160)  # the results page of a 1024x700 window has ~230
        self._confusion: np.ndarray | None = None
        self._fractions = np.zeros((0, 0))
        self._shades = np.zeros((0, 0))
        self._image = QImage()  # the cells' colours, a pixel per cell (or per block of cells)
        self._image_side: int | None = None
        self._accuracy: list[str] = []
        self._classes: list[str] = []
        self._label_width: float | None = None  # the longest class name, measured once
        self._geometry: MatrixGeometry | None = None  # worked out again after a resize
        self.selected: tuple[int, int] | None = None

    def set_result(self, confusion: np.ndarray, per_class: list[float], classes: list[str]):
        self._confusion = np.asarray(confusion)
        self._fractions = row_fractions(self._confusion)
        self._shades = confusion_shades(self._fractions)
        self._image, self._image_side = QImage(), None
        self._accuracy = ["–" if np.isnan(p) else f"{p * 100:.1f}%" for p in per_class]
        self._classes = list(classes)
        self._label_width = self._geometry = None
        self.selected = None
        self.update()

    def clear(self) -> None:
        """No matrix (the placeholder text instead)."""
        self._confusion = None
        self._accuracy, self._classes = [], []
        self._image, self._image_side = QImage(), None
        self._label_width = self._geometry = None
        self.selected = None
        self.setToolTip("")
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._geometry = None
        super().resizeEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.FontChange:
            self._label_width = self._geometry = None
        super().changeEvent(event)

    def accuracy_texts(self) -> list[str]:
        """The last column: each class's accuracy, or a dash for a class without images."""
        return list(self._accuracy)

    def label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(9.0)
        return font

    def geometry_of_matrix(self) -> MatrixGeometry:
        """The row names get the width of the longest (up to MAX_LABEL); column names stand
        upright when they fit a cell, else they are written vertically; when even then a row is
        shorter than a line of text, the names are left out and the matrix fills the widget.
        Worked out once per result and size."""
        if self._geometry is None:
            self._geometry = self._work_out_geometry()
        return self._geometry

    def _work_out_geometry(self) -> MatrixGeometry:
        k = len(self._classes) or 1
        metrics = QFontMetrics(self.label_font())
        if self._label_width is None:  # whole pixels up: "class 0" is 41.2, not 41 ("clas…")
            exact = QFontMetricsF(self.label_font())
            widths = (math.ceil(exact.horizontalAdvance(c)) for c in self._classes)
            self._label_width = float(min(MAX_LABEL, max(widths, default=8)))
        label = self._label_width
        left = TITLE_H + label + 6
        room_w = self.width() - left - ACC_W - 8
        flat = min(room_w / k, (self.height() - TITLE_H - 20 - 8) / k)
        if label <= flat - 2 and flat >= metrics.height():
            return MatrixGeometry(left, TITLE_H + 20, flat, label, False, True)
        top = TITLE_H + label + 6
        size = min(room_w / k, (self.height() - top - 8) / k)
        if size >= metrics.height():
            return MatrixGeometry(left, top, size, label, True, True)
        left, top = TITLE_H + 4, TITLE_H + HINT_H  # no names: a hint line instead
        size = min((self.width() - left - 8) / k, (self.height() - top - 8) / k)
        return MatrixGeometry(left, top, max(size, 0.01), label, True, False)

    def cell_rect(self, true_class: int, predicted_class: int) -> QRectF:
        g = self.geometry_of_matrix()
        return QRectF(
            g.left + predicted_class * g.cell, g.top + true_class * g.cell, g.cell, g.cell
        )

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        if self._confusion is None:
            return None
        g = self.geometry_of_matrix()
        col = int((pos.x() - g.left) // g.cell)
        row = int((pos.y() - g.top) // g.cell)
        k = len(self._classes)
        if pos.x() >= g.left and pos.y() >= g.top and 0 <= row < k and 0 <= col < k:
            return row, col
        return None

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.selected = cell
            self.update()
            self.cell_clicked.emit(*cell)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position())
        if cell is None:
            self.setToolTip("")
            return
        t, p = cell
        n = int(self._confusion[t, p])
        accuracy = f"; {self._classes[t]} accuracy {self._accuracy[t]}" if self._accuracy else ""
        self.setToolTip(
            plain_tip(
                f"true {self._classes[t]}, predicted {self._classes[p]}: {n} images "
                f"({self._fractions[t, p] * 100:.1f}% of the {self._classes[t]}s{accuracy})"
            )
        )

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#ffffff"))
        if self._confusion is None:
            painter.setPen(QColor("#777"))
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter,
                "The confusion matrix appears\nafter training",
            )
            return
        k = len(self._classes)
        g = self.geometry_of_matrix()
        s = g.cell
        self._paint_labels(painter, g)
        matrix = QRectF(g.left, g.top, k * s, k * s)
        painter.drawImage(matrix, self._cell_colours(k, s))  # not smoothed: flat cells
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, min(10.0, s / 4.0)))
        painter.setFont(font)
        self._paint_counts(painter, g)
        if g.names:
            painter.setPen(QColor("#222"))
            for t, text in enumerate(self._accuracy[:k]):
                rect = QRectF(g.left + k * s + 4, g.top + t * s, ACC_W, s)
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.setPen(QColor("#ccc"))
        if s >= GRID_FROM:
            for i in range(k + 1):
                painter.drawLine(
                    QPointF(g.left, g.top + i * s), QPointF(matrix.right(), g.top + i * s)
                )
                painter.drawLine(
                    QPointF(g.left + i * s, g.top), QPointF(g.left + i * s, matrix.bottom())
                )
        else:
            painter.drawRect(matrix.adjusted(-1, -1, 0, 0))  # just outside the cells
        if self.selected is not None:
            painter.setPen(QColor("#000"))
            painter.drawRect(self._selection_rect(*self.selected))
        painter.end()

    def _cell_colours(self, k: int, cell: float) -> QImage:
        """A pixel per cell; a pixel per block of cells when a cell is under a pixel."""
        side = None if cell >= 1 else max(1, round(k * cell))
        if self._image.isNull() or side != self._image_side:
            self._image = array_to_qimage(confusion_colours(self._fractions, side))
            self._image_side = side
        return self._image

    def _paint_counts(self, painter: QPainter, g: MatrixGeometry) -> None:
        """The number of images in each non-empty cell, where it fits the cell."""
        metrics = QFontMetrics(painter.font())
        if metrics.height() > g.cell + 2:
            return
        digit = metrics.horizontalAdvance("0")
        centre = Qt.AlignmentFlag.AlignCenter
        rows, cols = np.nonzero(self._confusion)
        for t, p in zip(rows.tolist(), cols.tolist(), strict=True):
            text = str(int(self._confusion[t, p]))
            if len(text) * digit > g.cell - 2:
                continue
            dark = self._shades[t, p] > DARK_SHADE
            painter.setPen(QColor("#fff") if dark else QColor("#222"))
            rect = QRectF(g.left + p * g.cell, g.top + t * g.cell, g.cell, g.cell)
            painter.drawText(rect, centre, text)

    def _selection_rect(self, true_class: int, predicted_class: int) -> QRectF:
        """The frame around the selected cell, never smaller than a few pixels."""
        rect = self.cell_rect(true_class, predicted_class)
        if rect.width() >= GRID_FROM:
            return rect.adjusted(1, 1, -1, -1)
        grow = (GRID_FROM - rect.width()) / 2
        return rect.adjusted(-grow, -grow, grow, grow)

    def _paint_labels(self, painter: QPainter, g: MatrixGeometry) -> None:
        """ "predicted" and "true", the class names (elided to ``label`` pixels) and "acc.";
        without names, a line saying where they are."""
        k, s, left, top, label = len(self._classes), g.cell, g.left, g.top, g.label
        font = self.label_font()
        painter.setFont(font)
        metrics = QFontMetrics(font)
        painter.setPen(QColor("#555"))
        center = Qt.AlignmentFlag.AlignCenter
        painter.drawText(QRectF(left, 0, max(k * s, 80), TITLE_H), center, "predicted")
        painter.save()
        painter.translate(TITLE_H / 2 + 1, top + k * s / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-40, -8, 80, 14), center, "true")
        painter.restore()
        if not g.names:
            hint = f"{k} classes: point at a cell to name it"
            width = int(self.width() - left - 8)
            hint = metrics.elidedText(hint, Qt.TextElideMode.ElideRight, width)
            painter.drawText(QRectF(left, TITLE_H, width, HINT_H - 2), center, hint)
            return
        names = [
            metrics.elidedText(c, Qt.TextElideMode.ElideRight, int(label)) for c in self._classes
        ]
        right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        up = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for i, name in enumerate(names):
            painter.drawText(QRectF(TITLE_H, top + i * s, label + 2, s), right, name)
            if not g.rotated:
                painter.drawText(QRectF(left + i * s, TITLE_H, s, top - TITLE_H), center, name)
                continue
            painter.save()  # written bottom to top, ending just above its column
            painter.translate(left + i * s + s / 2, top - 3)
            painter.rotate(-90)
            painter.drawText(QRectF(0, -s / 2, label + 2, s), up, name)
            painter.restore()
        painter.drawText(QRectF(left + k * s + 4, top - 18, ACC_W, 16), center, "acc.")


class ImageGallery(QListWidget):
    """Thumbnails of uint8 images with a caption each (cell images, confident mistakes)."""

    def __init__(self, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName=object_name)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(56, 56))
        self.setGridSize(QSize(84, 100))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)

    def set_images(
        self, images: list[np.ndarray], captions: list[str], tips: list[str] | None = None
    ) -> None:
        self.clear()
        tips = tips if tips is not None else captions
        metrics = QFontMetrics(self.font())  # cells as wide as the longest caption line
        widest = max((metrics.horizontalAdvance(line) for c in captions for line in c.split("\n")),
                     default=0)  # fmt: skip
        lines = max((c.count("\n") + 1 for c in captions), default=1)
        width = max(84, min(200, widest + 14))
        self.setGridSize(QSize(width, 64 + lines * metrics.height()))
        # in icon mode a caption is only as wide as the icon: the icon spans the cell, the
        # image sits in its middle
        self.setIconSize(QSize(width - 10, 56))
        for image, caption, tip in zip(images, captions, tips, strict=True):
            thumb = QPixmap.fromImage(array_to_qimage(image)).scaled(
                56, 56, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            )
            pixmap = QPixmap(width - 10, 56)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.drawPixmap((width - 10 - thumb.width()) // 2, 0, thumb)
            painter.end()
            item = QListWidgetItem(QIcon(pixmap), caption)
            item.setToolTip(plain_tip(tip))
            self.addItem(item)


NO_RESULT = "Train a model: its test accuracy, confusion matrix and mistakes appear here."


class ResultsPanel(QWidget):
    """Test accuracy, the confusion matrix (per-class accuracy in its last column), the images
    of a clicked cell and the most confident mistakes, for one ``EvaluationResult``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result = None
        self._images: np.ndarray | None = None
        self._files: list[str] | None = None
        self.test_label = QLabel(NO_RESULT, objectName="testAccuracy")
        self.test_label.setTextFormat(Qt.TextFormat.RichText)  # the accuracy in bold
        self.test_label.setWordWrap(True)
        self.confusion_view = ConfusionView()
        self.confusion_view.cell_clicked.connect(self._on_confusion_view_cell_clicked)
        self.cell_label = QLabel("Click a cell of the matrix to see its images.")
        self.cell_label.setTextFormat(Qt.TextFormat.PlainText)  # class names, as written
        self.cell_label.setWordWrap(True)  # a long class name: the page keeps its width
        self.cell_gallery = ImageGallery("cellGallery")
        self.mistakes_label = QLabel("Most confident mistakes (true→predicted)")
        self.mistakes_gallery = ImageGallery("mistakesGallery")
        left = QVBoxLayout()
        left.addWidget(self.test_label)
        left.addWidget(self.confusion_view, 1)
        right = QVBoxLayout()
        for w in (self.cell_label, self.cell_gallery, self.mistakes_label, self.mistakes_gallery):
            right.addWidget(w)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right, 1)

    def clear(self, text: str = NO_RESULT) -> None:
        """No result (``text`` says why): nothing of an earlier model's test stays in sight."""
        self.result, self._images, self._files = None, None, None
        self.test_label.setText(escape(text))  # plain words: a file name is no markup
        self.confusion_view.clear()
        self.cell_gallery.clear()
        self.cell_label.setText("Click a cell of the matrix to see its images.")
        self.cell_label.setToolTip("")
        self.mistakes_label.setText("Most confident mistakes (true→predicted)")
        self.mistakes_gallery.clear()

    def show_result(
        self, result, images: np.ndarray, files: list[str] | None = None, split: str = ""
    ) -> None:
        """``result``: an ``EvaluationResult``; ``images``: uint8 (N,H,W) or (N,C,H,W), the
        evaluated images; ``files``: their file names, when they came from files; ``split``:
        where the test images come from, in words ("the t10k files")."""
        self.result, self._images, self._files = result, images, files
        where = f"{escape(split)}; " if split else ""  # a folder's name, as written
        column = "the last column"
        if len(result.classes) > 10:  # the column may have no room: the tooltips have it
            column += " (or, with no room for it, a cell's tooltip)"
        self.test_label.setText(
            f"<b>Test accuracy {result.accuracy:.2%}</b> on {result.count:,} test images "
            f"({where}loss {result.loss:.3f}). Per-class accuracy is in {column}; click "
            "a cell to see its images."
        )
        self.confusion_view.set_result(result.confusion, result.per_class, result.classes)
        self.cell_gallery.clear()
        self.cell_label.setText("Click a cell of the matrix to see its images.")
        self.cell_label.setToolTip("")
        names = result.classes
        picks = result.misclassified[:MISTAKES]
        self.mistakes_label.setText(
            f"Most confident mistakes, true→predicted ({len(result.misclassified):,} in all)"
        )
        self.mistakes_gallery.set_images(
            [display_image(images[i]) for i in picks],
            [
                f"{names[result.labels[i]]}→{names[result.predicted[i]]}\n"
                f"{result.confidence[i]:.1%}"
                for i in picks
            ],
            self._tips(picks),
        )

    def _tips(self, picks: np.ndarray) -> list[str]:
        """Tooltips: the true and predicted class, the confidence and the file name."""
        result, names = self.result, self.result.classes
        return [
            f"true {names[result.labels[i]]}, predicted {names[result.predicted[i]]} "
            f"({result.confidence[i]:.1%})"
            + (f"\n{self._files[i]}" if self._files is not None else f"\ntest image {i}")
            for i in picks
        ]

    def _on_confusion_view_cell_clicked(self, true_class: int, predicted_class: int) -> None:
        result = self.result
        picks = confusion_cell(result.labels, result.predicted, true_class, predicted_class)
        names = result.classes
        more = f" (first {CELL_IMAGES})" if len(picks) > CELL_IMAGES else ""
        metrics = QFontMetrics(self.cell_label.font())  # a name of one long word: cut short
        true, predicted = (
            metrics.elidedText(names[k], Qt.TextElideMode.ElideRight, CELL_NAME)
            for k in (true_class, predicted_class)
        )
        line = f"{len(picks):,} images{more}"
        self.cell_label.setText(f"True {true}, predicted {predicted}: {line}")
        self.cell_label.setToolTip(
            plain_tip(f"True {names[true_class]}, predicted {names[predicted_class]}: {line}")
        )
        picks = picks[:CELL_IMAGES]
        self.cell_gallery.set_images(
            [display_image(self._images[i]) for i in picks],
            [f"{result.confidence[i]:.0%}" for i in picks],
            self._tips(picks),
        )

"""The results page: test accuracy, the confusion matrix and galleries of images.

The confusion matrix (rows = true class, columns = predicted)

Cells are shaded by the fraction of their row (from :func:`engine.visualize.row_fractions`);
the diagonal is green, mistakes red. The last column shows each class's accuracy. Clicking a cell
emits ``cell_clicked(true_class, predicted_class)``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QIcon,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
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
from engine.preview import display_image
from engine.visualize import confusion_cell, row_fractions

CELL_IMAGES = 60
MISTAKES = 40

TITLE_H = 16  # the "predicted" line; the "true" strip is as wide
ACC_W = 58
MAX_LABEL = 110  # class names longer than this (pixels) are elided; the tooltip has them whole


class ConfusionView(QWidget):
    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="confusionView")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(260, 260)
        self._confusion: np.ndarray | None = None
        self._fractions = np.zeros((0, 0))
        self._per_class: list[float] = []
        self._classes: list[str] = []
        self.selected: tuple[int, int] | None = None

    def set_result(self, confusion: np.ndarray, per_class: list[float], classes: list[str]):
        self._confusion = np.asarray(confusion)
        self._fractions = row_fractions(self._confusion)
        self._per_class = list(per_class)
        self._classes = list(classes)
        self.selected = None
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    def accuracy_texts(self) -> list[str]:
        """The last column: each class's accuracy, or a dash for a class without images."""
        return ["–" if np.isnan(p) else f"{p * 100:.1f}%" for p in self._per_class]

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(9.0)
        return font

    def _geometry(self) -> tuple[float, float, float, float, bool]:
        """(left, top, cell size, label width, column names rotated): the row names get the
        width of the longest (up to MAX_LABEL); column names stand upright when they fit a cell,
        else they are written vertically."""
        k = len(self._classes) or 1
        metrics = QFontMetrics(self._label_font())
        label = min(
            MAX_LABEL, max((metrics.horizontalAdvance(c) for c in self._classes), default=8)
        )
        left = TITLE_H + label + 6
        room_w = self.width() - left - ACC_W - 8
        flat = max(8.0, min(room_w / k, (self.height() - TITLE_H - 20 - 8) / k))
        if label <= flat - 2:
            return left, TITLE_H + 20, flat, label, False
        top = TITLE_H + label + 6
        size = max(8.0, min(room_w / k, (self.height() - top - 8) / k))
        return left, top, size, label, True

    def _cell_size(self) -> float:
        return self._geometry()[2]

    def cell_rect(self, true_class: int, predicted_class: int) -> QRectF:
        left, top, s, _label, _rotated = self._geometry()
        return QRectF(left + predicted_class * s, top + true_class * s, s, s)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        if self._confusion is None:
            return None
        left, top, s, _label, _rotated = self._geometry()
        col = int((pos.x() - left) // s)
        row = int((pos.y() - top) // s)
        k = len(self._classes)
        if pos.x() >= left and pos.y() >= top and 0 <= row < k and 0 <= col < k:
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
        self.setToolTip(
            f"true {self._classes[t]}, predicted {self._classes[p]}: {n} images "
            f"({self._fractions[t, p] * 100:.1f}% of the {self._classes[t]}s)"
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
        left, top, s, label, rotated = self._geometry()
        self._paint_labels(painter, left, top, s, label, rotated)
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, min(10.0, s / 4.0)))
        painter.setFont(font)
        for t in range(k):
            for p in range(k):
                frac = float(self._fractions[t, p])
                rect = self.cell_rect(t, p)
                base = QColor(46, 160, 67) if t == p else QColor(214, 39, 40)
                alpha = int(255 * (frac if t == p else min(1.0, frac * 4)))
                painter.fillRect(rect, QColor("#f6f6f6"))
                base.setAlpha(alpha)
                painter.fillRect(rect, base)
                n = int(self._confusion[t, p])
                if n:
                    painter.setPen(QColor("#fff") if alpha > 150 else QColor("#222"))
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(n))
            if t < len(self._per_class):
                painter.setPen(QColor("#222"))
                painter.drawText(
                    QRectF(left + k * s + 4, top + t * s, ACC_W, s),
                    Qt.AlignmentFlag.AlignCenter,
                    self.accuracy_texts()[t],
                )
        painter.setPen(QColor("#ccc"))
        for i in range(k + 1):
            painter.drawLine(QPointF(left, top + i * s), QPointF(left + k * s, top + i * s))
            painter.drawLine(QPointF(left + i * s, top), QPointF(left + i * s, top + k * s))
        if self.selected is not None:
            painter.setPen(QColor("#000"))
            painter.drawRect(self.cell_rect(*self.selected).adjusted(1, 1, -1, -1))
        painter.end()

    def _paint_labels(
        self, painter: QPainter, left: float, top: float, s: float, label: float, rotated: bool
    ) -> None:
        """ "predicted" and "true", the class names (elided to ``label`` pixels) and "acc."."""
        k = len(self._classes)
        font = self._label_font()
        painter.setFont(font)
        metrics = QFontMetrics(font)
        painter.setPen(QColor("#555"))
        center = Qt.AlignmentFlag.AlignCenter
        painter.drawText(QRectF(left, 0, k * s, TITLE_H), center, "predicted")
        names = [
            metrics.elidedText(c, Qt.TextElideMode.ElideRight, int(label)) for c in self._classes
        ]
        right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        up = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for i, name in enumerate(names):
            painter.drawText(QRectF(TITLE_H, top + i * s, label + 2, s), right, name)
            if not rotated:
                painter.drawText(QRectF(left + i * s, TITLE_H, s, top - TITLE_H), center, name)
                continue
            painter.save()  # written bottom to top, ending just above its column
            painter.translate(left + i * s + s / 2, top - 3)
            painter.rotate(-90)
            painter.drawText(QRectF(0, -s / 2, label + 2, s), up, name)
            painter.restore()
        painter.save()
        painter.translate(TITLE_H / 2 + 1, top + k * s / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-40, -8, 80, 14), center, "true")
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
            item.setToolTip(tip)
            self.addItem(item)


class ResultsPanel(QWidget):
    """Test accuracy, the confusion matrix (per-class accuracy in its last column), the images
    of a clicked cell and the most confident mistakes, for one ``EvaluationResult``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result = None
        self._images: np.ndarray | None = None
        self._files: list[str] | None = None
        self.test_label = QLabel(
            "Train a model: its test accuracy, confusion matrix and mistakes appear here.",
            objectName="testAccuracy",
        )
        self.test_label.setWordWrap(True)
        self.confusion_view = ConfusionView()
        self.confusion_view.cell_clicked.connect(self._on_confusion_view_cell_clicked)
        self.cell_label = QLabel("Click a cell of the matrix to see its images.")
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

    def show_result(
        self, result, images: np.ndarray, files: list[str] | None = None, split: str = ""
    ) -> None:
        """``result``: an ``EvaluationResult``; ``images``: uint8 (N,H,W) or (N,C,H,W), the
        evaluated images; ``files``: their file names, when they came from files; ``split``:
        where the test images come from, in words ("the t10k files")."""
        self.result, self._images, self._files = result, images, files
        where = f"{split}; " if split else ""
        self.test_label.setText(
            f"<b>Test accuracy {result.accuracy:.2%}</b> on {result.count:,} test images "
            f"({where}loss {result.loss:.3f}). Per-class accuracy is in the last column; click "
            "a cell to see its images."
        )
        self.confusion_view.set_result(result.confusion, result.per_class, result.classes)
        self.cell_gallery.clear()
        self.cell_label.setText("Click a cell of the matrix to see its images.")
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
        self.cell_label.setText(
            f"True {names[true_class]}, predicted {names[predicted_class]}: "
            f"{len(picks):,} images{more}"
        )
        picks = picks[:CELL_IMAGES]
        self.cell_gallery.set_images(
            [display_image(self._images[i]) for i in picks],
            [f"{result.confidence[i]:.0%}" for i in picks],
            self._tips(picks),
        )

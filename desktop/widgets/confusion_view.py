"""The results page: test accuracy, the confusion matrix and galleries of images.

The confusion matrix (rows = true class, columns = predicted)

Cells are shaded by the fraction of their row (from :func:`engine.visualize.row_fractions`);
the diagonal is green, mistakes red. The last column shows each class's accuracy. Clicking a cell
emits ``cell_clicked(true_class, predicted_class)``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QMouseEvent, QPainter, QPaintEvent, QPixmap
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

HEADER = 34
ACC_W = 58


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

    def _cell_size(self) -> float:
        k = len(self._classes) or 1
        return max(
            8.0, min((self.width() - HEADER - ACC_W - 8) / k, (self.height() - HEADER - 8) / k)
        )

    def cell_rect(self, true_class: int, predicted_class: int) -> QRectF:
        s = self._cell_size()
        return QRectF(HEADER + predicted_class * s, HEADER + true_class * s, s, s)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        if self._confusion is None:
            return None
        s = self._cell_size()
        col = int((pos.x() - HEADER) // s)
        row = int((pos.y() - HEADER) // s)
        k = len(self._classes)
        if pos.x() >= HEADER and pos.y() >= HEADER and 0 <= row < k and 0 <= col < k:
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
        s = self._cell_size()
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, min(10.0, s / 4.0)))
        painter.setFont(font)
        painter.setPen(QColor("#555"))
        painter.drawText(QRectF(HEADER, 0, k * s, 16), Qt.AlignmentFlag.AlignCenter, "predicted")
        for i, name in enumerate(self._classes):
            painter.drawText(
                QRectF(HEADER + i * s, 16, s, HEADER - 16), Qt.AlignmentFlag.AlignCenter, name
            )
            painter.drawText(
                QRectF(14, HEADER + i * s, HEADER - 16, s), Qt.AlignmentFlag.AlignCenter, name
            )
        painter.save()
        painter.translate(10, HEADER + k * s / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-40, -8, 80, 14), Qt.AlignmentFlag.AlignCenter, "true")
        painter.restore()
        painter.drawText(
            QRectF(HEADER + k * s + 4, 16, ACC_W, HEADER - 16), Qt.AlignmentFlag.AlignCenter, "acc."
        )
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
                    QRectF(HEADER + k * s + 4, HEADER + t * s, ACC_W, s),
                    Qt.AlignmentFlag.AlignCenter,
                    f"{self._per_class[t] * 100:.1f}%",
                )
        painter.setPen(QColor("#ccc"))
        for i in range(k + 1):
            painter.drawLine(
                QPointF(HEADER, HEADER + i * s), QPointF(HEADER + k * s, HEADER + i * s)
            )
            painter.drawLine(
                QPointF(HEADER + i * s, HEADER), QPointF(HEADER + i * s, HEADER + k * s)
            )
        if self.selected is not None:
            painter.setPen(QColor("#000"))
            painter.drawRect(self.cell_rect(*self.selected).adjusted(1, 1, -1, -1))
        painter.end()


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
        for image, caption, tip in zip(images, captions, tips, strict=True):
            pixmap = QPixmap.fromImage(array_to_qimage(image)).scaled(
                56, 56, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            )
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

    def show_result(self, result, images: np.ndarray, files: list[str] | None = None) -> None:
        """``result``: an ``EvaluationResult``; ``images``: uint8 (N,H,W) or (N,C,H,W), the
        evaluated images; ``files``: their file names, when they came from files."""
        self.result, self._images, self._files = result, images, files
        self.test_label.setText(
            f"<b>Test accuracy {result.accuracy:.2%}</b> on {result.count:,} test images "
            f"(loss {result.loss:.3f}). Per-class accuracy is in the last column; click a cell "
            f"to see its images."
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

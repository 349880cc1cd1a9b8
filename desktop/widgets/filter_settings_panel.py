"""The Filters tab's settings: the convolution (border, stride, colour) and what follows it in
a CNN (ReLU, pooling), with the output-size formula and the stage shapes the tab fills in.

Signal: ``settings_changed()``. :meth:`values` returns the plain settings for
:class:`engine.filters.FilterSettings`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets.tone import set_tone, text_colour
from engine import filters as F
from engine.errors import EngineError

BORDER_LABELS = {
    "zero": "Zero padding",
    "extend": "Extend (repeat edge)",
    "reflect": "Reflect",
    "symmetric": "Symmetric (mirror)",
    "wrap": "Wrap around",
    "valid": "Valid (no padding)",
}
POOL_LABELS = {
    "none": "No pooling",
    "max": "Max pooling",
    "avg": "Average pooling",
    "sum": "Sum pooling",
}


def _group(title: str) -> tuple[QGroupBox, QVBoxLayout]:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(10, 8, 10, 10)
    layout.setSpacing(6)
    return box, layout


class FilterSettingsPanel(QWidget):
    settings_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterSettings")
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(10)
        col.addWidget(self._build_conv_group())
        col.addWidget(self._build_stages_group())

    def _build_conv_group(self) -> QGroupBox:
        box, v = _group("Convolution")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.border_box = QComboBox(objectName="borderBox")
        for key, label in BORDER_LABELS.items():
            self.border_box.addItem(label, key)
        self.border_box.setToolTip("What lies beyond the image's edge (np.pad modes)")
        self.border_box.currentIndexChanged.connect(self._on_changed)
        self.stride_box = QSpinBox(objectName="strideBox")
        self.stride_box.setRange(1, F.MAX_STRIDE)
        self.stride_box.setToolTip("How many pixels the kernel moves per step")
        self.stride_box.valueChanged.connect(self._on_changed)
        colour = QHBoxLayout()
        self.gray_radio = QRadioButton("Grayscale", objectName="grayRadio")
        self.rgb_radio = QRadioButton("RGB channels", objectName="rgbRadio")
        self.gray_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.gray_radio)
        group.addButton(self.rgb_radio)
        self.rgb_radio.toggled.connect(self._on_changed)
        colour.addWidget(self.gray_radio)
        colour.addWidget(self.rgb_radio)
        colour.addStretch(1)
        form.addRow("Border", self.border_box)
        form.addRow("Stride", self.stride_box)
        form.addRow("Colour", colour)
        v.addLayout(form)
        self.formula = QLabel(objectName="sizeFormula")
        self.formula.setTextFormat(Qt.TextFormat.RichText)
        self.formula.setWordWrap(True)
        set_tone(self.formula, "QLabel { color: #3c4043; }")
        v.addWidget(self.formula)
        return box

    def _build_stages_group(self) -> QGroupBox:
        box, v = _group("Then, as in a CNN")
        self.relu_check = QCheckBox("ReLU: negative values become 0", objectName="reluCheck")
        self.relu_check.toggled.connect(self._on_changed)
        v.addWidget(self.relu_check)
        row = QHBoxLayout()
        self.pool_box = QComboBox(objectName="poolBox")
        for key, label in POOL_LABELS.items():
            self.pool_box.addItem(label, key)
        self.pool_box.currentIndexChanged.connect(self._on_changed)
        self.pool_size = QSpinBox(objectName="poolSize", prefix="size ")
        self.pool_size.setRange(1, F.MAX_POOL)
        self.pool_size.setValue(2)
        self.pool_size.valueChanged.connect(self._on_changed)
        self.pool_stride = QSpinBox(objectName="poolStride", prefix="stride ")
        self.pool_stride.setRange(1, F.MAX_POOL)
        self.pool_stride.setValue(2)
        self.pool_stride.valueChanged.connect(self._on_changed)
        row.addWidget(self.pool_box, 1)
        row.addWidget(self.pool_size)
        row.addWidget(self.pool_stride)
        v.addLayout(row)
        self.stages_label = QLabel(objectName="stageShapes")
        self.stages_label.setWordWrap(True)
        self.stages_label.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.stages_label)
        return box

    def _on_changed(self, *_args) -> None:
        self.settings_changed.emit()

    def values(self) -> dict:
        """The keyword arguments of :class:`engine.filters.FilterSettings` (all but kernels)."""
        return {
            "border": self.border_box.currentData(),
            "stride": self.stride_box.value(),
            "color": "rgb" if self.rgb_radio.isChecked() else "gray",
            "relu": self.relu_check.isChecked(),
            "pool": self.pool_box.currentData(),
            "pool_size": self.pool_size.value(),
            "pool_stride": self.pool_stride.value(),
        }

    def set_values(self, values: dict) -> None:
        """Show ``values`` (keys as :meth:`values` gives them; missing keys stay)."""
        boxes = {"border": self.border_box, "pool": self.pool_box}
        for key, box in boxes.items():
            if key in values:
                box.setCurrentIndex(max(0, box.findData(values[key])))
        spins = {"stride": self.stride_box, "pool_size": self.pool_size}
        spins["pool_stride"] = self.pool_stride
        for key, spin in spins.items():
            if key in values:
                spin.setValue(int(values[key]))
        if "color" in values:
            (self.rgb_radio if values["color"] == "rgb" else self.gray_radio).setChecked(True)
        if "relu" in values:
            self.relu_check.setChecked(bool(values["relu"]))

    def use_gray(self) -> None:
        """Switch to grayscale (a learned filter is shown on the gray image)."""
        self.gray_radio.setChecked(True)

    def show_formula(self, image_size: tuple[int, int] | None, kernel: int) -> None:
        """Fill in ``W' = (W - F + 2P)/S + 1`` for an image of ``(height, width)``."""
        if image_size is None:
            self.formula.setText("")
            return
        border, stride = self.border_box.currentData(), self.stride_box.value()
        p = F.padding_for(border, kernel)
        h, w = image_size
        try:
            fw = F.size_formula(w, kernel, stride, p)
            fh = F.size_formula(h, kernel, stride, p)
        except EngineError as exc:
            red = text_colour(self.formula, "#c5221f")
            self.formula.setText(f"<span style='color:{red}'>{exc}</span>")
            return
        self.formula.setText(f"Output size = (W − F + 2P)/S + 1<br>width&nbsp; {fw}<br>height {fh}")

    def show_stages(self, stages: list[tuple[str, tuple[int, ...]]]) -> None:
        """Each stage's shape, H×W×C; with several kernels "7 maps of H×W×C"."""

        def shape_text(shape: tuple[int, ...]) -> str:
            one = "<b>" + "×".join(map(str, shape[-3:])) + "</b>"
            return f"<b>{shape[0]}</b> maps of {one}" if len(shape) == 4 else one

        shapes = " → ".join(f"{name} {shape_text(shape)}" for name, shape in stages)
        grey = text_colour(self.stages_label, "#5f6368")
        self.stages_label.setText(shapes + f" <span style='color:{grey}'>(H×W×C)</span>")

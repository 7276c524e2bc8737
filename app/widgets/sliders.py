"""A slider paired with a numeric entry, on a linear or logarithmic scale.

Signal: ``value_changed(float)`` when the user moves the slider or edits the number.
"""
from __future__ import annotations

import math

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QWidget

STEPS = 1000


class ValueSlider(QWidget):
    value_changed = pyqtSignal(float)

    def __init__(self, label: str, low: float, high: float, value: float, *, log: bool = False,
                 integer: bool = False, zero: bool = False, decimals: int = 4,
                 tooltip: str = "", parent=None):
        super().__init__(parent)
        self.low, self.high, self.log, self.integer, self.zero = low, high, log, integer, zero
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(label)
        self.label.setMinimumWidth(92)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(0 if integer else decimals)
        self.spin.setRange(0.0 if zero else low, high)
        self.spin.setKeyboardTracking(False)
        self.spin.setMinimumWidth(90)
        if log:
            self.spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        for widget in (self.label, self.slider, self.spin):
            widget.setToolTip(tooltip)
        layout.addWidget(self.label)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)
        self.set_value(value)

    def _to_position(self, value: float) -> int:
        if self.zero and value <= 0:
            return 0
        value = min(max(value, self.low), self.high)
        if self.log:
            frac = math.log(value / self.low) / math.log(self.high / self.low)
        else:
            frac = (value - self.low) / (self.high - self.low)
        start = 1 if self.zero else 0
        return start + round(frac * (STEPS - start))

    def _to_value(self, position: int) -> float:
        if self.zero and position == 0:
            return 0.0
        start = 1 if self.zero else 0
        frac = (position - start) / (STEPS - start)
        if self.log:
            value = self.low * (self.high / self.low) ** frac
        else:
            value = self.low + frac * (self.high - self.low)
        if self.integer:
            return float(round(value))
        digits = max(0, 3 - int(math.floor(math.log10(abs(value))))) if value else 0
        return round(value, digits)

    def value(self) -> float:
        return self.spin.value()

    def set_value(self, value: float) -> None:
        """Set without emitting ``value_changed``."""
        for w in (self.slider, self.spin):
            w.blockSignals(True)
        self.spin.setValue(value)
        self.slider.setValue(self._to_position(value))
        for w in (self.slider, self.spin):
            w.blockSignals(False)

    def _from_slider(self, position: int) -> None:
        value = self._to_value(position)
        self.spin.blockSignals(True)
        self.spin.setValue(value)
        self.spin.blockSignals(False)
        self.value_changed.emit(self.spin.value())

    def _from_spin(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_position(value))
        self.slider.blockSignals(False)
        self.value_changed.emit(value)

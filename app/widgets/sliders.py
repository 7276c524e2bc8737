"""A slider paired with a numeric entry, on a linear or logarithmic scale.

The label and the number share the first row and the slider has the panel's full width below
them: a log slider squeezed between the two was ≈ 30 px wide, and an 11-px drag moved T from
0.2 to 10.  The slider has :data:`STEPS` positions; dragging with Shift held moves it
:data:`FINE` times slower, and Shift with the arrow keys or the wheel moves it by one position
(a log slider over five decades: 0.05 % of the value).

Signal: ``value_changed(float)`` when the user moves the slider or edits the number.
"""
from __future__ import annotations

import math

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

STEPS = 10_000
FINE = 10  # a Shift-drag moves the slider this many times slower than the mouse
MIN_SLIDER_WIDTH = 200  # px; a log slider over five decades: ≥ 40 px per decade
COARSE_KEY_STEP = STEPS // 200  # arrow keys without Shift: 0.5 % of the slider


class FineSlider(QSlider):
    """A horizontal slider with a fine mode: Shift held while pressing or dragging moves the
    value ``FINE`` times slower than the mouse; Shift + arrow keys / wheel step by one."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._anchor: tuple[float, int] | None = None  # (mouse x, value) where fine mode began
        self.setSingleStep(COARSE_KEY_STEP)
        self.setPageStep(STEPS // 20)

    @staticmethod
    def _shift(event) -> bool:
        return bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)

    def _pixels_per_position(self) -> float:
        span = max(self.maximum() - self.minimum(), 1)
        return max(self.width() - 20, 1) / span  # the groove, less about a handle's width

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton and self._shift(event):
            self._anchor = (event.position().x(), self.value())
            self.setSliderDown(True)
            event.accept()
            return
        self._anchor = None
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._anchor is None and self.isSliderDown() and self._shift(event):
            self._anchor = (event.position().x(), self.value())  # Shift pressed mid-drag
        if self._anchor is not None:
            x0, v0 = self._anchor
            moved = (event.position().x() - x0) / self._pixels_per_position() / FINE
            self.setValue(int(round(v0 + moved)))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._anchor is not None:
            self._anchor = None
            self.setSliderDown(False)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        keys = {Qt.Key.Key_Left: -1, Qt.Key.Key_Down: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Up: 1}
        if self._shift(event) and event.key() in keys:
            self.setValue(self.value() + keys[event.key()])
            event.accept()
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._shift(event):
            delta = event.angleDelta()
            notches = (delta.y() or delta.x()) / 120
            self.setValue(self.value() + int(math.copysign(max(1, abs(round(notches))),
                                                           notches or 1)))
            event.accept()
            return
        super().wheelEvent(event)


class ValueSlider(QWidget):
    value_changed = pyqtSignal(float)

    def __init__(self, label: str, low: float, high: float, value: float, *, log: bool = False,
                 integer: bool = False, zero: bool = False, decimals: int = 4,
                 tooltip: str = "", parent=None):
        super().__init__(parent)
        self.low, self.high, self.log, self.integer, self.zero = low, high, log, integer, zero
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(label)
        self.slider = FineSlider()
        self.slider.setRange(0, STEPS)
        self.slider.setMinimumWidth(MIN_SLIDER_WIDTH)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(0 if integer else decimals)
        self.spin.setRange(0.0 if zero else low, high)
        self.spin.setKeyboardTracking(False)
        self.spin.setMinimumWidth(96)
        if log:
            self.spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        hint = "drag with Shift held for fine steps"
        tooltip = f"{tooltip}\n({hint})" if tooltip else hint
        for widget in (self.label, self.slider, self.spin):
            widget.setToolTip(tooltip)
        top.addWidget(self.label, 1)
        top.addWidget(self.spin)
        layout.addLayout(top)
        layout.addWidget(self.slider)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)
        self.set_value(value)

    def decades_per_pixel(self) -> float:
        """How far one pixel of a (coarse) drag moves the value: decades on a log slider, the
        fraction of the range on a linear one."""
        span = math.log10(self.high / self.low) if self.log else 1.0
        return span / max(self.slider.width() - 20, 1)

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

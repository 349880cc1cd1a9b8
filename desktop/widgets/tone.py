"""Colours of hints, captions and notes that read on the user's window colours, light or dark.

The app's own colours were chosen on a light window: grey ``#5f6368`` for a hint, dark grey
``#3c4043`` for a caption, red ``#b00020`` for a problem, a pale blue ``#e8f0fe`` behind a note.
On a dark desktop (a dark palette, or the platform's dark colour scheme) those read as grey on
dark grey, and a note's light text vanished on its pale background. :func:`set_tone` sets such a
stylesheet as written while the window is light, so the light look is unchanged; on a dark
window each ``background`` becomes a dark shade of its hue and each ``color`` is moved towards
the palette's text colour until it reads (:data:`MIN_CONTRAST`). It follows later changes of
the application's palette. :func:`readable` does the same for one colour (rich-text spans,
table items).
"""

from __future__ import annotations

import re

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

MIN_CONTRAST = 4.5  # WCAG AA for body text
_SURFACE_SHARE = 0.18  # how much of a light background's hue is kept over a dark window
_COLOUR = re.compile(r"(?<![-\w])(color|background)\s*:\s*(#[0-9a-fA-F]{3,6})\b")


def luminance(colour: QColor) -> float:
    """The relative luminance of ``colour`` (0 black to 1 white), as WCAG defines it."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * linear(colour.redF())
        + 0.7152 * linear(colour.greenF())
        + 0.0722 * linear(colour.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    """The contrast ratio of two colours, 1 (the same) to 21 (black on white)."""
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def is_dark(palette: QPalette) -> bool:
    """True when the palette's window is dark (a dark theme or colour scheme)."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


def readable(colour: str | QColor, palette: QPalette, background: QColor | None = None) -> QColor:
    """``colour`` as designed for a light window; on a dark ``palette`` the nearest mix of it
    with the palette's text colour that reads on ``background`` (the window by default)."""
    wanted = QColor(colour)
    if not is_dark(palette):
        return wanted
    behind = background if background is not None else palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    for step in range(11):
        mixed = _mix(wanted, text, step / 10)
        if contrast(mixed, behind) >= MIN_CONTRAST:
            return mixed
    return text


def surface(colour: str | QColor, palette: QPalette) -> QColor:
    """A light background colour as designed; on a dark ``palette`` a dark shade of its hue."""
    wanted = QColor(colour)
    if not is_dark(palette):
        return wanted
    return _mix(palette.color(QPalette.ColorRole.Window), wanted, _SURFACE_SHARE)


def toned(sheet: str, palette: QPalette, on: str | None = None) -> str:
    """``sheet`` with its ``background`` and ``color`` values made to read on ``palette``;
    ``on`` is the background the widget lies on when the sheet gives none (a parent's)."""
    if not is_dark(palette):
        return sheet
    backgrounds = [m.group(2) for m in _COLOUR.finditer(sheet) if m.group(1) == "background"]
    under = backgrounds[0] if backgrounds else on
    behind = surface(under, palette) if under else None

    def replace(match: re.Match[str]) -> str:
        prop, value = match.group(1), match.group(2)
        new = surface(value, palette) if prop == "background" else readable(value, palette, behind)
        return f"{prop}: {new.name()}"

    return _COLOUR.sub(replace, sheet)


class _Tone(QObject):
    """Sets its widget's stylesheet anew whenever the application's palette changes (a widget
    with a stylesheet keeps the palette it was polished with: no PaletteChange reaches it)."""

    def __init__(self, widget: QWidget, sheet: str, on: str | None) -> None:
        super().__init__(widget)
        self.sheet, self.on = sheet, on
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.paletteChanged.connect(self._on_app_palette_changed)
        self.apply(widget)

    def apply(self, widget: QWidget) -> None:
        sheet = toned(self.sheet, QApplication.palette(widget), self.on)
        if sheet != widget.styleSheet():
            widget.setStyleSheet(sheet)

    def _on_app_palette_changed(self, _palette: QPalette) -> None:
        widget = self.parent()
        if isinstance(widget, QWidget):
            widget.setStyleSheet("")  # polished again from the new palette, then toned
            self.apply(widget)


def set_tone(widget: QWidget, sheet: str, on: str | None = None) -> None:
    """Give ``widget`` the stylesheet ``sheet`` (colours chosen on a light window), with its
    colours made to read on the user's palette now and after any change of it; ``on``: the
    light background it lies on, when not the window's."""
    tone = widget.findChild(_Tone, options=Qt.FindChildOption.FindDirectChildrenOnly)
    if tone is None:
        _Tone(widget, sheet, on)
        return
    tone.sheet, tone.on = sheet, on
    tone.apply(widget)


def text_colour(widget: QWidget, colour: str) -> str:
    """``colour`` (chosen on a light window) as it reads on ``widget``'s palette, as ``#rrggbb``
    for a rich-text span."""
    return readable(colour, QApplication.palette(widget)).name()

"""A small progress display on stderr for the headless subcommands.

On a terminal it redraws one line in place (``\\r``) at most ``tty_interval`` seconds apart; when
stderr is a file or a pipe it writes plain lines, at most one per ``line_interval`` seconds, so a
log stays readable (a job shorter than that prints no progress lines at all).
``update(..., force=True)`` always shows (the first batch, say).

    bar = Progress()
    bar.update(0.25, "epoch 1/3  loss 0.4123")
    bar.message("epoch 1: val accuracy 97.1%")   # a permanent line
    bar.close()
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75.4`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``; inf/NaN -> ``"?"``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def bar_text(fraction: float, width: int = 24) -> str:
    """``0.5`` -> ``"[############------------]"``."""
    fraction = min(max(fraction, 0.0), 1.0)
    full = round(fraction * width)
    return "[" + "#" * full + "-" * (width - full) + "]"


class Progress:
    """A throttled one-line progress display; see the module docstring."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        tty_interval: float = 0.1,
        line_interval: float = 5.0,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and self.stream is not None  # None: stderr closed (2>&-)
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.interval = tty_interval if self.tty else line_interval
        self._last = time.monotonic()  # the first line only after one interval (or forced)
        self._drawn = 0  # characters of the in-place line on screen

    def update(self, fraction: float | None, text: str, *, force: bool = False) -> bool:
        """Show ``text`` (with a bar when ``fraction`` is given) if due; True if shown."""
        if not self.enabled:
            return False
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return False
        self._last = now
        line = text if fraction is None else f"{bar_text(fraction)} {fraction:4.0%} {text}"
        if self.tty:
            width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
            line = line[:width]
            self._write("\r" + line + " " * max(0, self._drawn - len(line)))
            self._drawn = len(line)
        else:
            self._write(line + "\n")
        return True

    def message(self, text: str) -> None:
        """A permanent line (the in-place line, if any, is finished first)."""
        if not self.enabled:
            return
        self._end_line()
        self._write(text + "\n")

    def close(self) -> None:
        """Finish the in-place line so what follows starts on a fresh line."""
        if self.enabled:
            self._end_line()

    def _end_line(self) -> None:
        if self._drawn:
            self._write("\n")
            self._drawn = 0

    def _write(self, text: str) -> None:
        """Write and flush ``text`` as :func:`desktop.cli.common.safe_print` does (a terminal
        that lacks a symbol, a stderr that is full)."""
        from desktop.cli.common import safe_print

        safe_print(text, file=self.stream, end="")

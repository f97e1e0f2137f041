"""A one-line progress bar on stderr, shown only when stderr is a terminal.

The line is cut to the terminal's width: a line longer than the terminal wraps, and
``\\r`` then returns only to the start of the wrapped part, so every refresh printed a
new line on a 50-column terminal (issue 12).
"""
import os
import shutil
import sys
import time

BAR_WIDTH = 24
REFRESH_SECONDS = 0.2


class Progress:
    def __init__(self, enabled=None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.last = 0.0
        self.drawn = 0

    def _columns(self):
        try:   # the terminal the line goes to (shutil.get_terminal_size asks stdout's)
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = shutil.get_terminal_size((80, 24)).columns
        return max(columns, 10)

    def line(self, epoch, epochs, i, n, text, columns):
        """The text of one refresh, at most ``columns - 1`` characters (the last column would wrap)."""
        bar = BAR_WIDTH if columns >= 60 else max(columns - 40, 0)
        done = int(bar * i / max(n, 1))
        parts = f"epoch {epoch}/{epochs}" + (f" [{'#' * done}{'.' * (bar - done)}]" if bar else "") + f" {i}/{n} {text}"
        return parts[: columns - 1]

    def update(self, epoch, epochs, i, n, text):
        if not self.enabled:
            return
        now = time.time()
        if now - self.last < REFRESH_SECONDS and i != n:
            return
        self.last = now
        line = self.line(epoch, epochs, i, n, text, self._columns())
        self.stream.write("\r" + line + " " * max(self.drawn - len(line), 0))
        self.stream.flush()
        self.drawn = len(line)

    def close(self):
        """Clear the line (also on an interrupt, so no half-drawn bar is left)."""
        if self.enabled and self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0

"""Progress for long commands (warm, export): a redrawn line on a terminal, a line per step elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TextIO

BAR_WIDTH = 24


class Progress(Protocol):
    def phase(self, text: str) -> None: ...
    def start(self, total: int) -> None: ...
    def add_bytes(self, count: int) -> None: ...
    def file_done(self) -> None: ...
    def finish(self) -> None: ...


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB' (binary units, one decimal; whole bytes below 1 KiB)."""
    if count < 1024:
        return f"{int(count)} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024 or unit == "GiB":
            break
    return f"{count:.1f} {unit}"


class ProgressBar:
    """Redraws one stderr line (at most every `interval` seconds): the phase, then files done/total and bytes."""

    def __init__(self, stream: TextIO, *, label: str = "warming", clock: Callable[[], float] = time.monotonic,
                 interval: float = 0.1) -> None:
        self._stream = stream
        self._label = label
        self._clock = clock
        self._interval = interval
        self._last_draw = float("-inf")
        self._width = 0
        self._text = ""
        self.total = 0
        self.done = 0
        self.bytes = 0

    def phase(self, text: str) -> None:
        self._text = text
        self._draw(force=True)

    def start(self, total: int) -> None:
        self._text, self.total, self.done = "", total, 0
        self._draw(force=True)

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        self._draw()

    def file_done(self) -> None:
        self.done += 1
        self._draw(force=self.done == self.total)

    def finish(self) -> None:
        """Erase the line, so the summary starts on a clean one."""
        self._stream.write("\r" + " " * self._width + "\r")
        self._stream.flush()

    def line(self) -> str:
        if self._text:
            return f"{self._text}  {format_bytes(self.bytes)}" if self.bytes else self._text
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{self._label} [{bar}] {self.done}/{self.total} files  {format_bytes(self.bytes)}"

    def _draw(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        text = self.line()
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


class ProgressLines:
    """Progress where stderr is not a terminal (CI logs, pipes, journald): a line per step, never a redraw.

    Each phase is a line; a batch of files prints its size at the start, then a line at every tenth of it.
    """

    def __init__(self, stream: TextIO, *, label: str = "warming") -> None:
        self._stream = stream
        self._label = label
        self.total = self.done = self.bytes = 0
        self._tenths = 0

    def phase(self, text: str) -> None:
        self._print(f"{self._label}: {text}")

    def start(self, total: int) -> None:
        self.total, self.done, self.bytes, self._tenths = total, 0, 0, 0
        self._print(f"{self._label}: {total} files")

    def add_bytes(self, count: int) -> None:
        self.bytes += count

    def file_done(self) -> None:
        self.done += 1
        tenths = 10 * self.done // self.total if self.total else 10
        if tenths > self._tenths:
            self._tenths = tenths
            self._print(f"{self._label}: {self.done}/{self.total} files, {format_bytes(self.bytes)}")

    def finish(self) -> None:
        pass

    def _print(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


class Silent:
    """The progress sink for callers that show none (library use, tests)."""

    def phase(self, text: str) -> None:
        pass

    def start(self, total: int) -> None:
        pass

    def add_bytes(self, count: int) -> None:
        pass

    def file_done(self) -> None:
        pass

    def finish(self) -> None:
        pass


def progress_for(stream: TextIO, label: str) -> Progress:
    """A ProgressBar on a terminal, ProgressLines otherwise (a redrawn line would be noise in a log)."""
    return ProgressBar(stream, label=label) if stream.isatty() else ProgressLines(stream, label=label)

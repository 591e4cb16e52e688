"""The most recent warnings and errors of this process, for the operations page (a bounded in-memory log)."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

RECENT_ERRORS = 50


@dataclass(frozen=True, slots=True)
class LogEntry:
    when: float
    level: str
    logger: str
    message: str


class RecentErrors(logging.Handler):
    """Keeps the last `size` WARNING-or-worse records of the `proxy` loggers. Attach with attach(), detach on
    shutdown: the logger tree is global, the app's lifetime is not."""

    def __init__(self, size: int = RECENT_ERRORS) -> None:
        super().__init__(level=logging.WARNING)
        self._entries: deque[LogEntry] = deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging itself
            message = str(record.msg)
        self._entries.append(LogEntry(record.created, record.levelname, record.name, message[:2000]))

    def entries(self) -> list[LogEntry]:
        """Newest first."""
        return list(reversed(self._entries))

    def attach(self, logger: str = "proxy") -> None:
        logging.getLogger(logger).addHandler(self)

    def detach(self, logger: str = "proxy") -> None:
        logging.getLogger(logger).removeHandler(self)


def age(when: float, now: float | None = None) -> str:
    """A short "how long ago" for a unix time."""
    seconds = max(0.0, (time.time() if now is None else now) - when)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"

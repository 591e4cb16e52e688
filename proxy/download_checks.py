"""The checks a download from upstream must pass, before and while its bytes arrive: the index's sha256 is well
formed, the expected length (the index's size against upstream's Content-Length, the size cap), and every chunk
against the length, the size cap, the deadline and the minimum speed (Guard, under Limits).

Separate from the download itself (proxy/download.py: streaming into a spool, following another worker's fill):
these are pure decisions over numbers and the index's record, with no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from proxy.config import UpstreamConfig
from proxy.errors import IntegrityError, UpstreamTimeout, UpstreamUnavailable
from proxy.simple.model import DistFile

# Seconds over which the average speed of a download is measured against min_download_speed.
SPEED_WINDOW = 30.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Limits:
    """What any one download may cost (from [upstream]); 0 turns the deadline or the speed check off."""

    max_size: int
    deadline: float
    min_speed: int

    @classmethod
    def from_config(cls, config: UpstreamConfig) -> Limits:
        return cls(config.max_file_size, config.download_timeout, config.min_download_speed)


def is_sha256(value: str) -> bool:
    """Whether `value` is a well-formed (lower-case hex) sha256 digest."""
    return _SHA256.fullmatch(value) is not None


def check_sha256(dist: DistFile) -> None:
    """Raises IntegrityError for a declared sha256 that is not one: it could never be verified (nor name a blob)."""
    if dist.sha256 is not None and not is_sha256(dist.sha256):
        raise IntegrityError(f"the index declares a malformed sha256 for {dist.filename}: {dist.sha256[:80]!r}")


def expected_length(dist: DistFile, content_length: int | None, max_size: int) -> int | None:
    """The length the download must have (the index's size, else upstream's Content-Length), checked up front.

    Raises IntegrityError when the two disagree, UpstreamUnavailable when it exceeds max_size.
    """
    if dist.size is not None and content_length is not None and content_length != dist.size:
        raise IntegrityError(
            f"upstream sends {content_length} bytes for {dist.filename}, but its index declared {dist.size}"
        )
    length = dist.size if dist.size is not None else content_length
    if length is not None and length > max_size:
        raise UpstreamUnavailable(
            f"{dist.filename} is {length} bytes, more than [upstream] max_file_size ({max_size} bytes)"
        )
    return length


class Guard:
    """Checks every chunk as it arrives, before it reaches the spool.

    The deadline and the speed are checked when bytes arrive; silence in between is bounded by read_timeout.
    """

    def __init__(
        self, filename: str, expected: int | None, limits: Limits, clock: Callable[[], float], received: int = 0
    ) -> None:
        """`received`: bytes of the file before the first one this download takes (a resumed download's)."""
        self._filename = filename
        self._expected = expected
        self._limits = limits
        self._clock = clock
        self._started = self._window_start = clock()
        self._received, self._window_bytes = received, 0

    def take(self, size: int) -> None:
        """Account for `size` more bytes. Raises IntegrityError past the expected length, UpstreamUnavailable
        past max_size, UpstreamTimeout past the deadline or below the minimum speed."""
        self._received += size
        self._check_length()
        now = self._clock()
        deadline = self._limits.deadline
        if deadline and now - self._started > deadline:
            raise UpstreamTimeout(
                f"downloading {self._filename} took longer than [upstream] download_timeout ({deadline:g}s)"
            )
        self._window_bytes += size
        elapsed = now - self._window_start
        if self._limits.min_speed and elapsed >= SPEED_WINDOW:
            if self._window_bytes < self._limits.min_speed * elapsed:
                raise UpstreamTimeout(
                    f"upstream sent {self._filename} at {self._window_bytes / elapsed:.0f} bytes/s, below "
                    f"[upstream] min_download_speed ({self._limits.min_speed} bytes/s)"
                )
            self._window_start, self._window_bytes = now, 0

    def _check_length(self) -> None:
        if self._expected is not None and self._received > self._expected:
            # Without a Content-Length only the index's size frames the body: anything past it is an attack on
            # the clients' connections (bytes past their Content-Length are read as the next response).
            raise IntegrityError(
                f"upstream sent more than the {self._expected} bytes declared for {self._filename}"
            )
        if self._received > self._limits.max_size:
            raise UpstreamUnavailable(
                f"{self._filename} from upstream is larger than [upstream] max_file_size "
                f"({self._limits.max_size} bytes)"
            )

"""The SQLite backend's change feed: one 8-byte slot per topic in a small file beside the database, mapped into
every process's memory (MAP_SHARED), so reading a stamp is a memory load: no query, no thread hop, no syscall.

A writer commits first and then stores a fresh random value in the topic's slot; a reader that sees a different
value than last time drops what it cached for that topic. Random values (not a counter) need no lock: two writers
racing can only leave a value that differs from what any reader saw before either write. A bump is visible to
every process at once (the freshness contract of proxy/backends/changes.py, "immediate").
"""

from __future__ import annotations

import mmap
import os
import secrets
from pathlib import Path

from proxy.backends.changes import Topic

__all__ = ["MmapChangeFeed"]

_SLOT = 8


class MmapChangeFeed:
    """Per-topic stamps in a shared memory map (a ChangeFeed)."""

    def __init__(self, mapping: mmap.mmap) -> None:
        self._map = mapping

    @classmethod
    def open(cls, path: Path) -> MmapChangeFeed:
        """Map the stamp file, creating or growing it as needed (blocking: call at start-up, off the loop)."""
        size = _SLOT * len(Topic)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < size:  # growing zero-fills; concurrent growers agree on the result
                os.ftruncate(fd, size)
            return cls(mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
        finally:
            os.close(fd)  # the mapping keeps its own reference

    def stamp(self, topic: Topic) -> bytes:
        start = topic * _SLOT
        return self._map[start : start + _SLOT]

    async def bump(self, *topics: Topic) -> None:
        self.bump_now(*topics)

    async def caught_up(self) -> None:
        return  # immediate: every bump is already in the shared map

    def bump_now(self, *topics: Topic) -> None:
        """bump() without a coroutine (a memory write): usable where the store must not be interrupted."""
        for topic in topics:
            start = topic * _SLOT
            self._map[start : start + _SLOT] = secrets.token_bytes(_SLOT)

    def close(self) -> None:
        self._map.close()

"""Change stamps shared by every process on one database: a way to cache reads in memory and still see, on the
very next request, a write that another worker or a CLI command committed.

The SQLite backend keeps one 8-byte slot per topic in a small file beside the database, mapped into memory
(MAP_SHARED), so reading a stamp is a memory load: no query, no thread hop, no syscall. A writer commits first and
then stores a fresh random value in the topic's slot; a reader that sees a different value than last time drops
what it cached for that topic. Random values (not a counter) need no lock: two writers racing can only leave a
value that differs from what any reader saw before either write. Another backend (PostgreSQL LISTEN/NOTIFY, say)
provides the same two calls.
"""

from __future__ import annotations

import enum
import mmap
import os
import secrets
from pathlib import Path

_SLOT = 8


class Topic(enum.IntEnum):
    """What changed. Each topic is one slot: readers of one topic are not disturbed by writes to another."""

    PRIVATE = 0  # private files and names: uploads, yank/unyank, deletes, imports
    PAGES = 1  # cached upstream pages written by any process (fetches, `shadowpi warm`, imports)
    BLOBS = 2  # blobs deleted: evictions, `shadowpi cache purge`, private deletes


class ChangeStamps:
    """Per-topic stamps in a shared memory map; `stamp` is cheap enough to call on every request."""

    def __init__(self, mapping: mmap.mmap) -> None:
        self._map = mapping

    @classmethod
    def open(cls, path: Path) -> ChangeStamps:
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
        """The topic's current stamp; compare with an earlier one for equality, nothing else."""
        start = topic * _SLOT
        return self._map[start : start + _SLOT]

    def bump(self, *topics: Topic) -> None:
        """Announce a committed change to every process (call after the commit, never before)."""
        for topic in topics:
            start = topic * _SLOT
            self._map[start : start + _SLOT] = secrets.token_bytes(_SLOT)

    def close(self) -> None:
        self._map.close()

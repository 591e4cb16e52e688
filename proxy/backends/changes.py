"""The change feed: how every process sharing a backend learns, on its next request, that another one committed.

Services keep reads in memory (private names and pages, parsed upstream pages when offline, blobs known to be
committed) and ask the feed for a topic's stamp on every request; a stamp that differs from the one they saw last
means "drop what you hold for this topic". The metadata store bumps the topics a transaction touched once it has
committed (callers never bump by hand), so a reader that sees the new stamp and reads again sees the new rows.

The freshness contract, which every implementation states and tests/backends/test_changes.py checks:

- Different: after bump(t) returns in one process, stamp(t) in every process sharing the backend returns a value
  different from every value it returned before the bump. Stamps are compared for equality only, never ordered.
- Immediate for the embedded backend (SQLite: a shared memory map beside the database file): the very next
  stamp(t) call in any process already differs.
- A networked feed (PostgreSQL LISTEN/NOTIFY: proxy/backends/postgres/changes.py) promises: within a stated bound
  (milliseconds) while its connection is up; and while disconnected, a fresh value on every call, so that readers
  fall back to reading through instead of serving what may be stale. No implementation may ever return an old
  value after having returned a newer one for the same topic in the same process.
- Own commits at once: the process that committed sees its new stamps when the commit returns, on every feed.
- caught_up() is the barrier behind the bound: once it returns, every change committed anywhere before it was
  called shows in stamp() (immediate feeds return at once). Tests use it instead of waiting for "long enough".
- Topics are independent: a bump of one topic leaves the others' stamps unchanged (readers of pages are not
  disturbed by uploads).
"""

from __future__ import annotations

import enum
from typing import Protocol

__all__ = ["ChangeFeed", "Topic"]


class Topic(enum.IntEnum):
    """What changed. Each topic is stamped on its own."""

    PRIVATE = 0  # private files and names: uploads, yank/unyank, deletes, imports
    PAGES = 1  # cached upstream pages written by any process (fetches, `shadowpi warm`, imports, purges)
    BLOBS = 2  # blobs deleted: evictions, `shadowpi cache purge`, private deletes, replaced uploads


class ChangeFeed(Protocol):
    """Per-topic change stamps shared by every process on one backend (see the module docstring)."""

    def stamp(self, topic: Topic) -> bytes:
        """The topic's current stamp. Cheap enough for every request (no I/O, no thread hop); never raises."""
        ...

    async def bump(self, *topics: Topic) -> None:
        """Announce a committed change of `topics` to every process. Call it after the commit, never before (a
        reader woken early would read the old rows and keep them). Raises OSError when the feed cannot be
        written."""
        ...

    async def caught_up(self) -> None:
        """Return once every change committed (in any process) before the call shows in stamp(). Never raises:
        a feed that cannot tell (disconnected) returns, its stamps being fresh on every call then."""
        ...

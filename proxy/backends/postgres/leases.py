"""Cluster-wide leadership of downloads: the replica that leads the fill of a file holds a session-level advisory
lock keyed by its sha256 on its dedicated connection (session.py), and advertises where peers reach it in a
`fill_leaders` row written in the same statement.

No home-made consensus: PostgreSQL decides who holds the lock, and a leader whose process dies (SIGKILL, OOM, a
lost network) loses its connection and with it the lock, so another replica may lead the next claim. A follower
asks who leads by joining the row with pg_locks: a row whose pid no longer holds the lock belongs to a dead leader
and is ignored (the next leader overwrites it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import asyncpg

from proxy.backends.postgres.session import Session, SessionDown
from proxy.backends.tasks import to_end

__all__ = ["FillLeases", "Leader", "Lease", "fill_key"]

log = logging.getLogger(__name__)

# Take the lock and say where we are, in one statement: a follower that finds the lock held either sees this row
# (its pid holds the lock) or finds the leader still starting, never a stale address taken for the live one.
_LEAD = """
WITH got AS (SELECT pg_try_advisory_lock($1) AS ok)
INSERT INTO fill_leaders (sha256, url, pid, started_at)
SELECT $2, $3, pg_backend_pid(), $4 FROM got WHERE ok
ON CONFLICT (sha256) DO UPDATE SET url = excluded.url, pid = excluded.pid, started_at = excluded.started_at
RETURNING true
"""
_RELEASE = """
WITH gone AS (DELETE FROM fill_leaders WHERE sha256 = $2 AND pid = pg_backend_pid())
SELECT pg_advisory_unlock($1)
"""
# A bigint advisory key shows in pg_locks as classid (high half), objid (low half), objsubid 1.
_LEADER = """
SELECT f.url, f.pid IS NOT DISTINCT FROM l.pid AS current
FROM pg_locks l LEFT JOIN fill_leaders f ON f.sha256 = $1
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = $2::bigint::oid AND l.objid = $3::bigint::oid
"""
# The row of a leader whose lock is gone (asked once nobody holds it): it died instead of giving up (which deletes it).
_DEAD = "SELECT EXISTS (SELECT 1 FROM fill_leaders WHERE sha256 = $1)"


def fill_key(sha256: str) -> int:
    """The advisory lock key of a fill: 63 bits of the digest (non-negative, so pg_locks shows it unsigned)."""
    return int(sha256[:16], 16) >> 1


@dataclass(frozen=True, slots=True)
class Leader:
    """Someone holds the fill's lock; `url` is where it serves the fill to peers (None: not known, or none)."""

    url: str | None


class Lease:
    """This process leads the fill cluster-wide until release() (or until its connection dies)."""

    def __init__(self, leases: FillLeases, sha256: str, generation: int | None) -> None:
        self._leases = leases
        self.sha256 = sha256
        self._generation = generation  # None: led without the lock (the session was down)
        self._released = False

    async def release(self) -> None:
        """Give up the lead (idempotent); the lock dies with the session anyway."""
        if self._released or self._generation is None:
            return
        self._released = True
        with contextlib.suppress(SessionDown):  # the session is gone, and the lock with it
            await to_end(self._leases.session.fetchval(
                _RELEASE, fill_key(self.sha256), self.sha256, generation=self._generation
            ))


class FillLeases:
    """Leads and leaders of fills on one PostgreSQL database (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, session: Session) -> None:
        self._pool = pool
        self.session = session

    async def lead(self, sha256: str, url: str | None) -> Lease | None:
        """The lead of the fill of `sha256`, or None when another process holds it. With the session down, a lead
        without the lock (replicas may each download then, as they did before they coordinated)."""
        generation = self.session.generation
        attempt = asyncio.ensure_future(
            self.session.fetchval(_LEAD, fill_key(sha256), sha256, url, time.time(), generation=generation)
        )
        try:
            got = await asyncio.shield(attempt)
        except SessionDown as exc:
            log.warning("leading the download of %s without a cluster-wide lock: %s", sha256, exc)
            return Lease(self, sha256, None)
        except asyncio.CancelledError:  # a lock taken meanwhile is given back: nobody else could lead until then
            if not attempt.done():
                await asyncio.wait({attempt})
            if not attempt.cancelled() and attempt.exception() is None and attempt.result():
                await Lease(self, sha256, generation).release()
            raise
        return Lease(self, sha256, generation) if got else None

    async def leader(self, sha256: str) -> Leader | None:
        """Who leads the fill of `sha256` now: None when nobody holds its lock."""
        key = fill_key(sha256)
        row = await self._pool.fetchrow(_LEADER, sha256, key >> 32, key & 0xFFFFFFFF)
        if row is None:
            return None
        return Leader(row["url"] if row["current"] else None)

    async def died(self, sha256: str) -> bool:
        """Whether the last leader of the fill of `sha256` died mid-fill rather than ending it (asked once leader()
        found nobody holding its lock): its row outlived its lock."""
        return bool(await self._pool.fetchval(_DEAD, sha256))

"""The PostgreSQL metadata backend and its change feed (`[database] url = "postgresql://..."`): the shared state of
N replicas. Needs the `scale` extra (asyncpg).

Each process opens a pool of connections (`[database] pool_size`, created as needed) for reads and write
transactions, and one dedicated connection for LISTEN and the page refresh locks (session.py). Only
proxy/backends/__init__.py imports this package; everything else sees the Protocols of proxy/backends/metadata.py
and proxy/backends/changes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import asyncpg

from proxy.backends.postgres.changes import PgChangeFeed
from proxy.backends.postgres.database import PgMetadata
from proxy.backends.postgres.errors import DATABASE_ERRORS
from proxy.backends.postgres.locks import SessionLocks
from proxy.backends.postgres.session import CONNECT_TIMEOUT, Session
from proxy.backends.urls import PostgresURL
from proxy.errors import BackendUnavailable

__all__ = ["PgChangeFeed", "PgMetadata", "open_postgres"]

T = TypeVar("T")
CLOSE_TIMEOUT = 10.0  # seconds closing waits for connections still in use, before cutting them


@contextlib.asynccontextmanager
async def open_postgres(
    url: PostgresURL, *, pool_size: int, migrate: bool, check_schema: bool = True
) -> AsyncIterator[tuple[PgMetadata, PgChangeFeed]]:
    """The store on the database of `url` and its change feed. `migrate`: bring the schema up to date first;
    otherwise (with `check_schema`) raise SchemaMismatch unless it is. Raises BackendUnavailable when the
    database cannot be connected to."""
    instance = secrets.token_hex(8)
    pool = await _connected(url, _create_pool(url, pool_size, instance))
    try:
        session = Session(url.dsn, masked=url.masked, application_name=f"shadowpi listener {instance}")
        feed = PgChangeFeed(pool, session, instance=instance)
        store = PgMetadata(pool, feed, SessionLocks(session), masked=url.masked)
        if migrate:
            await store.migrate()
        elif check_schema:
            await store.check_schema()
        await _connected(url, session.start())
        try:
            yield store, feed
        finally:
            await session.close()
    finally:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await pool.close()
        except TimeoutError:
            pool.terminate()


def _create_pool(url: PostgresURL, pool_size: int, instance: str) -> asyncpg.Pool:
    return asyncpg.create_pool(
        url.dsn,
        min_size=1,  # more as needed, up to pool_size; idle ones close after 5 minutes (asyncpg's default)
        max_size=pool_size,
        timeout=CONNECT_TIMEOUT,
        server_settings={"application_name": f"shadowpi {instance}"},  # who is who in pg_stat_activity
        reset=_nothing_to_reset,
    )


async def _nothing_to_reset(_conn: object) -> None:
    """What asyncpg does to a connection given back to the pool, besides rolling back a transaction left open:
    nothing. Its default (RESET ALL, UNLISTEN *, pg_advisory_unlock_all(), CLOSE ALL) costs a round trip per
    query, and these connections never change any of that: no SET, no LISTEN (the dedicated connection listens),
    no session locks (transactions take transaction-scoped ones), no cursors."""


async def _connected(url: PostgresURL, connecting: Awaitable[T]) -> T:
    try:
        return await connecting
    except DATABASE_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise BackendUnavailable(f"database.url: cannot connect to {url.masked}: {reason}") from exc

"""PostgreSQL driver candidates for bench/engines.py: asyncpg and psycopg 3 (async, with psycopg-pool).

Each driver is wrapped in the same small interface, so every scenario runs identical SQL through both: one
connection's query latency, a pool under 64 concurrent tasks, LISTEN/NOTIFY latency between two connections,
session and transaction advisory locks, and SELECT ... FOR UPDATE SKIP LOCKED from two transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

QUERIES = 2000  # sequential queries for the latency figure
POOL_SIZE = 10
POOL_TASKS = 64
POOL_QUERIES = 6000
NOTIFIES = 300


class Driver(Protocol):
    name: str

    async def connect(self, url: str) -> Any: ...
    async def close(self, conn: Any) -> None: ...
    async def value(self, conn: Any, sql: str, *args: Any) -> Any: ...
    async def execute(self, conn: Any, sql: str) -> None: ...
    def transaction(self, conn: Any) -> AbstractAsyncContextManager[Any]: ...
    def pool(self, url: str, size: int) -> AbstractAsyncContextManager[Any]: ...
    def acquire(self, pool: Any) -> AbstractAsyncContextManager[Any]: ...
    async def listen(self, conn: Any, channel: str, received: Callable[[str], None]) -> Any: ...


class Asyncpg:
    name = "asyncpg"

    async def connect(self, url: str) -> Any:
        import asyncpg

        return await asyncpg.connect(url)

    async def close(self, conn: Any) -> None:
        await conn.close()

    async def value(self, conn: Any, sql: str, *args: Any) -> Any:
        return await conn.fetchval(sql.replace("%s", "$1"), *args)

    async def execute(self, conn: Any, sql: str) -> None:
        await conn.execute(sql)

    def transaction(self, conn: Any) -> AbstractAsyncContextManager[Any]:
        return conn.transaction()  # type: ignore[no-any-return]

    @asynccontextmanager
    async def pool(self, url: str, size: int) -> AsyncIterator[Any]:
        import asyncpg

        async with asyncpg.create_pool(url, min_size=size, max_size=size) as pool:
            yield pool

    def acquire(self, pool: Any) -> AbstractAsyncContextManager[Any]:
        return pool.acquire()  # type: ignore[no-any-return]

    async def listen(self, conn: Any, channel: str, received: Callable[[str], None]) -> Any:
        # The protocol reads notifications as they arrive and calls back on the loop: no task of our own.
        await conn.add_listener(channel, lambda _conn, _pid, _channel, payload: received(payload))
        return None


class Psycopg:
    name = "psycopg"

    async def connect(self, url: str) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def close(self, conn: Any) -> None:
        await conn.close()

    async def value(self, conn: Any, sql: str, *args: Any) -> Any:
        cursor = await conn.execute(sql, args or None)
        row = await cursor.fetchone()
        return None if row is None else row[0]

    async def execute(self, conn: Any, sql: str) -> None:
        await conn.execute(sql)

    def transaction(self, conn: Any) -> AbstractAsyncContextManager[Any]:
        return conn.transaction()  # type: ignore[no-any-return]

    @asynccontextmanager
    async def pool(self, url: str, size: int) -> AsyncIterator[Any]:
        from psycopg_pool import AsyncConnectionPool

        async with AsyncConnectionPool(url, min_size=size, max_size=size, open=False,
                                       kwargs={"autocommit": True}) as pool:
            await pool.wait()
            yield pool

    def acquire(self, pool: Any) -> AbstractAsyncContextManager[Any]:
        return pool.connection()  # type: ignore[no-any-return]

    async def listen(self, conn: Any, channel: str, received: Callable[[str], None]) -> Any:
        # psycopg delivers notifications while the connection is being read: a task iterates notifies().
        await conn.execute(f"LISTEN {channel}")

        async def pump() -> None:
            async for notify in conn.notifies():
                received(notify.payload)

        return asyncio.create_task(pump())


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_us": statistics.median(ordered) * 1e6, "p99_us": ordered[int(len(ordered) * 0.99) - 1] * 1e6}


async def query_latency(driver: Driver, url: str) -> dict[str, float]:
    conn = await driver.connect(url)
    try:
        samples = []
        for i in range(QUERIES):
            started = time.perf_counter()
            assert await driver.value(conn, "SELECT %s::int + 1", i) == i + 1
            samples.append(time.perf_counter() - started)
        return _percentiles(samples[100:])  # the first ones include statement preparation
    finally:
        await driver.close(conn)


async def connect_time(driver: Driver, url: str) -> dict[str, float]:
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        conn = await driver.connect(url)
        samples.append(time.perf_counter() - started)
        await driver.close(conn)
    return {"connect_ms": statistics.median(samples) * 1e3}


async def pool_throughput(driver: Driver, url: str) -> dict[str, float]:
    async with driver.pool(url, POOL_SIZE) as pool:
        remaining = POOL_QUERIES

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with driver.acquire(pool) as conn:
                    await driver.value(conn, "SELECT %s::int", remaining)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(POOL_TASKS)))
        return {"pool_qps": POOL_QUERIES / (time.perf_counter() - started)}


async def notify_latency(driver: Driver, url: str) -> dict[str, float]:
    listener, sender = await driver.connect(url), await driver.connect(url)
    arrivals: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    pump = await driver.listen(listener, "bench", lambda payload: arrivals.put_nowait((payload, time.perf_counter())))
    try:
        samples = []
        for i in range(NOTIFIES):
            started = time.perf_counter()
            await driver.value(sender, "SELECT pg_notify('bench', %s)", str(i))
            payload, arrived = await asyncio.wait_for(arrivals.get(), 5)
            assert payload == str(i)
            samples.append(arrived - started)
        return _percentiles(samples)
    finally:
        if pump is not None:  # psycopg: the reader must be gone before its socket closes (fd reuse breaks)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        for conn in (listener, sender):
            await driver.close(conn)


async def advisory_locks(driver: Driver, url: str) -> dict[str, Any]:
    a, b = await driver.connect(url), await driver.connect(url)
    try:
        session = [await driver.value(a, "SELECT pg_try_advisory_lock(42)"),
                   await driver.value(b, "SELECT pg_try_advisory_lock(42)"),
                   await driver.value(a, "SELECT pg_advisory_unlock(42)"),
                   await driver.value(b, "SELECT pg_try_advisory_lock(42)")]
        await driver.value(b, "SELECT pg_advisory_unlock(42)")
        async with driver.transaction(a):
            xact = [await driver.value(a, "SELECT pg_try_advisory_xact_lock(43)"),
                    await driver.value(b, "SELECT pg_try_advisory_xact_lock(43)")]
        xact.append(await driver.value(b, "SELECT pg_try_advisory_xact_lock(43)"))  # a committed: free again
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            await driver.value(a, "SELECT pg_try_advisory_lock(7)")
            await driver.value(a, "SELECT pg_advisory_unlock(7)")
            samples.append(time.perf_counter() - started)
        return {"session [A, B, A unlock, B]": session, "xact [A, B, B after A commits]": xact,
                "lock+unlock_us": statistics.median(samples) * 1e6,
                "ok": session == [True, False, True, True] and xact == [True, False, True]}
    finally:
        for conn in (a, b):
            await driver.close(conn)


async def skip_locked(driver: Driver, url: str) -> dict[str, Any]:
    a, b = await driver.connect(url), await driver.connect(url)
    claim = "SELECT array_agg(id) FROM (SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 3) AS t"
    try:
        await driver.execute(a, "DROP TABLE IF EXISTS jobs; CREATE TABLE jobs (id int PRIMARY KEY)")
        await driver.execute(a, "INSERT INTO jobs SELECT generate_series(1, 10)")
        async with driver.transaction(a), driver.transaction(b):
            first, second = list(await driver.value(a, claim)), list(await driver.value(b, claim))
        return {"A claims": first, "B claims": second, "ok": first == [1, 2, 3] and second == [4, 5, 6]}
    finally:
        for conn in (a, b):
            await driver.close(conn)


SCENARIOS = (connect_time, query_latency, pool_throughput, notify_latency, advisory_locks, skip_locked)
DRIVERS: tuple[Driver, ...] = (Asyncpg(), Psycopg())


async def run_driver(driver: Driver, url: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario in SCENARIOS:
        results[scenario.__name__] = await scenario(driver, url)
    return results

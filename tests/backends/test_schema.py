"""Contract: migrations are explicit and idempotent, and a store answers its readiness ping."""

from __future__ import annotations

import asyncio
import contextlib

from proxy.backends import open_backends
from proxy.simple.names import NormalizedName
from tests.backends.conftest import BackendsUnderTest


async def test_migrating_again_changes_nothing(backends: BackendsUnderTest) -> None:
    """A migrated store has a schema version; migrating again (here, or in two more processes at once) applies
    nothing and keeps the data."""
    meta = backends.meta
    version = await meta.schema_version()
    assert version > 0
    token_id = await meta.add_token("alice", "1" * 64)
    assert await meta.migrate() == 0
    async with backends.reopen(migrate=True) as one, backends.reopen(migrate=True) as two:
        assert await asyncio.gather(one.meta.migrate(), two.meta.migrate()) == [0, 0]
        assert await two.meta.schema_version() == version
    assert [t.id for t in await meta.list_tokens()] == [token_id]


async def test_an_up_to_date_store_opens_without_migrating(backends: BackendsUnderTest) -> None:
    """Opening with migrate=False works on a store at this shadowpi's schema, and ping() answers."""
    async with backends.reopen(migrate=False) as other:
        await other.meta.ping()
        assert await other.meta.schema_version() == await backends.meta.schema_version()


async def test_processes_migrating_an_empty_store_at_once_apply_each_migration_once(
    backends: BackendsUnderTest,
) -> None:
    """Five processes (replicas starting together) migrating one empty store at the same moment: exactly one
    applies the migrations, the others wait for it and find nothing to do; all end at this shadowpi's schema."""
    config = backends.empty()
    async with contextlib.AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(open_backends(config, check_schema=False)) for _ in range(5)]
        assert [await b.meta.schema_version() for b in opened] == [0] * 5
        applied = await asyncio.gather(*(b.meta.migrate() for b in opened))
        version = await backends.meta.schema_version()
        assert sorted(applied) == [0, 0, 0, 0, version]
        assert [await b.meta.schema_version() for b in opened] == [version] * 5
    async with open_backends(config, migrate=True) as again:  # what `serve` does: nothing left to apply
        assert await again.meta.migrate() == 0
        await again.meta.add_token("ci", "2" * 64)
        assert [t.user for t in await again.meta.list_tokens()] == ["ci"]


async def test_processes_opening_an_empty_store_to_serve_at_once_all_start(backends: BackendsUnderTest) -> None:
    """Five processes opening one empty store with migrate=True at the same moment (replicas of `serve` starting
    together): every one opens, at this shadowpi's schema, and the store works."""
    config = backends.empty()
    async with contextlib.AsyncExitStack() as stack:
        opened = await asyncio.gather(*(stack.enter_async_context(open_backends(config, migrate=True))
                                        for _ in range(5)))
        version = await backends.meta.schema_version()
        assert [await b.meta.schema_version() for b in opened] == [version] * 5
        await opened[0].meta.add_private_project(NormalizedName("acme"))
        assert await opened[4].meta.private_projects() == [NormalizedName("acme")]

"""Contract: migrations are explicit and idempotent, and a store answers its readiness ping."""

from __future__ import annotations

import asyncio

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

"""Contract: write transactions commit as a whole or not at all, their uncommitted rows are invisible to
everyone else, and two writers never commit or roll back each other's work (issue 12: on main's shared
connection, another coroutine's commit committed a transaction that then rolled back)."""

from __future__ import annotations

import asyncio

import pytest

from proxy.backends.metadata import DuplicateFilename
from proxy.simple.names import NormalizedName
from tests.backends.conftest import BackendsUnderTest
from tests.backends.samples import SHA_B, private_file

# Seconds writer A gives writer B to finish while A's transaction is open. A store that serialises writers keeps
# B waiting however long this is (and the test passes); a store that lets B commit meanwhile fails it.
WAIT = 0.5


class Boom(Exception):
    pass


async def test_a_transaction_commits_everything_when_its_block_ends(backends: BackendsUnderTest) -> None:
    """Several writes in one transaction are all visible after the block, to this process and to another."""
    meta = backends.meta
    async with meta.transaction() as tx:
        await tx.add_private_file(private_file("acme-1.0.tar.gz"))
        await tx.add_private_file(private_file("acme-1.0-py3-none-any.whl", SHA_B))
        assert await tx.private_file("acme-1.0.tar.gz") is not None  # a transaction reads its own writes
    assert [f.filename for f in await meta.private_files(NormalizedName("acme"))] == [
        "acme-1.0-py3-none-any.whl", "acme-1.0.tar.gz"
    ]
    async with backends.reopen() as other:
        assert len(await other.meta.private_files(NormalizedName("acme"))) == 2


async def test_a_transaction_that_raises_leaves_nothing_behind(backends: BackendsUnderTest) -> None:
    """An exception in the block rolls every write back and propagates unchanged; the store keeps working."""
    meta = backends.meta
    with pytest.raises(Boom):
        async with meta.transaction() as tx:
            await tx.add_private_file(private_file("acme-1.0.tar.gz"))
            await tx.add_token("ci", "0" * 64)
            raise Boom
    assert await meta.private_file("acme-1.0.tar.gz") is None
    assert await meta.private_projects() == []
    assert await meta.list_tokens() == []
    await meta.add_private_file(private_file("acme-1.0.tar.gz"))
    assert await meta.private_file("acme-1.0.tar.gz") is not None


async def test_a_cancelled_transaction_rolls_back_and_the_next_one_works(backends: BackendsUnderTest) -> None:
    """A task cancelled inside a transaction (a client went away) leaves nothing half-written and does not leave
    the store stuck: the next transaction starts and commits."""
    meta = backends.meta
    inside = asyncio.Event()

    async def writer() -> None:
        async with meta.transaction() as tx:
            await tx.add_private_file(private_file("acme-1.0.tar.gz"))
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await meta.private_file("acme-1.0.tar.gz") is None
    await meta.add_private_file(private_file("acme-2.0.tar.gz", version="2.0"))
    assert await meta.private_file("acme-2.0.tar.gz") is not None


async def test_a_reader_never_sees_uncommitted_rows(backends: BackendsUnderTest) -> None:
    """While a transaction has written but not committed, reads outside it (this process or another) do not see
    the rows; once it commits, they do."""
    meta = backends.meta
    async with backends.reopen() as other:
        async with meta.transaction() as tx:
            await tx.add_private_file(private_file("acme-1.0.tar.gz"))
            assert await meta.private_file("acme-1.0.tar.gz") is None
            assert await meta.private_projects() == []
            assert await other.meta.private_file("acme-1.0.tar.gz") is None
        assert await meta.private_file("acme-1.0.tar.gz") is not None
        assert await other.meta.private_file("acme-1.0.tar.gz") is not None


async def test_a_rolled_back_transaction_is_not_committed_by_another_writer(backends: BackendsUnderTest) -> None:
    """Writer A stages a row and then fails, while writer B adds a row of its own: A's row is never stored, B's
    is (B waits for A rather than committing A's half-done work)."""
    meta = backends.meta
    staged = asyncio.Event()

    async def writer_b() -> None:
        await staged.wait()
        await meta.add_private_file(private_file("b-1.0.tar.gz", project="b"))

    b = asyncio.create_task(writer_b())
    with pytest.raises(Boom):
        async with meta.transaction() as tx:
            await tx.add_private_file(private_file("a-1.0.tar.gz", project="a"))
            staged.set()
            await asyncio.wait({b}, timeout=WAIT)  # B finishes meanwhile, unless the store makes it wait for A
            raise Boom
    await b
    assert await meta.private_file("b-1.0.tar.gz") is not None
    assert await meta.private_file("a-1.0.tar.gz") is None
    assert await meta.private_projects() == [NormalizedName("b")]


async def test_a_committed_transaction_keeps_a_failed_writers_rows_out(backends: BackendsUnderTest) -> None:
    """The mirror case: A commits while B's transaction (opened while A's was running) fails. Only A's rows stay."""
    meta = backends.meta
    a_open = asyncio.Event()

    async def writer_b() -> None:
        await a_open.wait()
        with pytest.raises(Boom):
            async with meta.transaction() as tx:
                await tx.add_private_file(private_file("b-1.0.tar.gz", project="b"))
                raise Boom

    b = asyncio.create_task(writer_b())
    async with meta.transaction() as tx:
        await tx.add_private_file(private_file("a-1.0.tar.gz", project="a"))
        a_open.set()
        await asyncio.wait({b}, timeout=WAIT)
    await b
    assert await meta.private_projects() == [NormalizedName("a")]


@pytest.mark.parametrize("same_process", [True, False], ids=["one process", "two processes"])
async def test_check_then_insert_is_atomic_between_concurrent_transactions(
    backends: BackendsUnderTest, same_process: bool
) -> None:
    """Two transactions each check that a release slot is free and then take it: exactly one gets it, the other
    sees the winner's row in its check (the upload slot rule relies on this)."""
    async with backends.reopen() as other:
        stores = [backends.meta, backends.meta if same_process else other.meta]
        checked = [asyncio.Event(), asyncio.Event()]

        async def take(i: int) -> bool:
            async with stores[i].transaction() as tx:
                free = not await tx.private_files(NormalizedName("acme"))
                checked[i].set()
                await asyncio.wait([asyncio.ensure_future(checked[1 - i].wait())], timeout=WAIT)
                if free:
                    await tx.add_private_file(private_file(f"acme-1.0-{i}.tar.gz"))
                return free

        results = await asyncio.gather(take(0), take(1))
        assert sorted(results) == [False, True]
        assert len(await backends.meta.private_files(NormalizedName("acme"))) == 1


async def test_a_duplicate_filename_raises_and_rolls_back_its_transaction(backends: BackendsUnderTest) -> None:
    """Adding a filename that exists raises DuplicateFilename; the transaction's other writes are rolled back."""
    meta = backends.meta
    await meta.add_private_file(private_file("acme-1.0.tar.gz"))
    with pytest.raises(DuplicateFilename):
        async with meta.transaction() as tx:
            await tx.add_private_project(NormalizedName("other"))
            await tx.add_private_file(private_file("acme-1.0.tar.gz", SHA_B))
    assert await meta.private_projects() == [NormalizedName("acme")]
    existing = await meta.private_file("acme-1.0.tar.gz")
    assert existing is not None and existing.sha256 == private_file().sha256


async def test_returning_from_the_block_commits(backends: BackendsUnderTest) -> None:
    """Leaving the block early (return) is a normal exit: the writes commit."""
    meta = backends.meta

    async def add() -> str:
        async with meta.transaction() as tx:
            await tx.add_private_file(private_file("acme-1.0.tar.gz"))
            return "done"

    assert await add() == "done"
    assert await meta.private_file("acme-1.0.tar.gz") is not None

"""The upload form reader (proxy.form) over a body that is already buffered, as an attacker's tiny parts are."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import MultipartReader, StreamReader
from aiohttp.base_protocol import BaseProtocol

from proxy.errors import UploadTooLarge
from proxy.form import YIELD_EVERY, FormLimits, read_form
from proxy.storage import BlobStore
from tests.artifacts import build_wheel
from tests.test_app_publish_limits import many_parts_form

WHEEL = build_wheel("hello-world", "1.0")


async def buffered_reader(parts: int) -> MultipartReader:
    """A reader over a body of `parts` classifier parts and the file, all of it received already."""
    writer = many_parts_form(parts)()
    loop = asyncio.get_running_loop()
    body = await writer.as_bytes()
    stream = StreamReader(BaseProtocol(loop), len(body), loop=loop)  # a limit no flow control reaches
    stream.feed_data(body)
    stream.feed_eof()
    return MultipartReader({"Content-Type": writer.content_type}, stream)


@contextlib.asynccontextmanager
async def loop_turns_until(path: Path) -> AsyncIterator[list[int]]:
    """Counts the event loop's turns while the block runs, until something appears in `path`: a task that yields
    once per turn, counting. (Waiting on a worker thread spins it freely, so stop before the first spool write.)"""
    turns = [0]

    async def tick() -> None:
        while not any(path.iterdir()):  # noqa: ASYNC240 - blocking on purpose: a thread hop is a turn itself
            await asyncio.sleep(0)
            turns[0] += 1

    task = asyncio.create_task(tick())
    try:
        yield turns
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def store(tmp_path: Path) -> BlobStore:
    store = BlobStore(tmp_path)
    await store.open()
    return store


async def test_buffered_parts_give_the_loop_turns(store: BlobStore, tmp_path: Path):
    """aiohttp parses buffered parts without ever waiting, so the reader itself lets the loop run other requests
    at least every YIELD_EVERY parts (100,000 parts once held the loop for 24 s; /health took 3.4 s)."""
    parts = 1600
    reader = await buffered_reader(parts)
    async with loop_turns_until(tmp_path / "tmp") as turns:  # the text parts come first, then the file
        form = await read_form(reader, store, FormLimits(2**20, 2**20, 2000), ())
    assert len(form.fields["classifiers"]) == parts
    assert form.spool.size == WHEEL.size
    await store.discard(form.spool)
    store.release(form.spool)
    assert turns[0] >= parts // YIELD_EVERY


async def test_part_limit_stops_reading(store: BlobStore, tmp_path: Path):
    """Past max_parts the reader stops at once (413), and the spool directory is left empty."""
    reader = await buffered_reader(500)
    with pytest.raises(UploadTooLarge) as excinfo:
        await read_form(reader, store, FormLimits(2**20, 2**20, 100), ())
    assert str(excinfo.value) == "Too many parts in the upload form: more than 100."
    assert list((tmp_path / "tmp").iterdir()) == []

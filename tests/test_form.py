"""The upload form reader (proxy.form) over a body that is already buffered, as an attacker's tiny parts are."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import MultipartReader, StreamReader
from aiohttp.base_protocol import BaseProtocol

from proxy.backends.spool import Spool
from proxy.backends.spools import SpoolDir
from proxy.errors import InvalidUpload, UploadTooLarge
from proxy.form import YIELD_EVERY, FormLimits, read_form
from tests.artifacts import build_wheel
from tests.test_app_publish_limits import many_parts_form

WHEEL = build_wheel("hello-world", "1.0")


def fields_only(parts: int) -> aiohttp.FormData:
    """`parts` classifier parts and no file (multipart/form-data all the same, as twine sends)."""
    data = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
    for i in range(parts):
        data.add_field("classifiers", f"Topic :: {i}")
    return data


async def buffered_reader(form: aiohttp.FormData) -> MultipartReader:
    """A reader over the body of `form`, all of it received already."""
    writer = form()
    loop = asyncio.get_running_loop()
    body = await writer.as_bytes()
    stream = StreamReader(BaseProtocol(loop), len(body), loop=loop)  # a limit no flow control reaches
    stream.feed_data(body)
    stream.feed_eof()
    return MultipartReader({"Content-Type": writer.content_type}, stream)


@contextlib.asynccontextmanager
async def loop_turns() -> AsyncIterator[list[int]]:
    """Counts the event loop's turns while the block runs: a task that yields once per turn, counting."""
    turns = [0]

    async def tick() -> None:
        while True:
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
async def spool(tmp_path: Path) -> AsyncIterator[Spool]:
    spools = SpoolDir(tmp_path / "tmp")
    await spools.open()
    async with spools.new() as spool:
        yield spool


async def test_buffered_parts_give_the_loop_turns(spool: Spool):
    """aiohttp parses buffered parts without ever waiting, so the reader itself lets the loop run other requests
    at least every YIELD_EVERY parts (100,000 parts once held the loop for 24 s; /health took 3.4 s). The form has
    no file, so no turn is a wait for a spool write in a worker thread."""
    parts = 1600
    reader = await buffered_reader(fields_only(parts))
    async with loop_turns() as turns:
        with pytest.raises(InvalidUpload, match="does not have a file"):
            await read_form(reader, spool, FormLimits(2**20, 2**20, 2000))
    assert turns[0] >= parts // YIELD_EVERY - 1  # the last turn may still be pending when the block ends


async def test_a_file_goes_to_the_spool(spool: Spool):
    """The text parts become fields and the one file part's bytes go to the caller's spool."""
    form = await read_form(await buffered_reader(many_parts_form(10)), spool, FormLimits(2**20, 2**20, 2000))
    assert len(form.fields["classifiers"]) == 10
    assert (form.filename, form.spool, spool.size) == (WHEEL.filename, spool, WHEEL.size)


async def test_part_limit_stops_reading(spool: Spool):
    """Past max_parts the reader stops at once (413), before any byte reaches the spool."""
    reader = await buffered_reader(many_parts_form(500))
    with pytest.raises(UploadTooLarge) as excinfo:
        await read_form(reader, spool, FormLimits(2**20, 2**20, 100))
    assert str(excinfo.value) == "Too many parts in the upload form: more than 100."
    assert spool.size == 0

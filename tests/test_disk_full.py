"""A data dir on a really full disk (a small tmpfs): uploads get 507, downloads fail cleanly, /ready says so, and
everything works again once space is freed. Skipped only where mounting a tmpfs is impossible (not root)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from proxy.keys import PAGES
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import add_token, blob_files, spool_files, stored, twine_upload

PRIVATE = build_wheel("hello-world", "1.0", payload_size=200_000)
CACHED = build_wheel("tinylib", "1.0", payload_size=300_000)
FULL = (
    "Insufficient storage: the disk of shadowpi's data dir is full (or its quota is used up); nothing was stored. "
    "Retry once space has been freed."
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write `path` until the disk is full (ENOSPC), down to the last byte: no free block is left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (65536, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


async def ready(client: TestClient) -> tuple[int, dict[str, str]]:
    resp = await client.get("/ready")
    return resp.status, json.loads(await resp.text())["checks"]


async def test_full_disk(aiohttp_client: AiohttpClient, small_disk: Path, populated_upstream: Upstream,
                         caplog: pytest.LogCaptureFixture):
    """Disk full: an upload answers 507 with a message, a download being cached is cut off (never a partial file
    in the cache), /ready is 503 naming the data dir; no traceback is logged; once space is freed, all works."""
    populated_upstream.fake.add(CACHED)
    factory = ProxyFactory(aiohttp_client, small_disk / "data", populated_upstream)
    await add_token(factory.data_dir, "ci")
    client = await factory(upload={"max_size": 1_000_000})
    assert await ready(client) == (200, {"database": "ok", "data_dir": "ok"})
    page = await (await client.get("/simple/tinylib/", headers=JSON)).json(content_type=None)
    [url] = [urljoin("/simple/tinylib/", f["url"]) for f in page["files"] if f["filename"] == CACHED.filename]
    await client.app[PAGES].flushed()  # the page is stored before the disk fills
    before = await stored(factory.data_dir)
    filler = small_disk / "filler"
    await asyncio.to_thread(fill, filler)

    with caplog.at_level(logging.ERROR):
        resp = await twine_upload(client, PRIVATE)
        assert (resp.status, resp.reason) == (507, FULL)
        download = await client.get(url)
        assert download.status == 200  # headers go out as soon as upstream answers; then the disk fills
        with pytest.raises(aiohttp.ClientPayloadError):
            await download.read()
        status, checks = await ready(client)
        assert status == 503
        assert checks["data_dir"].startswith("failed: ")
        assert (await client.get("/health")).status == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await stored(factory.data_dir) == before
    assert CACHED.sha256 not in blob_files(factory.data_dir)
    assert spool_files(factory.data_dir) == []

    filler.unlink()
    assert await ready(client) == (200, {"database": "ok", "data_dir": "ok"})
    assert (await twine_upload(client, PRIVATE)).status == 200
    assert await (await client.get(url)).read() == CACHED.data


async def test_not_ready_when_free_space_is_below_the_largest_upload(
    small_disk: Path, aiohttp_client: AiohttpClient, populated_upstream: Upstream
):
    """/ready is 503 while the data dir has less free space than one upload may need ([upload] max_size), though
    a small probe file could still be written there: the disk is as good as full."""
    factory = ProxyFactory(aiohttp_client, small_disk / "data", populated_upstream)
    client = await factory(upload={"max_size": 8 * 2**20})
    status, checks = await ready(client)
    assert status == 503
    assert checks["data_dir"].startswith("failed: StorageFull: only ")
    assert checks["data_dir"].endswith(" bytes are free in the data dir, less than one upload may need "
                                       "(upload.max_size = 8388608)")


SMALL = build_wheel("smalllib", "1.0", payload_size=20_000)  # under download.SMALL_FILE: written with its commit


async def test_a_small_file_on_a_full_disk_is_served_verified_and_never_cached(
    aiohttp_client: AiohttpClient, small_disk: Path, populated_upstream: Upstream, caplog: pytest.LogCaptureFixture
):
    """A small file arrives whole and is verified in memory; its client is sent it from there while the commit (one
    trip off the event loop) writes it. When the disk is full that write fails: the client still has the complete,
    verified file, no blob or spool is left, one warning and no traceback is logged; once space is freed the same
    request is served and cached."""
    from proxy.download import SMALL_FILE
    from proxy.keys import FILES

    assert SMALL.size <= SMALL_FILE
    populated_upstream.fake.add(SMALL)
    factory = ProxyFactory(aiohttp_client, small_disk / "data", populated_upstream)
    client = await factory()
    page = await (await client.get("/simple/smalllib/", headers=JSON)).json(content_type=None)
    [url] = [urljoin("/simple/smalllib/", f["url"]) for f in page["files"] if f["filename"] == SMALL.filename]
    await client.app[PAGES].flushed()
    filler = small_disk / "filler"
    await asyncio.to_thread(fill, filler)

    with caplog.at_level(logging.WARNING):
        download = await client.get(url)
        assert (download.status, await download.read()) == (200, SMALL.data)
        await client.app[FILES].settled()
        assert (await client.get("/health")).status == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any("could not store smalllib" in r.getMessage() for r in caplog.records)
    assert SMALL.sha256 not in blob_files(factory.data_dir)
    assert spool_files(factory.data_dir) == []

    filler.unlink()
    again = await client.get(url)
    assert (again.status, await again.read()) == (200, SMALL.data)
    await client.app[FILES].settled()
    assert SMALL.sha256 in blob_files(factory.data_dir)
    assert spool_files(factory.data_dir) == []
    assert populated_upstream.fake.hits[f"/files/smalllib/{SMALL.filename}"] == 2

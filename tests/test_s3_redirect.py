"""`[storage] redirect = true` at the HTTP level: a stored file is a 302 to a presigned URL (GET, HEAD and Range
alike) that nobody may cache; small files, files still filling, and requests refused by read authentication
are never redirected."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.keys import FILES
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.engines.seaweed import S3Bucket
from tests.proxy_fixtures import ProxyFactory
from tests.publishing import write_htpasswd

pytestmark = pytest.mark.engines

BIG = build_wheel("redirected", "1.0", payload_size=200_000)
SMALL = build_wheel("redirected", "0.1")  # well below 64 KiB
FILE = f"/files/redirected/{BIG.sha256}/{BIG.filename}"


@pytest.fixture
def redirected(upstream: Upstream) -> Upstream:
    upstream.fake.add(BIG)
    upstream.fake.add(SMALL)
    return upstream


async def cached(proxy: TestClient, path: str, data: bytes) -> None:
    """Download `path` once (streamed by shadowpi while it fills) and wait until it is committed."""
    response = await proxy.get(path, allow_redirects=False)
    assert (response.status, response.headers["X-Shadowpi-Cache"]) == (200, "miss")
    assert await response.read() == data
    await proxy.app[FILES].settled()


async def from_store(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers) as response:
        return response.status, await response.read()


async def test_a_stored_file_is_a_302_to_the_object_for_get_head_and_range(
    make_proxy: ProxyFactory, redirected: Upstream, s3_bucket: S3Bucket
):
    """Once stored, GET, HEAD and a Range GET of the file are 302s (Cache-Control: private, no-store) to URLs
    the object store answers with the file's bytes, its headers, and the range asked for."""
    proxy = await make_proxy(storage={"url": s3_bucket.url, "redirect": True})
    await cached(proxy, FILE, BIG.data)
    get = await proxy.get(FILE, allow_redirects=False)
    head = await proxy.head(FILE, allow_redirects=False)
    ranged = await proxy.get(FILE, headers={"Range": "bytes=10-19"}, allow_redirects=False)
    for response in (get, head, ranged):
        assert response.status == 302
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.headers["Location"].startswith(s3_bucket.endpoint + "/")
    assert await from_store("GET", get.headers["Location"]) == (200, BIG.data)
    assert await from_store("HEAD", head.headers["Location"]) == (200, b"")
    assert await from_store("GET", ranged.headers["Location"], {"Range": "bytes=10-19"}) == (206, BIG.data[10:20])
    assert redirected.fake.hits[f"/files/redirected/{BIG.filename}"] == 1


async def test_small_and_filling_files_are_sent_by_shadowpi(
    make_proxy: ProxyFactory, redirected: Upstream, s3_bucket: S3Bucket
):
    """A file of 64 KiB or less is sent by shadowpi even when stored (a redirect would cost a round trip more
    than the bytes), as is a file still being fetched from upstream (the object does not exist yet)."""
    proxy = await make_proxy(storage={"url": s3_bucket.url, "redirect": True})
    small = f"/files/redirected/{SMALL.sha256}/{SMALL.filename}"
    await cached(proxy, small, SMALL.data)
    response = await proxy.get(small, allow_redirects=False)
    assert (response.status, response.headers["X-Shadowpi-Cache"]) == (200, "hit")
    assert await response.read() == SMALL.data


async def test_read_authentication_comes_before_the_redirect(
    make_proxy: ProxyFactory, redirected: Upstream, s3_bucket: S3Bucket, tmp_path: Path
):
    """Under `[auth] read = true` a request without valid credentials gets a 401 and no Location: the presigned
    URL is handed only to a client that may read the file."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"reader": "secret"})
    proxy = await make_proxy(storage={"url": s3_bucket.url, "redirect": True},
                             auth={"htpasswd": str(htpasswd), "read": True})
    allowed = {"Authorization": aiohttp.encode_basic_auth("reader", "secret")}
    await proxy.get(FILE, headers=allowed, allow_redirects=False)  # the fill
    await proxy.app[FILES].settled()
    for headers in ({}, {"Authorization": aiohttp.encode_basic_auth("reader", "wrong")}):
        refused = await proxy.get(FILE, headers=headers, allow_redirects=False)
        assert refused.status == 401
        assert "Location" not in refused.headers
    response = await proxy.get(FILE, headers=allowed, allow_redirects=False)
    assert response.status == 302
    assert await from_store("GET", response.headers["Location"]) == (200, BIG.data)

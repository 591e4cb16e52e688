"""The peer endpoint GET /_shadowpi/fills/<sha256>: what replicas stream each other's downloads from. Refused
without a current token signed with the cluster's shared secret, whatever else the request says; with one, the
fill a process of this host leads, from an offset, while it arrives, ending cleanly only once it is committed."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.keys import BACKENDS
from proxy.peer_token import SECRET_NAME, authorization
from tests.artifacts import Artifact, build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory

BIG = build_wheel("peerlib", "1.0", payload_size=600_000)
OTHER = "f" * 64


def peer_url(sha256: str, offset: int | str | None = None) -> str:
    return f"/_shadowpi/fills/{sha256}" + ("" if offset is None else f"?offset={offset}")


async def token(proxy: TestClient, sha256: str, *, secret: bytes | None = None, now: float | None = None) -> str:
    secret = secret or await proxy.app[BACKENDS].meta.shared_secret(SECRET_NAME)
    return authorization(secret, sha256, time.time() if now is None else now)


async def start_download(proxy: TestClient, upstream: Upstream, artifact: Artifact) -> aiohttp.ClientResponse:
    """A client's download through `proxy`, which leads it; upstream holds after the first chunk."""
    upstream.fake.add(artifact)
    assert (await proxy.get(f"/simple/{artifact.project}/", headers=JSON)).status == 200
    upstream.fake.file_stream_gate = asyncio.Event()
    return await proxy.get(f"/files/{artifact.project}/{artifact.sha256}/{artifact.filename}")


@pytest.mark.parametrize(("path", "auth", "status"), [
    pytest.param(peer_url(BIG.sha256), None, 403, id="no token"),
    pytest.param(peer_url(BIG.sha256), "Basic dXNlcjpwYXNz", 403, id="basic credentials"),
    pytest.param(peer_url(BIG.sha256), "wrong secret", 403, id="signed with another secret"),
    pytest.param(peer_url(BIG.sha256), "for another file", 403, id="token of another file"),
    pytest.param(peer_url(BIG.sha256), "expired", 403, id="expired token"),
    pytest.param(peer_url(BIG.sha256, "abc"), "no token", 403, id="bad offset, no token"),
    pytest.param(peer_url("xyz"), "valid", 404, id="malformed sha256"),
    pytest.param(peer_url(BIG.sha256.upper()), "valid", 404, id="upper-case sha256"),
    pytest.param(peer_url(BIG.sha256), "valid", 404, id="no fill here"),
    pytest.param(peer_url(BIG.sha256, "abc"), "valid", 400, id="bad offset"),
    pytest.param(peer_url(BIG.sha256, "-1"), "valid", 400, id="negative offset"),
])
async def test_the_peer_endpoint_refuses(proxy: TestClient, path: str, auth: str | None, status: int) -> None:
    """Without a current token for this very file, signed with the shared secret, the answer is 403 before
    anything is looked up; a malformed digest names nothing (404), nor does a file nobody downloads here (404);
    a bad offset is a 400. The answers are never cached."""
    sha256 = path.removeprefix("/_shadowpi/fills/").partition("?")[0]
    headers = {}
    if auth == "valid":
        headers["Authorization"] = await token(proxy, sha256)
    elif auth == "wrong secret":
        headers["Authorization"] = await token(proxy, sha256, secret=b"x" * 32)
    elif auth == "for another file":
        headers["Authorization"] = await token(proxy, OTHER)
    elif auth == "expired":
        headers["Authorization"] = await token(proxy, sha256, now=time.time() - 3600)
    elif auth is not None and auth != "no token":
        headers["Authorization"] = auth
    response = await proxy.get(path, headers=headers)
    assert response.status == status, await response.text()


async def test_the_peer_endpoint_streams_a_fill_from_an_offset_while_it_arrives(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    """A peer holding the token is sent the fill led here from its offset while upstream still holds back the
    rest, and the stream ends normally once the file is committed: exactly the file's bytes from the offset."""
    proxy = await make_proxy()
    client = await start_download(proxy, upstream, BIG)
    peer = await proxy.get(peer_url(BIG.sha256, 1000), headers={"Authorization": await token(proxy, BIG.sha256)})
    assert peer.status == 200
    assert peer.headers["Cache-Control"] == "no-store"
    first = await peer.content.readexactly(5000)  # the gate is closed: only the first chunk is upstream's so far
    assert upstream.fake.file_stream_gate is not None
    upstream.fake.file_stream_gate.set()
    assert first + await peer.read() == BIG.data[1000:]
    assert await client.read() == BIG.data


async def test_the_peer_stream_of_a_failed_fill_is_cut_off(make_proxy: ProxyFactory, upstream: Upstream) -> None:
    """When the fill led here fails verification (a lying index), a peer's stream is cut off, never ended as if
    complete: the follower cannot take what it got for the file."""
    proxy = await make_proxy()
    upstream.fake.add(BIG, declared_sha256="0" * 64)
    assert (await proxy.get("/simple/peerlib/", headers=JSON)).status == 200
    gate = upstream.fake.file_stream_gate = asyncio.Event()
    client = await proxy.get(f"/files/peerlib/{'0' * 64}/{BIG.filename}")
    peer = await proxy.get(peer_url("0" * 64), headers={"Authorization": await token(proxy, "0" * 64)})
    assert peer.status == 200
    await peer.content.readexactly(5000)
    gate.set()
    with pytest.raises(aiohttp.ClientPayloadError):
        await peer.read()
    with pytest.raises(aiohttp.ClientPayloadError):
        await client.read()


async def test_under_read_authentication_the_peer_endpoint_answers_to_its_own_token(make_proxy: ProxyFactory) -> None:
    """[auth] read = true asks every reader for credentials, but replicas carry none of a user's: the peer
    endpoint takes its token instead (403 without it, never a 401 that credentials would answer)."""
    proxy = await make_proxy(auth={"read": True})
    assert (await proxy.get(peer_url(BIG.sha256))).status == 403
    headers = {"Authorization": await token(proxy, BIG.sha256)}
    assert (await proxy.get(peer_url(BIG.sha256), headers=headers)).status == 404  # no fill here
    assert (await proxy.get(f"/files/peerlib/{BIG.sha256}/{BIG.filename}", headers=headers)).status == 401

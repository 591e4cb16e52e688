"""Tests for proxy.upstream: which hosts shadowpi may send a request to ([upstream] file_hosts), and file downloads
from an offset (a Range request, answered 206 or 200)."""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from proxy.config_load import build_config
from proxy.errors import UpstreamUnavailable
from proxy.upstream import UpstreamClient
from tests.artifacts import build_wheel
from tests.conftest import Upstream


@pytest.mark.parametrize(
    ("upstream", "url", "allowed"),
    [
        ("https://pypi.org/simple/", "https://pypi.org/simple/x/", True),
        ("https://pypi.org/simple/", "https://files.pythonhosted.org/packages/a/b/x.whl", True),
        ("https://pypi.org/simple/", "https://FILES.pythonhosted.org:443/x.whl", True),
        ("https://pypi.org/simple/", "http://files.pythonhosted.org/x.whl", True),  # a host entry: any port
        ("https://pypi.org/simple/", "https://evil.example/x.whl", False),
        ("https://pypi.org/simple/", "http://169.254.169.254/latest/meta-data/", False),
        ("https://pypi.org/simple/", "http://pypi.org:8080/x.whl", False),  # the upstream's host, another port
        ("https://pypi.org/simple/", "file:///etc/passwd", False),
        ("https://pypi.org/simple/", "ftp://files.pythonhosted.org/x.whl", False),
        ("http://index.local:3141/root/pypi/+simple/", "http://index.local:3141/root/pypi/+f/x.whl", True),
        ("http://index.local:3141/root/pypi/+simple/", "https://index.local/root/pypi/+f/x.whl", True),  # upgrade
        ("http://index.local:3141/root/pypi/+simple/", "http://index.local:9999/x.whl", False),
        ("https://u:p@index.local/simple/", "https://index.local/files/x.whl", True),  # credentials aside
        ("http://127.0.0.1:1/simple/", "http://127.0.0.1:2/x.whl", False),
    ],
)
async def test_requests_go_only_to_the_upstream_and_file_hosts(upstream: str, url: str, allowed: bool) -> None:
    """The upstream's own origin (or its https upgrade) and the hosts in file_hosts (host: any port; host:port:
    that port) are the only places a request may go."""
    config = build_config({"upstream": {"url": upstream}}).upstream
    async with aiohttp.ClientSession() as session:
        assert UpstreamClient(session, config).allows(URL(url)) is allowed


@pytest.mark.parametrize(("url", "allowed"), [("http://cdn.local:8443/x", True), ("http://cdn.local:8444/x", False)])
async def test_file_host_with_port_allows_that_port_only(url: str, allowed: bool) -> None:
    """A host:port entry in file_hosts allows that port only."""
    config = build_config({"upstream": {"url": "https://pypi.org/simple/", "file_hosts": ["cdn.local:8443"]}})
    async with aiohttp.ClientSession() as session:
        assert UpstreamClient(session, config.upstream).allows(URL(url)) is allowed


WHEEL = build_wheel("rangelib", "1.0", payload_size=200_000)


@pytest.mark.parametrize(
    ("ranges", "start", "first"),
    [(True, 100_000, 100_000), (False, 100_000, 0), (True, 0, 0)],
    ids=["206", "200-no-range-support", "from-0-no-range"],
)
async def test_a_file_from_an_offset_is_the_bytes_from_there_or_the_whole_file(
    upstream: Upstream, ranges: bool, start: int, first: int
) -> None:
    """open_file(url, start=N) asks for `Range: bytes=N-`: a 206 is the bytes from N (its `start`), an upstream
    without Range support answers the whole file (start 0); content_length is the whole file's either way."""
    upstream.fake.add(WHEEL)
    upstream.fake.ranges = ranges
    url = f"{upstream.url.removesuffix('/simple/')}/files/rangelib/{WHEEL.filename}"
    config = build_config({"upstream": {"url": upstream.url}}).upstream
    async with aiohttp.ClientSession() as session, UpstreamClient(session, config).open_file(url, start) as remote:
        body = b"".join([chunk async for chunk in remote.chunks(65536)])
    assert (remote.start, remote.content_length, body) == (first, len(WHEEL.data), WHEEL.data[first:])
    assert upstream.fake.headers_seen[-1].get("Range") == (f"bytes={start}-" if start else None)


async def test_a_206_from_another_offset_than_asked_is_refused(upstream: Upstream) -> None:
    """A 206 whose Content-Range does not start at the offset asked for is refused before any byte is read: its
    bytes would land at the wrong place in the file."""
    upstream.fake.add(WHEEL)
    upstream.fake.range_skew = 1000
    url = f"{upstream.url.removesuffix('/simple/')}/files/rangelib/{WHEEL.filename}"
    config = build_config({"upstream": {"url": upstream.url}}).upstream
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UpstreamUnavailable, match="Content-Range 'bytes 101000-"):
            async with UpstreamClient(session, config).open_file(url, 100_000):
                pass

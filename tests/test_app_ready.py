"""Ready answers (proxy/web/ready.py): a warm page asked the same way again is answered from what the handler
answered before, byte for byte the same, while everything it rests on holds. Uploads, reloads and the TTL are
followed on the very next request (test_app_shadow.py, test_app_page_cache.py); here: the answer itself, 304s,
metrics, memory, bounds, and indexes that check their readers."""

from __future__ import annotations

import gc
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient

from proxy.keys import READY
from proxy.web.ready import SHAPE_BYTES
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import HTML, JSON, PIP_ACCEPT, ProxyFactory
from tests.publishing import write_htpasswd
from tests.test_app_ops import metric

PAGE = "/simple/biggish/"
GZIP = {"Accept-Encoding": "gzip"}
# The ways clients ask for one page: each is its own ready answer.
SHAPES: list[tuple[str, dict[str, str]]] = [
    (PAGE, {**JSON, **GZIP}),  # uv
    (PAGE, {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip, deflate"}),  # pip
    (PAGE, {**JSON, "Accept-Encoding": "identity"}),
    (PAGE, {**HTML, **GZIP}),
    (PAGE, {"Accept": "application/vnd.pypi.simple.v1+html"}),
    (PAGE + "?format=application/vnd.pypi.simple.v1+json", {"Accept-Encoding": "identity"}),
]


def _biggish(upstream: Upstream) -> None:
    """A page big enough to be sent gzipped (30 files)."""
    for i in range(30):
        upstream.fake.add(build_wheel("biggish", f"1.{i}"))


async def _answer(proxy: TestClient, path: str, headers: dict[str, str], method: str = "GET") -> tuple:
    async with proxy.request(method, path, headers=headers, auto_decompress=False) as resp:
        kept = sorted((k.lower(), v) for k, v in resp.headers.items() if k.lower() != "date")
        return resp.status, kept, await resp.read()


async def test_a_ready_answer_is_the_full_answer_again(make_proxy: ProxyFactory, upstream: Upstream):
    """For every shape of request (format, encoding, ?format=, HEAD), the answer from the ready entry has the same
    status, headers and bytes as the hit before it, which the full path computed; one entry per shape."""
    _biggish(upstream)
    proxy = await make_proxy()
    for path, headers in SHAPES:
        miss = await _answer(proxy, path, headers)
        hit = await _answer(proxy, path, headers)
        assert miss[0] == hit[0] == 200
        assert ("x-shadowpi-cache", "hit") in hit[1]
        for _ in range(2):
            assert await _answer(proxy, path, headers) == hit
        head = await _answer(proxy, path, headers, "HEAD")
        assert head == (200, hit[1], b"")
    assert len(proxy.app[READY]) == len(SHAPES)
    encodings = {dict(hit[1]).get("content-encoding") for hit in [await _answer(proxy, *s) for s in SHAPES]}
    assert encodings == {"gzip", None}


async def test_a_ready_answer_honours_if_none_match(make_proxy: ProxyFactory, upstream: Upstream):
    _biggish(upstream)
    proxy = await make_proxy()
    for _ in range(3):
        status, headers, _ = await _answer(proxy, PAGE, JSON)
        assert status == 200
    etag = dict(headers)["etag"]
    not_modified = await _answer(proxy, PAGE, {**JSON, "If-None-Match": f'"other", {etag}'})
    assert not_modified[0] == 304 and not_modified[2] == b""
    assert dict(not_modified[1])["etag"] == etag
    assert (await _answer(proxy, PAGE, {**JSON, "If-None-Match": '"other"'}))[0] == 200


async def test_every_ready_answer_is_counted(make_proxy: ProxyFactory, upstream: Upstream):
    """Page lookups and requests are counted per request, ready or not."""
    _biggish(upstream)
    proxy = await make_proxy()
    for _ in range(5):
        assert (await proxy.get(PAGE, headers=JSON)).status == 200
    text = await (await proxy.get("/metrics")).text()
    assert metric(text, "shadowpi_page_lookups_total", outcome="miss") == 1
    assert metric(text, "shadowpi_page_lookups_total", outcome="hit") == 4
    assert metric(text, "shadowpi_http_requests_total", route="/simple/{name}/", method="GET", status="200") == 5


async def test_ready_answers_keep_no_rendering_the_render_cache_let_go(
    make_proxy: ProxyFactory, populated_upstream: Upstream
):
    """With room for one rendering, a second page's rendering evicts the first: the first page's ready entry
    then holds nothing (weakly held), and the page is answered afresh (white-box: that is where bytes could
    outlive [cache] page_memory)."""
    proxy = await make_proxy(cache={"page_memory": 4096})
    for _ in range(3):
        assert (await proxy.get("/simple/tinylib/", headers=JSON)).status == 200
    first = proxy.app[READY]._ready[next(iter(proxy.app[READY]._ready))]
    assert first.rendered() is not None
    for _ in range(3):
        assert (await proxy.get("/simple/depends-on-tiny/", headers=JSON)).status == 200
    gc.collect()
    assert first.rendered() is None and first.resolved() is None
    again = await proxy.get("/simple/tinylib/", headers=JSON)
    assert again.status == 200 and "tinylib" in await again.text()


async def test_ready_answers_are_bounded(make_proxy: ProxyFactory, upstream: Upstream):
    """Made-up Accept headers cannot grow the entries past their bound: full, they are forgotten at once."""
    _biggish(upstream)
    proxy = await make_proxy()
    proxy.app[READY]._entries = 3
    expected = await _answer(proxy, PAGE, JSON)
    for i in range(20):
        accept = f"application/vnd.pypi.simple.v1+json, text/x-made-up-{i}; q=0.5"
        for _ in range(2):
            status, _, body = await _answer(proxy, PAGE, {"Accept": accept})
            assert status == 200 and body == expected[2]
        assert len(proxy.app[READY]) <= 3


async def test_pages_of_an_index_that_checks_its_readers_are_never_ready(
    make_proxy: ProxyFactory, upstream: Upstream, tmp_path: Path
):
    """An index readable by some decides per reader, so its pages always take the full path: alice's warm page
    never answers the next client, who is asked for credentials (401) or refused (403)."""
    _biggish(upstream)
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "pw", "bob": "pw"})
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd)},
                             indexes={"team": {"bases": ["root"], "upstream": True, "read": ["alice"]}})
    team_page = "/index/team/simple/biggish/"
    alice = {"Authorization": aiohttp.encode_basic_auth("alice", "pw")}
    bob = {"Authorization": aiohttp.encode_basic_auth("bob", "pw")}
    outcomes = [(await proxy.get(team_page, headers={**JSON, **alice})).headers["X-Shadowpi-Cache"] for _ in range(3)]
    assert outcomes == ["miss", "hit", "hit"]
    assert (await proxy.get(team_page, headers=JSON)).status == 401
    assert (await proxy.get(team_page, headers={**JSON, **bob})).status == 403
    assert len(proxy.app[READY]) == 0
    for _ in range(3):  # root's page (open to all) is ready
        assert (await proxy.get(PAGE, headers=JSON)).status == 200
    assert len(proxy.app[READY]) == 1


async def test_long_request_shapes_are_never_kept(make_proxy: ProxyFactory, upstream: Upstream):
    """Shapes past SHAPE_BYTES (headers near aiohttp's 8 KiB limit) are answered in full every time, never kept:
    4,096 of them would hold 100 MB."""
    _biggish(upstream)
    proxy = await make_proxy()
    expected = await _answer(proxy, PAGE, JSON)
    padding = ", ".join(f"text/x-padding-{i}; q=0.001" for i in range(40))
    accept = f"application/vnd.pypi.simple.v1+json, {padding}"
    assert len(accept) > SHAPE_BYTES
    for _ in range(3):
        status, _, body = await _answer(proxy, PAGE, {"Accept": accept})
        assert status == 200 and body == expected[2]
    assert len(proxy.app[READY]) == 0

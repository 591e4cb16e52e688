"""Tests for tests/fakes.py: the fake upstream index behaves as documented on the wire."""

from __future__ import annotations

import asyncio
import hashlib
import json
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from tests.artifacts import build_wheel
from tests.conftest import SampleDists, Upstream
from tests.fakes import SMUGGLED, FakeIndex, prefers_json, synthetic_filename

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
HTML = {"Accept": "text/html"}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, populated_upstream: Upstream) -> TestClient[Any, Any]:
    """An aiohttp client talking to the populated fake index."""
    return await aiohttp_client(populated_upstream.server)


@pytest.fixture
def fake(populated_upstream: Upstream) -> FakeIndex:
    return populated_upstream.fake


class _Anchors(HTMLParser):
    """Collects (attrs, text) for every <a> and the content of every <meta name=...>."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.meta: dict[str, str | None] = {}
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = dict(attrs)
        elif tag == "meta":
            found = dict(attrs)
            self.meta[found.get("name") or ""] = found.get("content")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.anchors.append((self._open, data))
            self._open = None


def _parse_html(text: str) -> _Anchors:
    parser = _Anchors()
    parser.feed(text)
    return parser


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/html", False),
        ("application/vnd.pypi.simple.v1+json", True),
        ("application/vnd.pypi.simple.latest+json", True),
        (PIP_ACCEPT, True),
        ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01", True),
        ("application/vnd.pypi.simple.v1+json;q=0.5, text/html", False),
        ("application/vnd.pypi.simple.v1+json, text/html", False),  # a tie goes to HTML, as on PyPI
        ("application/*", False),  # matches v1+json and v1+html equally
        ("*/*, application/vnd.pypi.simple.v1+json;q=0", False),
        ("application/json", False),
    ],
)
def test_prefers_json_table(accept: str | None, expected: bool) -> None:
    """JSON is chosen only when the Accept header strictly prefers it over every HTML type."""
    assert prefers_json(accept) is expected


async def test_negotiated_json_detail_follows_pep691_and_pep700(
    client: TestClient[Any, Any], dists: SampleDists
) -> None:
    """pip's Accept header gets a v1.1 JSON page with absolute URLs, hashes, sizes and metadata hashes."""
    resp = await client.get("/simple/tinylib/", headers={"Accept": PIP_ACCEPT})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    assert resp.headers["Vary"] == "Accept"
    page = json.loads(await resp.text())
    assert (page["meta"], page["name"], page["versions"]) == ({"api-version": "1.1"}, "tinylib", ["1.0", "2.0"])
    wheel = next(f for f in page["files"] if f["filename"] == dists.tinylib_1.filename)
    assert wheel == {
        "filename": "tinylib-1.0-py3-none-any.whl",
        "url": str(client.make_url("/files/tinylib/tinylib-1.0-py3-none-any.whl")),
        "hashes": {"sha256": dists.tinylib_1.sha256},
        "requires-python": ">=3.8",
        "size": dists.tinylib_1.size,
        "upload-time": "2025-01-01T00:00:00.000000Z",
        "yanked": False,
        "core-metadata": {"sha256": dists.tinylib_1.metadata_sha256},
    }
    assert URL(wheel["url"]).is_absolute()
    assert {f["filename"] for f in page["files"]} == {
        dists.tinylib_1.filename, dists.tinylib_2.filename, dists.tinylib_2_sdist.filename,
    }  # fmt: skip


@pytest.mark.parametrize("headers", [{}, HTML, {"Accept": "*/*"}])
async def test_negotiated_html_detail_follows_pep503(
    client: TestClient[Any, Any], dists: SampleDists, headers: dict[str, str]
) -> None:
    """Without a JSON preference the page is PEP 503 HTML with relative hrefs and escaped data attributes."""
    resp = await client.get("/simple/tinylib/", headers=headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    text = await resp.text()
    assert 'data-requires-python="&gt;=3.8"' in text
    parsed = _parse_html(text)
    assert parsed.meta["pypi:repository-version"] == "1.0"
    attrs, label = next(a for a in parsed.anchors if a[1] == dists.tinylib_1.filename)
    meta_hash = f"sha256={dists.tinylib_1.metadata_sha256}"
    assert attrs == {
        "href": f"../../files/tinylib/{dists.tinylib_1.filename}#sha256={dists.tinylib_1.sha256}",
        "data-requires-python": ">=3.8",
        "data-core-metadata": meta_hash,
        "data-dist-info-metadata": meta_hash,
    }
    assert label == dists.tinylib_1.filename


async def test_relative_html_href_resolves_to_the_file(client: TestClient[Any, Any], dists: SampleDists) -> None:
    """Resolving an HTML href against the page URL downloads bytes matching the #sha256 fragment."""
    page_url = client.make_url("/simple/tinylib/")
    parsed = _parse_html(await (await client.session.get(page_url)).text())
    href = next(a["href"] for a, label in parsed.anchors if label == dists.tinylib_2.filename)
    assert href is not None
    url = page_url.join(URL(href))
    data = await (await client.session.get(url.with_fragment(None))).read()
    assert hashlib.sha256(data).hexdigest() == url.fragment.removeprefix("sha256=") == dists.tinylib_2.sha256


@pytest.mark.parametrize(("mode", "is_json"), [("json", True), ("html", False)])
async def test_fixed_mode_ignores_accept(
    client: TestClient[Any, Any], fake: FakeIndex, mode: Any, is_json: bool
) -> None:
    """mode="json"/"html" serves that format whatever the client asks for."""
    fake.mode = mode
    for headers in (JSON, HTML, {}):
        resp = await client.get("/simple/tinylib/", headers=headers)
        assert resp.headers["Content-Type"].startswith("application/vnd.pypi.simple.v1+json") is is_json


async def test_format_query_overrides_accept(client: TestClient[Any, Any]) -> None:
    """?format=<media type> selects the format even against the Accept header."""
    resp = await client.get("/simple/tinylib/", params={"format": "application/vnd.pypi.simple.v1+json"}, headers=HTML)
    assert resp.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    resp = await client.get("/simple/tinylib/", params={"format": "text/html"}, headers=JSON)
    assert resp.headers["Content-Type"].startswith("text/html")


async def test_root_list_in_both_formats(client: TestClient[Any, Any]) -> None:
    """/simple/ lists the normalized project names as JSON or as relative HTML links."""
    page = json.loads(await (await client.get("/simple/", headers=JSON)).text())
    assert page == {"meta": {"api-version": "1.1"}, "projects": [{"name": "depends-on-tiny"}, {"name": "tinylib"}]}
    parsed = _parse_html(await (await client.get("/simple/", headers=HTML)).text())
    assert [(a["href"], label) for a, label in parsed.anchors] == [
        ("depends-on-tiny/", "depends-on-tiny"),
        ("tinylib/", "tinylib"),
    ]


async def test_unknown_project_and_file_are_404(client: TestClient[Any, Any]) -> None:
    """Unknown projects, files and metadata files answer 404."""
    for path in ("/simple/nope/", "/files/tinylib/tinylib-9.9-py3-none-any.whl", "/files/nope/x.whl.metadata"):
        assert (await client.get(path)).status == 404, path


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple/TinyLib/", "/simple/tinylib/"),
        ("/simple/Depends_On.Tiny/?format=text/html", "/simple/depends-on-tiny/?format=text/html"),
        ("/simple/tinylib", "/simple/tinylib/"),
        ("/simple/Unknown_Thing/", "/simple/unknown-thing/"),
    ],
)
async def test_non_normalized_or_slashless_names_redirect(
    client: TestClient[Any, Any], path: str, location: str
) -> None:
    """Non-normalized names and missing slashes get a 301 to the normalized URL, query kept (like PyPI)."""
    resp = await client.get(path, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (301, location)


async def test_etag_revalidation_answers_304(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """Pages carry ETag and Last-Modified; a matching If-None-Match gets 304 until the page changes."""
    first = await client.get("/simple/tinylib/", headers=JSON)
    etag = first.headers["ETag"]
    assert first.headers["Last-Modified"] == fake.last_modified
    again = await client.get("/simple/tinylib/", headers=JSON | {"If-None-Match": f'"other", {etag}'})
    assert (again.status, await again.read(), again.headers["ETag"]) == (304, b"", etag)
    assert fake.not_modified == 1
    assert fake.headers_seen[-1]["If-None-Match"] == f'"other", {etag}'
    html = await client.get("/simple/tinylib/", headers=HTML | {"If-None-Match": etag})
    assert html.status == 200  # a different representation has a different ETag
    fake.add(build_wheel("tinylib", "3.0"))
    changed = await client.get("/simple/tinylib/", headers=JSON | {"If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag


async def test_if_modified_since_answers_304(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """If-Modified-Since at or after Last-Modified gets 304; an older date gets the page."""
    fresh = await client.get("/simple/tinylib/", headers={"If-Modified-Since": fake.last_modified})
    stale = await client.get("/simple/tinylib/", headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert (fresh.status, stale.status, fake.not_modified) == (304, 200, 1)


async def test_etags_can_be_switched_off(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """With etags=False pages have no validators and conditional requests get a full 200."""
    fake.etags = False
    resp = await client.get("/simple/tinylib/", headers={"If-None-Match": "*"})
    assert resp.status == 200
    assert "ETag" not in resp.headers
    assert "Last-Modified" not in resp.headers


@pytest.mark.parametrize("path", ["/simple/", "/simple/tinylib/", "/files/tinylib/tinylib-1.0-py3-none-any.whl"])
async def test_down_answers_503_everywhere(client: TestClient[Any, Any], fake: FakeIndex, path: str) -> None:
    """down=True makes every route answer 503 (or down_status), and the request is still logged."""
    fake.down = True
    assert (await client.get(path)).status == 503
    fake.down_status = 502
    assert (await client.get(path)).status == 502
    assert fake.hits[path] == 2


async def test_drop_closes_the_connection_without_a_response(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """drop=True closes the connection after logging: the client sees a disconnect, not a status."""
    fake.drop = True
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.get("/simple/tinylib/")
    assert fake.hits["/simple/tinylib/"] >= 1
    fake.drop = False
    assert (await client.get("/simple/tinylib/")).status == 200


async def test_cut_after_truncates_the_body_below_content_length(
    client: TestClient[Any, Any], fake: FakeIndex, dists: SampleDists
) -> None:
    """cut_after=N announces the full Content-Length, sends N bytes, then closes: ClientPayloadError."""
    fake.cut_after = 100
    resp = await client.get(f"/files/tinylib/{dists.tinylib_1.filename}")
    assert resp.status == 200
    assert resp.content_length == dists.tinylib_1.size
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_cut_after_really_truncates_on_the_wire(upstream: Upstream) -> None:
    """Read over a raw socket: full Content-Length header, exactly N body bytes, then EOF."""
    fake, server = upstream.fake, upstream.server
    wheel = fake.add(build_wheel("big", "1.0", payload_size=5000)).artifact
    fake.cut_after, fake.file_chunk_size = 1000, 300  # several writes before the cut
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET /files/big/{wheel.filename} HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=5)  # until EOF
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert f"Content-Length: {wheel.size}".encode() in head.split(b"\r\n")
    assert body == wheel.data[:1000]


async def test_lying_hash_is_published_while_real_bytes_are_served(
    client: TestClient[Any, Any], fake: FakeIndex
) -> None:
    """declared_sha256 puts a false hash on both page formats; the file's real hash differs."""
    lie = "0" * 64
    liar = fake.add(build_wheel("liar", "1.0"), declared_sha256=lie)
    page = json.loads(await (await client.get("/simple/liar/", headers=JSON)).text())
    assert page["files"][0]["hashes"] == {"sha256": lie}
    parsed = _parse_html(await (await client.get("/simple/liar/", headers=HTML)).text())
    assert parsed.anchors[0][0]["href"] == f"../../files/liar/{liar.filename}#sha256={lie}"
    data = await (await client.get(f"/files/liar/{liar.filename}")).read()
    assert hashlib.sha256(data).hexdigest() == liar.artifact.sha256 != lie


async def test_empty_declared_hash_publishes_no_hash(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """declared_sha256="" gives `hashes: {}` in JSON and an href without a fragment in HTML."""
    f = fake.add(build_wheel("nohash", "1.0"), declared_sha256="")
    page = json.loads(await (await client.get("/simple/nohash/", headers=JSON)).text())
    assert page["files"][0]["hashes"] == {}
    parsed = _parse_html(await (await client.get("/simple/nohash/", headers=HTML)).text())
    assert parsed.anchors[0][0]["href"] == f"../../files/nohash/{f.filename}"


async def test_yanked_and_metadata_flags_render_in_both_formats(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """Yank reasons and missing metadata appear as data attributes and JSON keys; .metadata obeys them."""
    fake.add(build_wheel("flags", "1.0"), yanked="broken <build>", serve_metadata=False)
    fake.add(build_wheel("flags", "2.0"), yanked=True, requires_python='>=3.9,!="3.10"')
    page = json.loads(await (await client.get("/simple/flags/", headers=JSON)).text())
    assert [(f["yanked"], f["core-metadata"]) for f in page["files"]] == [
        ("broken <build>", False),
        (True, {"sha256": fake.projects["flags"][1].artifact.metadata_sha256}),
    ]
    text = await (await client.get("/simple/flags/", headers=HTML)).text()
    assert 'data-yanked="broken &lt;build&gt;"' in text
    assert 'data-requires-python="&gt;=3.9,!=&quot;3.10&quot;"' in text
    (a1, _), (a2, _) = _parse_html(text).anchors
    assert "data-core-metadata" not in a1
    assert (a2["data-yanked"], a2["data-requires-python"]) == ("", '>=3.9,!="3.10"')
    assert (await client.get("/files/flags/flags-1.0-py3-none-any.whl.metadata")).status == 404
    assert (await client.get("/files/flags/flags-2.0-py3-none-any.whl.metadata")).status == 200


async def test_metadata_file_matches_advertised_hash(client: TestClient[Any, Any], dists: SampleDists) -> None:
    """`<file>.metadata` serves the METADATA bytes whose sha256 the page advertises (PEP 658)."""
    page = json.loads(await (await client.get("/simple/tinylib/", headers=JSON)).text())
    entry = next(f for f in page["files"] if f["filename"] == dists.tinylib_2.filename)
    resp = await client.session.get(entry["url"] + ".metadata")  # TestClient.get takes only paths
    body = await resp.read()
    assert body == dists.tinylib_2.metadata
    assert hashlib.sha256(body).hexdigest() == entry["core-metadata"]["sha256"]


async def test_file_download_and_head(client: TestClient[Any, Any], dists: SampleDists) -> None:
    """Files come back whole as application/octet-stream with Content-Length; HEAD sends only headers."""
    path = f"/files/tinylib/{dists.tinylib_2_sdist.filename}"
    resp = await client.get(path)
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert "Content-Encoding" not in resp.headers
    assert (resp.content_length, await resp.read()) == (dists.tinylib_2_sdist.size, dists.tinylib_2_sdist.data)
    head = await client.head(path)
    assert (head.status, head.content_length, await head.read()) == (200, dists.tinylib_2_sdist.size, b"")


async def test_gate_holds_requests_until_released(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """With a gate set, requests are logged on arrival but not answered until the gate opens."""
    fake.gate = asyncio.Event()
    page = asyncio.create_task(client.get("/simple/tinylib/"))
    file = asyncio.create_task(client.get("/files/tinylib/tinylib-1.0-py3-none-any.whl"))
    await asyncio.wait_for(fake.wait_for_request("/simple/tinylib/"), timeout=5)
    await asyncio.wait_for(fake.wait_for_request("/files/tinylib/tinylib-1.0-py3-none-any.whl"), timeout=5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(page), timeout=0.05)
    assert not page.done()
    assert not file.done()
    fake.gate.set()
    resp = await asyncio.wait_for(page, timeout=5)
    assert resp.status == 200
    assert (await asyncio.wait_for(file, timeout=5)).status == 200


async def test_file_stream_gate_delivers_first_chunk_before_the_rest(
    client: TestClient[Any, Any], fake: FakeIndex
) -> None:
    """The first chunk reaches the client while the stream gate is closed; the rest follows its release."""
    big = fake.add(build_wheel("big", "1.0", payload_size=300_000))
    fake.file_chunk_size, fake.file_stream_gate = 64 * 1024, asyncio.Event()
    resp = await client.get(f"/files/big/{big.filename}")
    first = await asyncio.wait_for(resp.content.readexactly(64 * 1024), timeout=5)
    assert first == big.artifact.data[: 64 * 1024]
    rest = asyncio.create_task(resp.content.read())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not rest.done()
    fake.file_stream_gate.set()
    assert first + await asyncio.wait_for(rest, timeout=5) == big.artifact.data


async def test_requests_are_logged_in_order_with_headers(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """requests/methods/headers_seen record each request in order; hits counts by path; clear_log resets."""
    await client.get("/simple/tinylib/?format=text/html", headers={"Accept": PIP_ACCEPT})
    await client.get("/simple/tinylib/")
    await client.head("/files/tinylib/tinylib-1.0-py3-none-any.whl")
    assert fake.requests == [
        "/simple/tinylib/?format=text/html",
        "/simple/tinylib/",
        "/files/tinylib/tinylib-1.0-py3-none-any.whl",
    ]
    assert fake.methods == ["GET", "GET", "HEAD"]
    assert fake.headers_seen[0]["accept"] == PIP_ACCEPT
    assert fake.hits == {"/simple/tinylib/": 2, "/files/tinylib/tinylib-1.0-py3-none-any.whl": 1}
    fake.clear_log()
    assert (fake.requests, fake.methods, fake.headers_seen, fake.hits) == ([], [], [], {})


def test_add_replaces_same_filename_and_inherits_requires_python(dists: SampleDists) -> None:
    """add() keys by normalized name, replaces a file of the same name and copies Requires-Python."""
    fake = FakeIndex()
    fake.add(dists.tinylib_1)
    replaced = fake.add(dists.tinylib_1, yanked="bad")
    assert fake.projects == {"tinylib": [replaced]}
    assert replaced.requires_python == ">=3.8"
    assert fake.add(dists.tinylib_2, requires_python=None).requires_python is None
    assert fake.find("TinyLib", dists.tinylib_2.filename) is fake.projects["tinylib"][1]


# --- the hostile upstream ---


async def _raw_get(server: Any, path: str) -> bytes:
    """Everything the server sends for one request on a fresh connection, until it closes the connection."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=5)  # until EOF
    writer.close()
    await writer.wait_closed()
    return raw


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_oversend_sends_surplus_bytes_without_a_length(upstream: Upstream, framing: Any) -> None:
    """oversend appends bytes the page never declared, in a body without Content-Length (chunked or ended by
    closing the connection): a reader that trusts the wire gets more than the page's `size`."""
    fake = upstream.fake
    wheel = fake.add(build_wheel("over", "1.0")).artifact
    fake.oversend, fake.file_framing = SMUGGLED, framing
    raw = await _raw_get(upstream.server, f"/files/over/{wheel.filename}")
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = head.lower().split(b"\r\n")
    assert not any(h.startswith(b"content-length") for h in headers)
    if framing == "chunked":
        assert b"transfer-encoding: chunked" in headers
    async with aiohttp.ClientSession() as session:
        async with session.get(upstream.server.make_url(f"/files/over/{wheel.filename}")) as resp:
            assert await resp.read() == wheel.data + SMUGGLED
        async with session.get(upstream.url + "over/", headers=JSON) as resp:
            page = json.loads(await resp.text())
    assert page["files"][0]["size"] == wheel.size
    if framing == "close":
        assert body == wheel.data + SMUGGLED  # on the wire: no framing at all


async def test_file_pace_lets_out_one_chunk_per_release(upstream: Upstream) -> None:
    """file_pace trickles a body: each chunk waits for one release() of the semaphore, so the test sets the pace."""
    fake = upstream.fake
    wheel = fake.add(build_wheel("slow", "1.0")).artifact
    fake.file_pace, fake.file_chunk_size = asyncio.Semaphore(0), 10
    async with aiohttp.ClientSession() as session:
        resp = await session.get(upstream.server.make_url(f"/files/slow/{wheel.filename}"))
        assert (resp.status, resp.content_length) == (200, wheel.size)  # headers go out before any byte
        for i in range(3):
            fake.file_pace.release()
            assert await asyncio.wait_for(resp.content.readexactly(10), timeout=5) == wheel.data[i * 10 : i * 10 + 10]
        rest = asyncio.create_task(resp.content.read())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not rest.done()  # no permit, no byte
        for _ in range(wheel.size // 10 + 1):
            fake.file_pace.release()
        assert await asyncio.wait_for(rest, timeout=5) == wheel.data[30:]


async def test_redirects_answer_before_anything_else(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """redirects maps a path to a Location, answered with redirect_status (the request is still logged)."""
    fake.redirects["/simple/tinylib/"] = "http://127.0.0.1:9/elsewhere/"
    fake.redirect_status = 307
    resp = await client.get("/simple/tinylib/", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (307, "http://127.0.0.1:9/elsewhere/")
    assert fake.hits["/simple/tinylib/"] == 1


async def test_file_base_url_links_files_on_another_host(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """file_base_url makes both page formats link every file at another origin."""
    fake.file_base_url = "http://127.0.0.1:9"
    page = json.loads(await (await client.get("/simple/tinylib/", headers=JSON)).text())
    assert {URL(f["url"]).origin() for f in page["files"]} == {URL("http://127.0.0.1:9")}
    parsed = _parse_html(await (await client.get("/simple/tinylib/", headers=HTML)).text())
    assert all((a["href"] or "").startswith("http://127.0.0.1:9/files/tinylib/") for a, _ in parsed.anchors)


async def test_huge_pages_list_synthetic_files_and_padding(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """extra_files adds that many synthetic files to both formats; page_padding makes the bodies that much bigger."""
    small = len(await (await client.get("/simple/tinylib/", headers=JSON)).read())
    fake.extra_files, fake.page_padding = 1000, 100_000
    page = json.loads(await (await client.get("/simple/tinylib/", headers=JSON)).text())
    assert len(page["files"]) == 1003
    assert page["files"][-1]["filename"] == synthetic_filename("tinylib", 999)
    assert len(json.dumps(page, indent=1)) > small + 100_000
    html = await (await client.get("/simple/tinylib/", headers=HTML)).text()
    assert len(_parse_html(html).anchors) == 1003
    assert len(html) > 100_000


async def test_odd_hashes_and_listed_filenames_are_published(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """extra_hashes are published beside the sha256 (or replace it); listed_filename is what the pages claim."""
    f = fake.add(build_wheel("odd", "1.0"), extra_hashes={"shake_128": "ab" * 16, "whirl": "00"})
    fake.add(build_wheel("odd", "2.0"), extra_hashes={"sha256": "not-hex"}, listed_filename="../../evil.whl")
    page = json.loads(await (await client.get("/simple/odd/", headers=JSON)).text())
    assert page["files"][0]["hashes"] == {"sha256": f.artifact.sha256, "shake_128": "ab" * 16, "whirl": "00"}
    assert (page["files"][1]["filename"], page["files"][1]["hashes"]) == ("../../evil.whl", {"sha256": "not-hex"})
    assert page["files"][1]["url"].endswith("/files/odd/..%2F..%2Fevil.whl")
    (first, _), (second, label) = _parse_html(await (await client.get("/simple/odd/", headers=HTML)).text()).anchors
    assert first["href"] == f"../../files/odd/{f.filename}#sha256={f.artifact.sha256}&shake_128={'ab' * 16}&whirl=00"
    assert (second["href"], label) == ("../../files/odd/..%2F..%2Fevil.whl#sha256=not-hex", "../../evil.whl")


async def test_chunked_pages_have_no_content_length(client: TestClient[Any, Any], fake: FakeIndex) -> None:
    """chunked_pages sends pages without a Content-Length: their size is known only once they are read."""
    fake.chunked_pages = True
    resp = await client.get("/simple/tinylib/", headers=JSON)
    assert "Content-Length" not in resp.headers
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert json.loads(await resp.text())["name"] == "tinylib"

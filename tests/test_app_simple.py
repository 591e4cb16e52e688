"""HTTP behaviour of /simple/: negotiation, redirects, name validation, per-file data and URL rewriting."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from aiohttp.test_utils import TestClient

from tests.artifacts import build_wheel
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import HTML, JSON, PIP_ACCEPT, ProxyFactory

V1_JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"


@pytest.mark.parametrize(
    ("headers", "query", "content_type"),
    [
        ({"Accept": PIP_ACCEPT}, "", V1_JSON),
        ({}, "", "text/html"),
        ({"Accept": "*/*"}, "", "text/html"),
        ({"Accept": V1_HTML}, "", V1_HTML),
        ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, "", "text/html"),
        ({"Accept": "application/xml"}, "", "text/html"),
        ({"Accept": "text/html"}, f"?format={V1_JSON}", V1_JSON),
        ({}, "?format=application/vnd.pypi.simple.latest+json", V1_JSON),
    ],
)
async def test_negotiation_picks_format(proxy: TestClient, headers: dict[str, str], query: str, content_type: str):
    """Accept (with q-values) and ?format= choose the format; HTML is the fallback; Vary: Accept is always set."""
    resp = await proxy.get(f"/simple/tinylib/{query}", headers=headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == content_type
    assert "Accept" in resp.headers["Vary"]
    body = await resp.text()
    if content_type == V1_JSON:
        assert json.loads(body)["name"] == "tinylib"
    else:
        assert 'name="pypi:repository-version"' in body


async def test_unknown_format_query_is_406(proxy: TestClient):
    """An explicit ?format= that shadowpi cannot produce is refused, not silently replaced."""
    resp = await proxy.get("/simple/tinylib/?format=application/xml")
    assert resp.status == 406


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple/TinyLib/", "/simple/tinylib/"),
        ("/simple/Depends_On.Tiny/", "/simple/depends-on-tiny/"),
        ("/simple/tinylib", "/simple/tinylib/"),
        ("/simple/TinyLib", "/simple/tinylib/"),
        ("/simple", "/simple/"),
        ("/simple/TinyLib/?format=text/html", "/simple/tinylib/?format=text/html"),
    ],
)
async def test_non_canonical_urls_redirect(proxy: TestClient, upstream: Upstream, path: str, location: str):
    """Non-normalized names and missing trailing slashes get a 301 to the canonical URL, before any upstream I/O."""
    resp = await proxy.get(path, allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == location
    assert upstream.fake.requests == []


@pytest.mark.parametrize(
    "path",
    ["/simple/foo%00bar/", "/simple/foo%0Abar/", "/simple/-foo/", "/simple/foo!/", "/simple/..%2F..%2Fetc/",
     "/simple/foo%2Fbar/", "/simple/a%20b/", "/simple/%2E%2Efoo/"],
)
async def test_invalid_names_are_rejected_without_upstream_request(proxy: TestClient, upstream: Upstream, path: str):
    """Control characters, NUL, slashes and dots never reach upstream: the client gets a 4xx."""
    resp = await proxy.get(path, allow_redirects=False)
    assert 400 <= resp.status < 500
    assert upstream.fake.requests == []


async def test_unknown_project_is_404(proxy: TestClient):
    """A project upstream does not know is a 404 with a message."""
    resp = await proxy.get("/simple/no-such-project/")
    assert resp.status == 404
    assert "no-such-project" in await resp.text()


async def test_json_page_keeps_upstream_file_data(make_proxy: ProxyFactory, upstream: Upstream):
    """Hash, requires-python, yank reason, core metadata, size, upload time and versions survive the proxy."""
    wheel = build_wheel("keeper", "1.0")
    old = build_wheel("keeper", "0.9")
    upstream.fake.add(wheel, requires_python=">=3.9", upload_time="2025-02-03T04:05:06.000000Z")
    upstream.fake.add(old, yanked="broken build", serve_metadata=False)
    proxy = await make_proxy()
    data = json.loads(await (await proxy.get("/simple/keeper/", headers=JSON)).text())
    assert data["meta"]["api-version"] == "1.1"
    assert data["versions"] == ["0.9", "1.0"]
    files = {f["filename"]: f for f in data["files"]}
    new = files[wheel.filename]
    assert new["hashes"] == {"sha256": wheel.sha256}
    assert new["requires-python"] == ">=3.9"
    assert new["yanked"] is False
    assert new["core-metadata"] == {"sha256": _sha256(wheel.metadata)}
    assert new["size"] == wheel.size
    assert new["upload-time"] == "2025-02-03T04:05:06.000000Z"
    assert new["url"] == f"../../files/keeper/{wheel.sha256}/{wheel.filename}"
    assert files[old.filename]["yanked"] == "broken build"
    assert files[old.filename]["core-metadata"] is False
    assert "dist-info-metadata" not in new  # PEP 714: pip fails on the legacy JSON key


async def test_html_page_from_html_upstream(make_proxy: ProxyFactory, upstream: Upstream):
    """An HTML-only upstream is parsed; the HTML page carries PEP 592/658/714 attributes and our own URLs."""
    upstream.fake.mode = "html"
    wheel = build_wheel("htmlonly", "1.0")
    upstream.fake.add(wheel, requires_python=">=3.8", yanked="oops")
    proxy = await make_proxy()
    body = await (await proxy.get("/simple/htmlonly/", headers=HTML)).text()
    anchor = re.search(r"<a [^>]*>", body)
    assert anchor is not None
    tag = anchor.group(0)
    assert f'href="../../files/htmlonly/{wheel.sha256}/{wheel.filename}#sha256={wheel.sha256}"' in tag
    assert 'data-requires-python="&gt;=3.8"' in tag
    assert 'data-yanked="oops"' in tag
    meta = f'"sha256={_sha256(wheel.metadata)}"'
    assert f"data-core-metadata={meta}" in tag
    assert f"data-dist-info-metadata={meta}" in tag
    assert '<meta name="pypi:repository-version" content="1.0">' in body  # no sizes from HTML: claim 1.0 only


async def test_every_file_url_points_at_shadowpi(proxy: TestClient, dists: SampleDists):
    """No upstream URL leaks into a page: every download goes through the cache."""
    data = json.loads(await (await proxy.get("/simple/tinylib/", headers=JSON)).text())
    assert data["files"]
    assert all(f["url"].startswith("../../files/tinylib/") for f in data["files"])
    html = await (await proxy.get("/simple/tinylib/", headers=HTML)).text()
    assert "127.0.0.1" not in html


async def test_root_lists_known_projects_without_asking_upstream(proxy: TestClient, upstream: Upstream):
    """/simple/ lists projects shadowpi has cached; it never downloads upstream's full list."""
    await proxy.get("/simple/tinylib/")
    upstream.fake.clear_log()
    resp = await proxy.get("/simple/", headers=JSON)
    assert resp.headers["Content-Type"] == V1_JSON
    assert [p["name"] for p in json.loads(await resp.text())["projects"]] == ["tinylib"]
    assert upstream.fake.requests == []
    html = await (await proxy.get("/simple/")).text()
    assert 'href="tinylib/"' in html


async def test_etag_and_conditional_request(proxy: TestClient):
    """Pages carry an ETag; If-None-Match answers 304 with no body; cache headers are short-lived."""
    first = await proxy.get("/simple/tinylib/", headers=JSON)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=60"
    second = await proxy.get("/simple/tinylib/", headers={**JSON, "If-None-Match": etag})
    assert second.status == 304
    assert await second.read() == b""
    other_format = await proxy.get("/simple/tinylib/", headers={**HTML, "If-None-Match": etag})
    assert other_format.status == 200


async def test_gzip_when_accepted(make_proxy: ProxyFactory, upstream: Upstream):
    """Large pages are sent gzip-compressed to clients that accept it, and the bytes decompress to the page."""
    for i in range(30):
        upstream.fake.add(build_wheel("biggish", f"1.{i}"))
    proxy = await make_proxy()
    plain = await (await proxy.get("/simple/biggish/", headers=JSON)).read()
    resp = await proxy.get("/simple/biggish/", headers={**JSON, "Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await resp.read()) == plain


def _sha256(data: bytes | None) -> str:
    import hashlib

    assert data is not None
    return hashlib.sha256(data).hexdigest()


async def test_reason_phrase_of_a_non_ascii_name_arrives_readable(proxy: TestClient):
    """The reason phrase (which pip and twine print) is ASCII with escapes: aiohttp writes the status line as UTF-8
    and clients decode it as latin-1, so 'ù' used to arrive as 'Ã¹' (found by the fuzz suite). The body keeps the
    message as UTF-8."""
    resp = await proxy.get("/simple/%C3%B9/")
    assert resp.status == 400
    assert resp.reason == "'\\xf9' is not a valid project name"
    assert "'ù' is not a valid project name" in await resp.text()

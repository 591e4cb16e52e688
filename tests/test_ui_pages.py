"""The web interface's read-only pages over HTTP: home, search, project pages, READMEs, escaping, headers, auth."""

from __future__ import annotations

import pytest

from proxy.keys import FILES
from tests.artifacts import build_wheel
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import HTML, JSON, ProxyFactory
from tests.ui_helpers import (
    HOSTILE_README,
    Ui,
    acme_sdist,
    acme_wheel,
    assert_security_headers,
    basic,
    start_ui,
)


@pytest.fixture
async def ui(make_proxy: ProxyFactory, upstream: Upstream) -> Ui:
    return await start_ui(make_proxy, upstream)


# --- home -------------------------------------------------------------------------------------------------


async def test_home_shows_search_recent_releases_and_setup_for_this_host(ui: Ui):
    """GET / is the home page: a search box, recent private releases, and pip/uv/poetry/twine settings naming
    the host the browser used (pip's trusted-host only for plain http on another host)."""
    await ui.upload(acme_wheel("1.0"), acme_wheel("1.1"))
    resp = await ui.client.get("/", headers={"Host": "pypi.corp:8080"})
    html = await resp.text()
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert '<form role="search"' in html
    assert html.index('href="./project/acme-utils/">acme-utils</a></td><td>1.1') < html.index("<td>1.0</td>")
    assert "pip install --index-url http://pypi.corp:8080/simple/ PACKAGE" in html
    assert "trusted-host = pypi.corp:8080" in html
    assert "twine upload --repository-url http://pypi.corp:8080/ " in html
    assert "uv publish --publish-url http://pypi.corp:8080/legacy/ " in html
    local = await (await ui.client.get("/")).text()
    assert "trusted-host" not in local  # pip trusts 127.0.0.1 without being told


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [([], "http://shadowpi.test/simple/"), (["127.0.0.1"], "https://pypi.corp/mirror/simple/"),
     (["10.0.0.0/8"], "http://shadowpi.test/simple/")],
)
async def test_forwarded_headers_count_only_from_trusted_proxies(
    make_proxy: ProxyFactory, upstream: Upstream, trusted: list[str], expected: str
):
    """X-Forwarded-Proto/-Host/-Prefix change the URLs shown only when the peer is in [ui] trusted_proxies."""
    ui = await start_ui(make_proxy, upstream, ui={"trusted_proxies": trusted})
    headers = {"Host": "shadowpi.test", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "pypi.corp",
               "X-Forwarded-Prefix": "/mirror"}
    _status, html = await ui.page("/", headers=headers)
    assert f"pip install --index-url {expected} PACKAGE" in html


async def test_a_host_header_that_is_no_host_name_is_not_echoed(ui: Ui):
    """The Host header is shown in the install lines only when it is a host name (else "localhost")."""
    _status, html = await ui.page("/", headers={"Host": 'x"onmouseover="alert(1)'})
    assert "onmouseover" not in html
    assert "pip install --index-url http://localhost/simple/ PACKAGE" in html


# --- search and lists -------------------------------------------------------------------------------------


async def test_search_lists_private_and_cached_projects_with_latest_and_last_upload(
    ui: Ui, dists: SampleDists
):
    """Search finds private projects and cached upstream ones, with the latest version and last upload time;
    the kind filter narrows the list. Only cached upstream projects are listed (upstream is not asked)."""
    dists.publish(ui.upstream.fake)
    await ui.upload(acme_wheel("1.0"), acme_wheel("2.0rc1"))
    assert (await ui.client.get("/simple/tinylib/", headers=JSON)).status == 200  # now cached
    ui.upstream.fake.clear_log()
    status, html = await ui.page("/search")
    assert status == 200
    assert '<a href="./project/acme-utils/">acme-utils</a>' in html
    assert '<a href="./project/tinylib/">tinylib</a>' in html
    assert "depends-on-tiny" not in html  # upstream but never cached
    row = html[html.index('href="./project/tinylib/"'):].split("</tr>")[0]
    assert "<td>2.0</td>" in row and "2025-01-01 00:00 UTC" in row
    acme = html[html.index('href="./project/acme-utils/"'):].split("</tr>")[0]
    assert "<td>1.0</td>" in acme  # a pre-release is not "latest" while a final release exists
    _status, private_only = await ui.page("/search?kind=private")
    assert "acme-utils" in private_only and "tinylib" not in private_only
    _status, found = await ui.page("/search?q=TINY")
    assert "tinylib" in found and "acme-utils" not in found
    assert ui.upstream.fake.requests == []


async def test_search_is_paginated(ui: Ui):
    """Fifty projects per page, with links to the next and previous pages."""
    for i in range(52):
        await ui.upload(build_wheel(f"pkg-{i:02d}", "1.0"))
    _status, first = await ui.page("/search?q=pkg")
    assert first.count('<a href="./project/pkg-') == 50
    assert "52 projects, page 1 of 2" in first
    assert 'rel="next" href="./search?q=pkg&amp;page=2"' in first
    _status, second = await ui.page("/search?q=pkg&page=2")
    assert second.count('<a href="./project/pkg-') == 2 and "pkg-51" in second


async def test_search_offers_the_project_page_for_a_name_not_in_the_cache(ui: Ui):
    """A valid name nobody asked for yet gets a link to its project page; an invalid one does not."""
    _status, html = await ui.page("/search?q=Requests")
    assert '<a href="./project/requests/">look up requests</a>' in html
    _status, invalid = await ui.page("/search?q=%2F%2F")
    assert "look up" not in invalid


# --- project pages ----------------------------------------------------------------------------------------


async def test_private_project_page_shows_readme_releases_files_and_install_lines(ui: Ui):
    """A private project's page: rendered README of the latest release (its wheel's METADATA), each release's
    files with size, sha256, requires-python, upload time and uploader, and pinned install lines. Upstream is
    never asked about the private name."""
    wheel = acme_wheel("1.1")
    await ui.upload(acme_wheel("1.0", description="# Old readme"), wheel)
    status, html = await ui.page("/project/acme-utils/")
    assert status == 200
    assert "<h1>acme-utils <span" in html and ">1.1</span>" in html
    assert "shadows any upstream project called acme-utils" in html
    assert '<h1 id="user-content-acme-utilities">Acme utilities' in html  # markdown, rendered
    assert "Old readme" not in html
    assert f'href="../../files/acme-utils/{wheel.sha256}/{wheel.filename}"' in html
    assert f"<code>{wheel.sha256}</code>" in html
    assert "&gt;=3.9" in html and ">alice</td>" in html
    assert "pip install --index-url http://127.0.0.1:" in html and "/simple/ acme-utils==1.1</code>" in html
    assert "uv pip install --index-url" in html and "poetry add --source shadowpi acme-utils==1.1" in html
    assert '<a href="https://git.example.invalid/acme" rel="nofollow noopener noreferrer">Source</a>' in html
    assert not any("acme" in r for r in ui.upstream.fake.requests)


async def test_sdist_only_release_shows_the_readme_from_pkg_info(ui: Ui):
    """A release without wheels: the README is read from the stored sdist's PKG-INFO."""
    await ui.upload(acme_sdist("3.0", description="# From the sdist"))
    _status, html = await ui.page("/project/acme-utils/")
    assert '<h1 id="user-content-from-the-sdist">From the sdist' in html
    assert "README <span class=\"muted\">of 3.0</span>" in html


async def test_upstream_readme_comes_only_from_cached_metadata(ui: Ui):
    """A cached upstream project shows "README not cached" until its metadata is in the cache (a page view
    never fetches it); once pip has fetched the .metadata through shadowpi, the page shows the README."""
    wheel = build_wheel("upthing", "1.0", description="# Upstream readme",
                        metadata_headers=["Description-Content-Type: text/markdown"])
    ui.upstream.fake.add(wheel)
    status, html = await ui.page("/project/upthing/")
    assert status == 200
    assert "README not cached" in html and "cached from upstream" in html
    assert ui.upstream.fake.requests == ["/simple/upthing/"]  # the page only, as pip would have asked
    metadata = f"/files/upthing/{wheel.sha256}/{wheel.filename}.metadata"
    assert (await ui.client.get(metadata)).status == 200  # pip reads it while resolving
    await ui.client.app[FILES].settled()  # committed to the cache (after the client had its bytes)
    _status, html = await ui.page("/project/upthing/")
    assert '<h1 id="user-content-upstream-readme">Upstream readme' in html
    assert ui.upstream.fake.requests == ["/simple/upthing/", f"/files/upthing/{wheel.filename}.metadata"]


async def test_yanked_release_is_marked_with_its_reason(ui: Ui):
    """Yanked releases carry a "yanked" badge and their reason, and the latest shown skips them."""
    await ui.upload(acme_wheel("1.0"), acme_wheel("2.0"))
    resp = await ui.client.post("/api/projects/acme-utils/2.0/yank", json={"reason": "broken on 3.12"},
                                headers=basic("alice"))
    assert resp.status == 200
    _status, html = await ui.page("/project/acme-utils/")
    assert '<span class="badge yanked">yanked</span>' in html
    assert "Yanked: broken on 3.12" in html
    assert ">1.0</span></h1>" in html


async def test_everything_user_supplied_is_escaped(ui: Ui):
    """Yank reasons, summaries, upstream requires-python and yank reasons reach the page escaped."""
    hostile = '<img src=x onerror="alert(1)">'
    wheel = build_wheel("acme-utils", "1.0", description="plain",
                        metadata_headers=["Description-Content-Type: text/plain"])
    await ui.upload(wheel)
    await ui.client.post("/api/projects/acme-utils/1.0/yank", json={"reason": hostile}, headers=basic("alice"))
    ui.upstream.fake.add(build_wheel("upthing", "1.0"), yanked=hostile, requires_python=f">=3{hostile}")
    for path in ("/project/acme-utils/", "/project/upthing/", "/search?q=" + hostile):
        status, html = await ui.page(path)
        assert status == 200, path
        assert "<img src=x" not in html and 'onerror="alert' not in html, path
    _status, html = await ui.page("/project/acme-utils/")
    assert "Yanked: &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


async def test_hostile_readme_is_sanitized_on_the_page(ui: Ui):
    """A README with <script>, javascript: links and event handlers reaches the page without any of them."""
    await ui.upload(acme_wheel("1.0", description=HOSTILE_README))
    _status, html = await ui.page("/project/acme-utils/")
    readme = html[html.index('<article class="markdown"'):html.index("</article>")]
    assert "<script" not in readme and "javascript:" not in readme
    assert "onerror" not in readme and "onclick" not in readme
    assert "&lt;script&gt;" in readme


async def test_project_names_are_canonical(ui: Ui):
    """Another spelling redirects to the normalized name (keeping the query); an invalid name is a 400 page."""
    await ui.upload(acme_wheel("1.0"))
    resp = await ui.client.get("/project/Acme_Utils/?page=1", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (301, "../acme-utils/?page=1")
    resp = await ui.client.get("/project/acme-utils", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (301, "./acme-utils/")
    status, html = await ui.page("/project/-bad-/")
    assert status == 400 and "<h1>That did not work</h1>" in html


async def test_unknown_and_reserved_projects_are_404_pages(make_proxy: ProxyFactory, upstream: Upstream):
    """A name upstream does not know, or a reserved private pattern with no files, is a 404 HTML page."""
    ui = await start_ui(make_proxy, upstream, policy={"private_patterns": ["acme-*"]})
    status, html = await ui.page("/project/nothing-here/")
    assert status == 404 and "no project named nothing-here here or upstream" in html
    status, html = await ui.page("/project/acme-secret/")
    assert status == 404 and "reserved for private packages" in html
    assert upstream.fake.requests == ["/simple/nothing-here/"]


async def test_releases_are_paginated(ui: Ui):
    """A project with many releases shows 25 per page, newest first."""
    for i in range(27):
        await ui.upload(acme_wheel(f"1.{i}", description="x"))
    _status, first = await ui.page("/project/acme-utils/")
    assert first.count('<section class="release') == 25 and "Page 1 of 2" in first
    _status, second = await ui.page("/project/acme-utils/?page=2")
    assert second.count('<section class="release') == 2 and ">1.0\n" in second


async def test_a_big_upstream_project_is_paged_and_grouped_off_the_loop(ui: Ui, dists: SampleDists):
    """A page of thousands of files (grouped into releases in a thread) shows 25 releases per page, newest first;
    its README comes from the newest file with cached metadata, never from the thousands without."""
    ui.upstream.fake.add(dists.tinylib_2)
    ui.upstream.fake.extra_files = 2500  # tinylib-0.0.<i>.tar.gz, none with metadata
    status, html = await ui.page("/project/tinylib/")
    assert status == 200
    assert "Releases <span class=\"muted\">(2501, 2501 files)</span>" in html and "Page 1 of 101" in html
    assert html.index('id="v-1">2.0') < html.index(">0.0.2499")
    assert "README not cached" in html
    _status, last = await ui.page("/project/tinylib/?page=101")
    assert last.count('<section class="release') == 1 and ">0.0.0\n" in last


# --- headers ----------------------------------------------------------------------------------------------


async def test_pages_carry_security_headers_and_are_never_cached_when_personal(ui: Ui):
    """Every UI response has the CSP and friends; anonymous pages are revalidated (no-cache), anything
    personal (a signed-in viewer, a form with a CSRF token, an error) is private and no-store."""
    await ui.upload(acme_wheel("1.0"))
    anonymous = await ui.client.get("/project/acme-utils/")
    assert_security_headers(anonymous.headers)
    assert (anonymous.headers["Cache-Control"], anonymous.headers["Vary"]) == ("no-cache", "Cookie, Authorization")
    signed_in = await ui.client.get("/project/acme-utils/", headers=basic("bob"))
    assert_security_headers(signed_in.headers)
    assert signed_in.headers["Cache-Control"] == "private, no-store"
    cookie = signed_in.cookies["shadowpi_csrf"]  # the seed of the forms' CSRF tokens
    assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == (True, "Strict", "/")
    login = await ui.client.get("/account/login")
    assert login.headers["Cache-Control"] == "private, no-store"  # its form carries a CSRF token
    missing = await ui.client.get("/project/nothing/")
    assert missing.headers["Cache-Control"] == "private, no-store"
    assert_security_headers(missing.headers)


async def test_static_files_are_versioned_and_immutable(ui: Ui):
    """The stylesheet URL carries its content hash and is cacheable for good; unknown files are 404."""
    _status, html = await ui.page("/")
    href = html.split('rel="stylesheet" href="./')[1].split('"')[0]
    resp = await ui.client.get("/" + href)
    assert resp.status == 200 and resp.content_type == "text/css"
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = await ui.client.get("/" + href, headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    assert (await ui.client.get("/static/ui/nothing.css")).status == 404


# --- [auth] read and [ui] enabled -------------------------------------------------------------------------


async def test_read_auth_pages_need_credentials_basic_or_session(make_proxy: ProxyFactory, upstream: Upstream):
    """Under [auth] read = true an anonymous page view is a 401 with Basic (browsers prompt) whose body is the
    sign-in form; Basic credentials or the session cookie open the pages; the sign-in page and static files
    stay open."""
    ui = await start_ui(make_proxy, upstream, auth={"read": True})
    await ui.upload(acme_wheel("1.0"))
    anonymous = await ui.client.get("/project/acme-utils/")
    body = await anonymous.text()
    assert (anonymous.status, anonymous.headers["WWW-Authenticate"]) == (401, 'Basic realm="shadowpi"')
    assert '<input type="hidden" name="next" value="/project/acme-utils/">' in body and "acme-utils</a>" not in body
    assert (await ui.client.get("/project/acme-utils/", headers=basic("bob"))).status == 200
    assert (await ui.client.get("/project/Acme_Utils/", allow_redirects=False)).status == 401
    assert (await ui.client.get("/search?q=acme")).status == 401
    assert (await ui.client.get("/account/login")).status == 200
    assert (await ui.client.get("/static/ui/style.css")).status == 200
    assert (await ui.sign_in("bob")).status == 303
    status, html = await ui.page("/project/acme-utils/")
    assert status == 200 and "Helpers for <strong>acme</strong>" in html
    assert (await ui.client.get("/simple/acme-utils/", headers=HTML)).status == 401  # the API: Basic only


SIGN_IN_PAGES = [  # every kind of UI page: root's, a named index's, and pages whose handlers ask to sign in
    ("GET", "/"), ("GET", "/search?q=acme"), ("GET", "/project/acme-utils/"), ("GET", "/project/Acme_Utils"),
    ("GET", "/project/acme-utils/delete?target=1.0"), ("POST", "/project/acme-utils/yank"),
    ("GET", "/account/tokens"), ("GET", "/operations"),
    ("GET", "/index/team/"), ("GET", "/index/team"), ("GET", "/index/team/search?q=team"),
    ("GET", "/index/team/project/team-lib/"), ("GET", "/index/nothing/"),
]


@pytest.mark.parametrize(("method", "path"), SIGN_IN_PAGES)
async def test_the_read_auth_sign_in_page_carries_the_security_headers(
    make_proxy: ProxyFactory, upstream: Upstream, method: str, path: str
):
    """Under [auth] read = true, every UI page answers an anonymous visitor 401 with the sign-in form, the same
    security headers as every other page, and no cache may keep it."""
    ui = await start_ui(make_proxy, upstream, auth={"read": True}, indexes={"team": {"read": ["authenticated"]}})
    await ui.upload(acme_wheel("1.0"))
    resp = await ui.client.request(method, path, allow_redirects=False)
    body = await resp.text()
    assert (resp.status, resp.headers["WWW-Authenticate"]) == (401, 'Basic realm="shadowpi"')
    assert "<h1>Sign in</h1>" in body and f'name="next" value="{path.replace("&", "&amp;")}"' in body
    assert_security_headers(resp.headers)
    assert (resp.headers["Cache-Control"], resp.headers["Vary"]) == ("private, no-store", "Cookie, Authorization")


@pytest.mark.parametrize(("user", "status"), [(None, 401), ("bob", 403)])
async def test_a_refused_named_index_page_carries_the_security_headers(
    make_proxy: ProxyFactory, upstream: Upstream, user: str | None, status: int
):
    """Without [auth] read, a named index only alice may read answers an anonymous visitor 401 with the sign-in
    form and bob 403, both with the security headers and private to the browser."""
    ui = await start_ui(make_proxy, upstream, indexes={"secret": {"read": ["alice"]}})
    resp = await ui.client.get("/index/secret/", headers=basic(user) if user else {})
    assert resp.status == status
    assert ("<h1>Sign in</h1>" in await resp.text()) is (user is None)
    assert_security_headers(resp.headers)
    assert resp.headers["Cache-Control"] == "private, no-store"


async def test_wrong_basic_credentials_are_a_401_page(ui: Ui):
    """Wrong Basic credentials on a page are refused as on the API (401 with Basic, browsers ask again)."""
    resp = await ui.client.get("/", headers={"Authorization": "Basic YWxpY2U6d3Jvbmc="})
    assert (resp.status, resp.headers["WWW-Authenticate"]) == (401, 'Basic realm="shadowpi"')
    assert "Invalid or non-existent authentication information." in await resp.text()


async def test_ui_disabled_serves_the_api_only(make_proxy: ProxyFactory, upstream: Upstream):
    """With [ui] enabled = false, GET / is one line of text and there are no pages."""
    proxy = await make_proxy(ui={"enabled": False})
    root = await proxy.get("/")
    assert (root.status, root.content_type) == (200, "text/plain")
    assert (await root.text()).startswith("shadowpi ")
    assert (await proxy.get("/search")).status == 404
    assert (await proxy.get("/project/x/")).status == 404

"""The web interface of named indexes (issue 15 on top of issue 14): /index/<name>/, its search and project pages
show what that index's readers see through its chain, with install lines for its URL; a viewer who may not read
it learns nothing of it (401/403); management forms follow the permission rule; yanks reach the audit log."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import twine_upload
from tests.stores import data_dir_meta
from tests.ui_helpers import USERS, Ui, basic, csrf_of, start_ui

INDEXES = {
    # bob uploads (and owns) team-lib; alice is team's admin. team sees root's projects, never upstream.
    "team": {"bases": ["root"], "read": ["alice", "bob"], "upload": ["alice", "bob"], "admin": ["alice"]},
    # alice owns open-lib; bob may read but neither owns nor administers it. open reaches upstream.
    "open": {"read": ["*"], "upload": ["alice", "bob"], "upstream": True},
    # only alice reads it: bob gets 403, anonymous 401.
    "secret": {"read": ["alice"], "upload": ["alice"]},
}
SECRET_PAGES = ["/index/secret/", "/index/secret", "/index/secret/search?q=secret", "/index/secret/project/secret-lib/",
                "/index/secret/project/secret-lib/delete?target=1.0", "/index/secret/search?kind=private"]


async def _upload(ui: Ui, user: str, name: str, index: str | None) -> None:
    path = f"/index/{index}/" if index else "/"
    resp = await twine_upload(ui.client, build_wheel(name, "1.0"), auth=(user, USERS[user]), path=path)
    assert resp.status == 200, await resp.text()


@pytest.fixture
async def ui(make_proxy: ProxyFactory, upstream: Upstream) -> Ui:
    ui = await start_ui(make_proxy, upstream, indexes=INDEXES)
    await _upload(ui, "alice", "root-lib", None)
    await _upload(ui, "bob", "team-lib", "team")
    await _upload(ui, "alice", "open-lib", "open")
    await _upload(ui, "alice", "secret-lib", "secret")
    ui.upstream.fake.add(build_wheel("tinylib", "1.0"))
    assert (await ui.client.get("/simple/tinylib/")).status == 200  # tinylib is now a cached upstream project
    return ui


def origin(ui: Ui) -> str:
    return f"http://{ui.client.host}:{ui.client.port}"


async def test_a_named_index_home_shows_its_chain_and_its_urls(ui: Ui):
    """/index/team/ lists team's and root's (its base's) recent releases, no other index's, and points pip, uv and
    twine at /index/team/simple/ and /index/team/."""
    status, html = await ui.page("/index/team/", headers=basic("bob"))
    assert status == 200
    assert "team-lib" in html and "root-lib" in html
    assert "open-lib" not in html and "secret-lib" not in html
    assert f"pip install --index-url {origin(ui)}/index/team/simple/ PACKAGE" in html
    assert f"twine upload --repository-url {origin(ui)}/index/team/ " in html
    assert f"uv publish --publish-url {origin(ui)}/index/team/legacy/ " in html
    assert "cached from upstream" not in html  # team never reaches upstream


async def test_the_root_home_shows_only_root_releases_and_the_readable_indexes(ui: Ui):
    """The root home lists root's releases only (not a named index's), and links the named indexes the viewer
    may read: all three for alice, team and open for bob, open for an anonymous visitor."""
    expected = {"alice": ["open", "secret", "team"], "bob": ["open", "team"], None: ["open"]}
    for user, indexes in expected.items():
        status, html = await ui.page("/", headers=basic(user) if user else {})
        assert status == 200
        assert re.findall(r'<a href="\./index/([a-z-]+)/">', html) == indexes
        assert "root-lib" in html
        assert "team-lib" not in html and "secret-lib" not in html and "open-lib" not in html


@pytest.mark.parametrize(("index", "query", "shown", "hidden"), [
    ("team", "lib", ["team-lib", "root-lib"], ["open-lib", "secret-lib"]),
    ("team", "tinylib", [], ["tinylib"]),  # no upstream in team
    ("open", "lib", ["open-lib", "tinylib"], ["team-lib", "root-lib", "secret-lib"]),
    ("secret", "lib", ["secret-lib"], ["team-lib", "root-lib", "open-lib", "tinylib"]),
])
async def test_search_lists_what_the_index_readers_see(ui: Ui, index: str, query: str, shown: list[str],
                                                       hidden: list[str]):
    """A named index's search lists its chain's private projects, and cached upstream ones only when the index
    reaches upstream; the links lead to the index's own project pages."""
    status, html = await ui.page(f"/index/{index}/search?q={query}", headers=basic("alice"))
    assert status == 200
    listed = re.findall(r'<td><a href="\.\./\.\./index/' + index + r'/project/([a-z-]+)/">', html)
    assert sorted(listed) == sorted(shown)
    # "look up" (which asks upstream) only where the index reaches upstream
    assert ("look up" in html) is (index == "open" and query not in shown)
    for name in hidden:
        assert f">{name}<" not in html


async def test_a_project_page_of_a_named_index_has_its_install_lines_files_and_owners(ui: Ui):
    """/index/team/project/team-lib/: the install line names team's simple URL, the download link is team's file
    URL (and downloads), the owner is listed."""
    status, html = await ui.page("/index/team/project/team-lib/", headers=basic("bob"))
    assert status == 200
    assert f"pip install --index-url {origin(ui)}/index/team/simple/ team-lib==1.0" in html
    assert f"uv pip install --index-url {origin(ui)}/index/team/simple/ team-lib==1.0" in html
    assert '<span class="member">bob <span class="muted">(owner)</span></span>' in html
    link = re.search(r'href="\.\./\.\./\.\./\.\./(index/team/files/team-lib/[^"]+\.whl)"', html)
    assert link is not None, html
    download = await ui.client.get("/" + link.group(1), headers=basic("bob"))
    assert download.status == 200
    assert await download.read() == build_wheel("team-lib", "1.0").data


async def test_a_base_project_says_where_it_is_held_and_upstream_stays_out(ui: Ui):
    """team shows root's root-lib as held by root (managed there: no forms here, even for team's admin); an
    upstream project is a 404 in team (no upstream) and is shown in open."""
    status, html = await ui.page("/index/team/project/root-lib/", headers=basic("alice"))
    assert status == 200
    assert 'Held by index <a href="../../../../project/root-lib/">root</a>' in html
    assert "/yank" not in html
    status, _html = await ui.page("/index/team/project/tinylib/", headers=basic("alice"))
    assert status == 404
    status, html = await ui.page("/index/open/project/tinylib/")
    assert status == 200 and "cached from upstream" in html


@pytest.mark.parametrize("path", SECRET_PAGES)
@pytest.mark.parametrize(("user", "status"), [(None, 401), ("bob", 403)])
async def test_a_non_reader_learns_nothing_of_the_index(ui: Ui, path: str, user: str | None, status: int):
    """A viewer who may not read secret gets 401 (anonymous: the sign-in form) or 403, no project name, and a
    response no cache keeps."""
    resp = await ui.client.get(path, headers=basic(user) if user else {})
    html = await resp.text()
    assert resp.status == status
    # The sign-in link returns to the URL the visitor typed (which they know already): nothing else names it.
    assert "secret-lib" not in html.replace(quote(path, safe=""), "").replace(path, "")
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert resp.headers["X-Frame-Options"] == "DENY"
    if user is None:
        assert 'name="password"' in html  # the sign-in form
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="shadowpi"'


async def test_pages_of_an_index_not_everyone_reads_are_never_public(ui: Ui):
    """alice reads secret: 200, never a public cache header; open (world-readable) keeps the root's no-cache."""
    for path in SECRET_PAGES[:1] + SECRET_PAGES[2:4]:
        resp = await ui.client.get(path, headers=basic("alice"))
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "private, no-store"
    resp = await ui.client.get("/index/open/project/open-lib/")
    assert (resp.status, resp.headers["Cache-Control"]) == (200, "no-cache")


@pytest.mark.parametrize("path", ["/index/nope/", "/index/nope/search", "/index/nope/project/team-lib/"])
async def test_an_unknown_index_is_a_404(ui: Ui, path: str):
    """An index that does not exist: 404 naming it, whoever asks."""
    resp = await ui.client.get(path, headers=basic("alice"))
    assert resp.status == 404
    assert "no index named &#39;nope&#39;" in await resp.text()


@pytest.mark.parametrize(("page", "user", "forms"), [
    ("/index/team/project/team-lib/", "bob", True),  # owner
    ("/index/team/project/team-lib/", "alice", True),  # team's admin
    ("/index/open/project/open-lib/", "alice", True),  # owner
    ("/index/open/project/open-lib/", "bob", False),  # reader, neither owner nor admin
    ("/index/open/project/open-lib/", None, False),  # anonymous
])
async def test_management_forms_only_for_owners_and_admins(ui: Ui, page: str, user: str | None, forms: bool):
    """The yank form and delete link appear exactly for those the permission rule lets manage the project."""
    status, html = await ui.page(page, headers=basic(user) if user else {})
    assert status == 200
    assert ('action="../../../../' + page.lstrip("/") + 'yank"' in html) is forms
    assert ("delete?target=1.0" in html) is forms


async def test_a_yank_through_a_named_index_form_is_done_and_audited(ui: Ui):
    """bob (owner) yanks team-lib 1.0 through team's form: pip's view of team shows it yanked with the reason,
    the page says so, and team's audit log has the entry via the web."""
    assert (await ui.sign_in("bob")).status == 303
    page = "/index/team/project/team-lib/"
    resp = await ui.submit(page, f"{page}yank", {"target": "1.0", "reason": "broken build"})
    assert (resp.status, resp.headers["Location"]) == (303, "../../../../index/team/project/team-lib/?"
                                                              "done=yanked&target=1.0")
    simple = json.loads(await (await ui.client.get("/index/team/simple/team-lib/",
                                                   headers={**JSON, **basic("bob")})).text())
    assert [f["yanked"] for f in simple["files"]] == ["broken build"]
    _status, html = await ui.page(f"{page}?done=yanked&target=1.0")
    assert "Yanked 1.0." in html and "Yanked: broken build" in html
    async with data_dir_meta(ui.data_dir) as meta:
        entries = await meta.audit_entries(index="team", project="team-lib")
    assert [(e.action, e.actor, e.via) for e in entries if e.action == "yank"] == [("yank", "bob", "web:password")]


async def test_a_non_member_yank_through_a_named_index_is_refused(ui: Ui):
    """bob may read open but not manage open-lib: his form post (valid CSRF token) is a 403; nothing changes."""
    page = "/index/open/project/open-lib/"
    assert (await ui.sign_in("bob")).status == 303
    _status, html = await ui.page("/index/open/")
    resp = await ui.client.post(f"{page}yank", data={"csrf": csrf_of(html), "target": "1.0", "reason": "x"},
                                allow_redirects=False)
    assert resp.status == 403
    simple = json.loads(await (await ui.client.get("/index/open/simple/open-lib/", headers=JSON)).text())
    assert [f["yanked"] for f in simple["files"]] == [False]


async def test_a_form_post_to_an_unreadable_index_is_refused_before_the_form_is_read(ui: Ui):
    """bob posts a yank to secret (which he may not read): 403, and the body names no project."""
    assert (await ui.sign_in("bob")).status == 303
    _status, html = await ui.page("/")
    resp = await ui.client.post("/index/secret/project/secret-lib/yank",
                                data={"csrf": csrf_of(html), "target": "1.0"}, allow_redirects=False)
    assert resp.status == 403
    assert "secret-lib" not in await resp.text()


async def test_an_index_home_without_its_slash_redirects(ui: Ui):
    """/index/team (no slash) is a 301 to /index/team/ for a reader."""
    resp = await ui.client.get("/index/team", headers=basic("bob"), allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (301, "./team/")


async def test_an_index_admin_deletes_through_the_named_index_form(ui: Ui):
    """alice (team's admin, not the owner) deletes team-lib 1.0 after typing it: gone from team's simple page,
    and the audit log names her."""
    assert (await ui.sign_in("alice")).status == 303
    page = "/index/team/project/team-lib/"
    resp = await ui.submit(f"{page}delete?target=1.0", f"{page}delete", {"target": "1.0", "confirm": "1.0"})
    assert (resp.status, resp.headers["Location"]) == (303, "../../../../index/team/project/team-lib/?"
                                                              "done=deleted&target=1.0")
    gone = await ui.client.get("/index/team/simple/team-lib/", headers=basic("alice"))
    assert gone.status == 404
    async with data_dir_meta(ui.data_dir) as meta:
        entries = await meta.audit_entries(index="team", project="team-lib")
    assert [(e.action, e.actor) for e in entries if e.action == "delete"] == [("delete", "alice")]

"""The web interface's pure parts: list and project view models, links, formatting, sessions, READMEs."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from proxy.backends.records import PrivateFile
from proxy.simple.model import DistFile, Origin, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.ui import formatting
from proxy.ui.catalog import recent_releases
from proxy.ui.listing import (
    Kind,
    Paged,
    Summary,
    choose,
    latest_version,
    merge_names,
    normalize_query,
    paginate,
    summarize,
)
from proxy.ui.project_view import Standing, build_releases, install_lines, standing
from proxy.ui.readme import Link, build_readme, content_kind
from proxy.ui.session import Session, Signer
from proxy.ui.urls import Endpoints, Urls, root_from, safe_next
from tests.artifacts import core_metadata

N = NormalizedName


# --- lists and search -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kind", "expected"),
    [
        ("", Kind.ALL, [("acme", True), ("acme-utils", True), ("django", False), ("nacme", False)]),
        ("acme", Kind.ALL, [("acme", True), ("acme-utils", True), ("nacme", False)]),  # exact, prefix, contains
        ("Acme_Utils", Kind.ALL, [("acme-utils", True)]),  # normalized like a project name
        ("acme", Kind.PRIVATE, [("acme", True), ("acme-utils", True)]),
        ("acme", Kind.CACHED, [("nacme", False)]),  # a private name cached earlier counts as private only
        ("zzz", Kind.ALL, []),
    ],
)
def test_choose_ranks_exact_then_prefix_then_contains(query: str, kind: Kind, expected: list[tuple[str, bool]]):
    """Search matches normalized names; the exact name first, then names starting with it, then the rest."""
    entries = merge_names([N("acme-utils"), N("acme")], [N("django"), N("nacme"), N("acme")])
    assert choose(entries, query, kind) == expected


@pytest.mark.parametrize(
    ("count", "page", "expected"),
    [
        (0, 1, Paged((), 1, 1, 0)),
        (5, 1, Paged((0, 1), 1, 3, 5)),
        (5, 3, Paged((4,), 3, 3, 5)),
        (5, 99, Paged((4,), 3, 3, 5)),  # past the end: the last page
        (5, -2, Paged((0, 1), 1, 3, 5)),
    ],
)
def test_paginate(count: int, page: int, expected: Paged[int]):
    """Pages of a fixed size; out-of-range page numbers show the nearest page."""
    assert paginate(list(range(count)), page, size=2) == expected


@pytest.mark.parametrize(
    ("versions", "latest"),
    [
        ({"1.0": False, "2.0": False, "3.0rc1": False}, "2.0"),  # final releases before pre-releases
        ({"1.0": False, "2.0": True}, "1.0"),  # yanked is skipped
        ({"1.0rc1": False, "0.9": True}, "1.0rc1"),
        ({"2.0": True, "1.0": True}, "2.0"),  # all yanked: the newest
        ({"not a version": False}, None),
        ({}, None),
    ],
)
def test_latest_version(versions: dict[str, bool], latest: str | None):
    """The "latest" shown is what PyPI shows: the newest non-yanked final release when there is one."""
    assert latest_version(versions) == latest


def test_summarize_takes_newest_upload_and_ignores_partly_yanked_releases():
    """A release counts as yanked only when all its files are; the last upload is the newest time."""
    files = [("1.0", False, "2024-01-01T00:00:00Z"), ("2.0", True, "2024-03-01T00:00:00Z"),
             ("2.0", False, "2024-02-01T00:00:00Z"), (None, False, None)]
    assert summarize(files) == Summary("2.0", "2024-03-01T00:00:00Z")


@pytest.mark.parametrize(("raw", "kind"), [(None, Kind.ALL), ("private", Kind.PRIVATE), ("bogus", Kind.ALL)])
def test_kind_parse(raw: str | None, kind: Kind):
    """Unknown list kinds show everything rather than an error."""
    assert Kind.parse(raw) == kind


def test_normalize_query_is_bounded():
    """Queries are normalized like names and cut at 200 characters."""
    assert normalize_query("  Foo.Bar  baz ") == "foo-bar-baz"
    assert len(normalize_query("a" * 10_000)) == 200


# --- project pages ----------------------------------------------------------------------------------------


def _dist(filename: str, **kw: object) -> DistFile:
    return DistFile(filename=filename, url="", hashes={"sha256": "ab" * 32}, **kw)  # type: ignore[arg-type]


def test_build_releases_groups_by_version_newest_first_with_yank_state():
    """Releases are newest first (PEP 440 order), files by name; a reason is kept, legacy names come last."""
    page = ProjectPage(N("acme"), (
        _dist("acme-1.10.tar.gz", yanked="broken", origin=Origin.PRIVATE),
        _dist("acme-1.10-py3-none-any.whl", yanked="broken", origin=Origin.PRIVATE),
        _dist("acme-1.9-py3-none-any.whl", origin=Origin.PRIVATE, upload_time="2024-01-02T00:00:00Z"),
        _dist("acme-1.9.tar.gz", yanked=True, origin=Origin.PRIVATE, upload_time="2024-01-01T00:00:00Z"),
        _dist("acme.exe"),
    ))  # fmt: skip
    releases = build_releases(page, lambda d: "files/" + d.filename, {"acme-1.9.tar.gz": "alice"})
    assert [r.version for r in releases] == ["1.10", "1.9", "other files"]
    newest, older, other = releases
    assert (newest.yanked, newest.partly_yanked, newest.yanked_reason) == (True, False, "broken")
    assert [f.filename for f in newest.files] == ["acme-1.10-py3-none-any.whl", "acme-1.10.tar.gz"]
    assert (older.yanked, older.partly_yanked, older.yanked_reason) == (False, True, None)
    assert older.upload_time == "2024-01-02T00:00:00Z"
    assert [(f.uploader, f.path) for f in older.files] == [(None, "files/acme-1.9-py3-none-any.whl"),
                                                          ("alice", "files/acme-1.9.tar.gz")]
    assert (other.private, newest.private) == (False, True)


@pytest.mark.parametrize(
    ("origins", "has_private", "expected"),
    [
        ((Origin.PRIVATE,), True, Standing.PRIVATE),
        ((Origin.PRIVATE, Origin.UPSTREAM), True, Standing.MERGED),
        ((Origin.UPSTREAM,), False, Standing.UPSTREAM),
    ],
)
def test_standing(origins: tuple[Origin, ...], has_private: bool, expected: Standing):
    """Private (shadows upstream), private merged with upstream files, or cached from upstream."""
    page = ProjectPage(N("x"), tuple(_dist(f"x-1.{i}.tar.gz", origin=o) for i, o in enumerate(origins)))
    assert standing(page, has_private=has_private) == expected


@pytest.mark.parametrize(
    ("origin", "pip"),
    [
        ("http://127.0.0.1:8080", "pip install --index-url http://127.0.0.1:8080/simple/ acme==1.0"),
        ("https://pypi.corp", "pip install --index-url https://pypi.corp/simple/ acme==1.0"),
        ("http://pypi.corp:8080", "pip install --index-url http://pypi.corp:8080/simple/ --trusted-host pypi.corp:8080 "
                                  "acme==1.0"),
    ],
)
def test_install_lines_use_index_url_and_trusted_host_only_for_remote_http(origin: str, pip: str):
    """Install lines pin the version, always use --index-url, and add --trusted-host only where pip needs it."""
    install = install_lines(Endpoints(origin), N("acme"), "1.0")
    assert install.pip == pip
    assert install.uv == f"uv pip install --index-url {origin}/simple/ acme==1.0"
    assert install.poetry[1] == "poetry add --source shadowpi acme==1.0"


# --- links ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "root"),
    [("/", "./"), ("/search", "./"), ("/project/acme/", "../../"), ("/account/tokens/revoke", "../../")],
)
def test_root_from(path: str, root: str):
    """Links are relative to the page, so a reverse proxy can mount shadowpi under a path prefix."""
    assert root_from(path) == root


def test_urls_take_the_index_as_a_parameter():
    """The root index and issue 14's named indexes differ only in the base; search parameters are encoded."""
    root, named = Urls("../../"), Urls("../../", index="team a")
    assert root.project(N("acme")) == "../../project/acme/"
    assert named.project(N("acme")) == "../../index/team%20a/project/acme/"
    assert named.simple() == "../../index/team%20a/simple/"
    assert root.search("a&b", "private", 2) == "../../search?q=a%26b&kind=private&page=2"
    assert Endpoints("https://h", "team").simple == "https://h/index/team/simple/"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("/project/acme/", "/project/acme/"),
        ("/search?q=a", "/search?q=a"),
        ("//evil.example/", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("/x\nSet-Cookie: a=b", None),
        (None, None),
    ],
)
def test_safe_next_keeps_sign_in_redirects_on_this_site(raw: str | None, safe: str | None):
    """After signing in, only local paths are followed (no open redirect)."""
    assert safe_next(raw) == safe


# --- formatting -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [(None, "\N{EN DASH}"), (999, "999 B"), (1234, "1.2 kB"),
                                             (5_300_000, "5.3 MB"), (7 * 10**12, "7000.0 GB")])
def test_size(value: int | None, text: str):
    """Sizes in powers of 1000, as PyPI shows them."""
    assert formatting.size(value) == text


@pytest.mark.parametrize(("value", "text"), [("2024-05-01T12:34:56.123456Z", "2024-05-01 12:34 UTC"),
                                             (0.0, "1970-01-01 00:00 UTC"), ("garbage", "garbage")])
def test_when(value: str | float, text: str):
    """Upload times (PEP 700 text or unix time) in UTC; unreadable text is shown as it is."""
    assert formatting.when(value) == text


# --- sessions and CSRF ------------------------------------------------------------------------------------


def test_session_cookie_round_trip_and_refusals():
    """A signed cookie comes back as the session; tampered, foreign-key, expired or garbage cookies do not."""
    signer = Signer(b"k" * 32)
    session = Session("alice", "token", 2000.0, "ab" * 32)
    cookie = signer.session_cookie(session)
    assert signer.read_session(cookie, now=1000.0) == session
    assert signer.read_session(cookie, now=2000.0) is None  # expired
    assert Signer(b"x" * 32).read_session(cookie, now=1000.0) is None  # another key
    body, mac = cookie.split(".")
    forged = signer.session_cookie(Session("mallory", "token", 2000.0)).split(".")[0]
    assert signer.read_session(f"{forged}.{mac}", now=1000.0) is None
    for garbage in ("", "a.b", "....", f"{body}.", "é.é", None):
        assert signer.read_session(garbage, now=1000.0) is None


def test_csrf_token_binds_seed_and_user():
    """A CSRF token is valid only for its seed cookie and user."""
    signer = Signer(b"k" * 32)
    token = signer.csrf_token("seed-1", "alice")
    assert signer.csrf_valid("seed-1", "alice", token)
    assert not signer.csrf_valid("seed-2", "alice", token)
    assert not signer.csrf_valid("seed-1", "bob", token)
    assert not signer.csrf_valid("seed-1", None, token)
    assert not signer.csrf_valid(None, "alice", token)
    assert not signer.csrf_valid("seed-1", "alice", "")


# --- READMEs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [(None, ("rst", "")), ("text/markdown", ("markdown", "GFM")), ("text/markdown; variant=CommonMark",
      ("markdown", "CommonMark")), ("text/markdown; variant=bogus", ("markdown", "GFM")),
     ("text/plain; charset=UTF-8", ("text", "")), ("text/x-rst", ("rst", "")), ("application/evil", ("rst", ""))],
)
def test_content_kind(content_type: str | None, expected: tuple[str, str]):
    """Description-Content-Type picks the renderer; without one it is reStructuredText (PEP 566)."""
    assert content_kind(content_type) == expected


def _elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag and its attributes, as a browser's parser sees them."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collect().feed(html)
    return found


HOSTILE = (
    "# Title\n\n<script>window.__pwned = 1</script>\n\n[click](javascript:window.__pwned=2)\n\n"
    '<img src="x" onerror="window.__pwned=3">\n\n<a href="https://ok.example/" onclick="x()">ok</a>\n'
)


@pytest.mark.parametrize("content_type", ["text/markdown", "text/x-rst", "text/plain"])
def test_hostile_readme_is_sanitized_in_every_format(content_type: str):
    """No script element, event handler or javascript: URL survives rendering, whatever the format."""
    meta = core_metadata("acme", "1.0", description=HOSTILE, headers=[f"Description-Content-Type: {content_type}"])
    readme = build_readme(meta)
    elements = _elements(readme.html or "")
    assert elements, "something was rendered"
    assert [tag for tag, _ in elements if tag in {"script", "iframe", "object", "style"}] == []
    assert [(tag, a) for tag, attrs in elements for a, _ in attrs if a.startswith("on")] == []
    assert [v for _, attrs in elements for a, v in attrs if a in {"href", "src"} and "javascript" in (v or "")] == []


def test_markdown_readme_renders_and_metadata_links_are_http_only():
    """Markdown becomes HTML; metadata links that are not http(s) stay text, never a link."""
    meta = core_metadata("acme", "1.0", description="# Hello\n\n*world*\n", headers=[
        "Description-Content-Type: text/markdown", "Project-URL: Source, https://example.invalid/src",
        "Project-URL: Evil, javascript:alert(1)", "License: MIT"])  # fmt: skip
    readme = build_readme(meta)
    assert readme.kind == "markdown"
    assert "<em>world</em>" in (readme.html or "")
    assert readme.links == (Link("Source", "https://example.invalid/src", "https://example.invalid/src"),
                            Link("Evil", "javascript:alert(1)", None))
    assert (readme.summary, readme.license) == ("test artifact", "MIT")


def test_broken_rst_falls_back_to_plain_text():
    """reStructuredText that does not render (a raw directive here) is shown as escaped text, as on PyPI."""
    meta = core_metadata("acme", "1.0", description="Title\n=====\n\n.. raw:: html\n\n   <b>x</b>\n")
    readme = build_readme(meta)
    assert readme.kind == "text"
    assert "&lt;b&gt;x&lt;/b&gt;" in (readme.html or "")


def test_no_description_and_huge_description():
    """An empty description renders nothing; a giant one is not rendered at all."""
    assert build_readme(core_metadata("acme", "1.0")).kind == "none"
    huge = build_readme(core_metadata("acme", "1.0", description="x" * 1_000_001))
    assert (huge.kind, huge.html) == ("too big", None)


# --- recent releases --------------------------------------------------------------------------------------


def _record(project: str, version: str, minute: int) -> PrivateFile:
    return PrivateFile(f"{project}-{version}-{minute}.whl", N(project), version, "ab" * 32, None, 1, None, None,
                       None, f"2025-01-01T00:{minute:02d}:00.000000Z", "ci")


def test_recent_releases_are_distinct_and_newest_first():
    """One row per release (its newest upload), newest first, even when one release has many recent files."""
    files = [_record("old", "1.0", 0), _record("a", "1.0", 1)]
    files += [_record("busy", "2.0", m) for m in range(10, 40)]  # 30 files of one release, all newer
    files += [_record("b", "1.0", 5)]
    rows = recent_releases(files, limit=3)
    assert [(r.project, r.version, r.upload_time[14:16]) for r in rows] == [
        ("busy", "2.0", "39"), ("b", "1.0", "05"), ("a", "1.0", "01")]
    assert [r.project for r in recent_releases(files, limit=10)] == ["busy", "b", "a", "old"]



"""Tests for proxy.simple.html: PEP 503 project/index pages, parsed and rendered."""

from __future__ import annotations

import pytest

from proxy.errors import UpstreamInvalid
from proxy.simple.html import (
    derive_versions,
    parse_index_html,
    parse_project_html,
    render_index_html,
    render_project_html,
)
from proxy.simple.model import DistFile, ProjectList, ProjectPage
from proxy.simple.names import NormalizedName
from tests.codec_samples import DATA, FILES, NAME, PAGE_URL, SHA_A, SHA_B, SHA_C, SHA_D, SHA_E, SHA_F, SHA_G, WHEEL


def _parse_anchor(anchor: str, page_url: str = PAGE_URL) -> DistFile:
    page = parse_project_html(f"<html><body>{anchor}</body></html>", page_url, NAME)
    assert len(page.files) == 1
    return page.files[0]


def _links(page: ProjectPage) -> str:
    return render_project_html(page, lambda f: f"/files/{f.filename}")


def test_parse_pypi_page() -> None:
    """A PyPI-style page parses into the full model: hashes, requires-python, yanked, metadata, versions."""
    text = (DATA / "pypi_page.html").read_text(encoding="utf-8")
    expected = ProjectPage(
        name=NAME,
        files=(
            DistFile(
                "sampleproject-1.2.0-py2.py3-none-any.whl",
                f"{FILES}/0d/6e/4f1c1d3d9b1ab3f7ac4ac3e84a1a53c0f5fbeb1b5b9a1fa3c5b3d4a2b6e8e1f/"
                "sampleproject-1.2.0-py2.py3-none-any.whl",
                {"sha256": SHA_A},
            ),
            DistFile(
                "sampleproject-1.2.0.tar.gz",
                f"{FILES}/a9/5b/1e8e2c1d2bd1d0ef1b5f2e44b1b1d4c5b8f4d1b5b0f1c0e1d9a8b7c6d5e4f3a2/"
                "sampleproject-1.2.0.tar.gz",
                {"sha256": SHA_B},
            ),
            DistFile(
                "sampleproject-1.3.0-py2.7.egg",
                f"{FILES}/4c/2e/0f4b3c7a6a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1/"
                "sampleproject-1.3.0-py2.7.egg",
                {"sha256": SHA_C},
            ),
            DistFile(
                "sampleproject-2.0.0-py3-none-any.whl",
                f"{FILES}/6e/ac/2f8b0e6d4a3c1b5e7f9a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d/"
                "sampleproject-2.0.0-py3-none-any.whl",
                {"sha256": SHA_D},
                requires_python=">=3.6, <4",
                yanked=True,
            ),
            DistFile(
                "sampleproject-3.0.0-py3-none-any.whl",
                f"{FILES}/b2/7d/9c1e3a5b7d9f1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d/"
                "sampleproject-3.0.0-py3-none-any.whl",
                {"sha256": SHA_E},
                requires_python=">=3.7",
                yanked="Broken entry point, use 3.0.1",
                core_metadata={"sha256": SHA_F},
            ),
            DistFile(
                "sampleproject-4.0.0-py3-none-any.whl",
                f"{FILES}/67/2a/9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e/"
                "sampleproject-4.0.0-py3-none-any.whl",
                {"sha256": SHA_G},
                requires_python=">=3.8",
                core_metadata={"sha256": SHA_A},
            ),
            DistFile(
                "sampleproject-4.0.0.tar.gz",
                f"{FILES}/ee/1d/3c5e7a9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c/"
                "sampleproject-4.0.0.tar.gz",
                {"sha256": SHA_B},
                requires_python=">=3.8",
            ),
        ),
        versions=("1.2.0", "2.0.0", "3.0.0", "4.0.0"),  # the .egg has no parseable version
    )
    assert parse_project_html(text, PAGE_URL, NAME) == expected


@pytest.mark.parametrize(
    ("page_url", "href", "url"),
    [
        (PAGE_URL, f"../../files/{WHEEL}", f"https://pypi.org/files/{WHEEL}"),
        (PAGE_URL, WHEEL, f"https://pypi.org/simple/sampleproject/{WHEEL}"),
        (PAGE_URL, f"/packages/{WHEEL}", f"https://pypi.org/packages/{WHEEL}"),
        (PAGE_URL, f"//cdn.example/{WHEEL}", f"https://cdn.example/{WHEEL}"),
        ("http://mirror.example/simple/demo", WHEEL, f"http://mirror.example/simple/{WHEEL}"),
        (PAGE_URL, f"https://other.example/{WHEEL}?x=1#sha256=00", f"https://other.example/{WHEEL}?x=1"),
    ],
)
def test_relative_hrefs_resolve_against_page_url(page_url: str, href: str, url: str) -> None:
    """Without <base>, hrefs resolve against the page URL and lose their fragment."""
    assert _parse_anchor(f'<a href="{href}">{WHEEL}</a>', page_url).url == url


@pytest.mark.parametrize(
    ("head", "url"),
    [
        ('<base href="https://files.example/pkgs/">', f"https://files.example/pkgs/{WHEEL}"),
        ('<base href="../../mirror/">', f"https://pypi.org/mirror/{WHEEL}"),
        ('<base target="_top"><base href="/b/">', f"https://pypi.org/b/{WHEEL}"),
        ('<base href="/first/"><base href="/second/">', f"https://pypi.org/first/{WHEEL}"),
    ],
)
def test_base_href(head: str, url: str) -> None:
    """The first <base href> (itself resolved against the page URL) is the base for every link."""
    text = f"<html><head>{head}</head><body><a href='{WHEEL}'>{WHEEL}</a></body></html>"
    assert parse_project_html(text, PAGE_URL, NAME).files[0].url == url


def test_base_href_after_links_still_applies() -> None:
    """A <base> placed after the links applies to them too, as in browsers, pip and uv."""
    text = f"<a href='{WHEEL}'>{WHEEL}</a><base href='https://b.example/x/'>"
    assert parse_project_html(text, PAGE_URL, NAME).files[0].url == f"https://b.example/x/{WHEEL}"


@pytest.mark.parametrize(
    ("fragment", "hashes"),
    [
        ("", {}),
        (f"#sha256={SHA_A}", {"sha256": SHA_A}),
        (f"#SHA256={SHA_A.upper()}", {"sha256": SHA_A}),
        ("#md5=ABCDEF01", {"md5": "abcdef01"}),
        ("#blake2b_256=00ff", {"blake2b_256": "00ff"}),
        ("#egg=demo", {}),
        ("#egg=demo&sha256=ab", {"sha256": "ab"}),
        ("#sha256%3Dab", {"sha256": "ab"}),
        ("#sha256=not-hex", {}),
        ("#subdirectory=src", {}),
        ("#=ab", {}),
        ("#junk", {}),
    ],
)
def test_fragment_hashes(fragment: str, hashes: dict[str, str]) -> None:
    """A `#alg=hex` fragment becomes a lower-cased hash; egg= and junk are ignored."""
    assert _parse_anchor(f'<a href="/f/{WHEEL}{fragment}">{WHEEL}</a>').hashes == hashes


@pytest.mark.parametrize(
    ("attr", "expected"),
    [
        ("", None),
        ('data-requires-python=""', None),
        ("data-requires-python", None),
        ('data-requires-python="&gt;=3.8"', ">=3.8"),
        ('data-requires-python="&gt;=3.8,&lt;4,!=3.9.*"', ">=3.8,<4,!=3.9.*"),
        ('data-requires-python="&#62;=3.8"', ">=3.8"),
        ("data-requires-python='>=3.7'", ">=3.7"),
    ],
)
def test_requires_python(attr: str, expected: str | None) -> None:
    """data-requires-python is entity-decoded; empty or valueless means none (GitLab sends "")."""
    assert _parse_anchor(f'<a href="{WHEEL}" {attr}>{WHEEL}</a>').requires_python == expected


@pytest.mark.parametrize(
    ("attr", "expected"),
    [
        ("", False),
        ("data-yanked", True),
        ('data-yanked=""', True),
        ('data-yanked="bad build"', "bad build"),
        ('data-yanked="use &lt;2 &amp; upgrade"', "use <2 & upgrade"),
    ],
)
def test_yanked(attr: str, expected: bool | str) -> None:
    """PEP 592: valueless or empty data-yanked is a bare yank; a value is the reason."""
    assert _parse_anchor(f'<a href="{WHEEL}" {attr}>{WHEEL}</a>').yanked == expected


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ("", False),
        ('data-core-metadata="true"', True),
        ('data-core-metadata="TRUE"', True),
        (f'data-core-metadata="sha256={SHA_A}"', {"sha256": SHA_A}),
        (f'data-core-metadata="SHA256={SHA_A.upper()}"', {"sha256": SHA_A}),
        (f'data-dist-info-metadata="sha256={SHA_B}"', {"sha256": SHA_B}),
        ('data-dist-info-metadata="true"', True),
        (f'data-core-metadata="sha256={SHA_A}" data-dist-info-metadata="sha256={SHA_B}"', {"sha256": SHA_A}),
        (f'data-core-metadata data-dist-info-metadata="sha256={SHA_B}"', {"sha256": SHA_B}),
        ('data-core-metadata="" data-dist-info-metadata="true"', True),
        ('data-core-metadata="false"', False),
        ('data-core-metadata="sha256=zz"', True),
        ('data-core-metadata="yes"', True),
    ],
)
def test_core_metadata(attrs: str, expected: dict[str, str] | bool) -> None:
    """PEP 658 data-core-metadata wins; PEP 714's data-dist-info-metadata is the fallback; junk means available."""
    assert _parse_anchor(f'<a href="{WHEEL}" {attrs}>{WHEEL}</a>').core_metadata == expected


@pytest.mark.parametrize(
    ("anchor", "filename"),
    [
        (f'<a href="/f/{WHEEL}">  {WHEEL}\n </a>', WHEEL),
        ('<a href="/f/demo%2B1-1.0.tar.gz#sha256=ab"></a>', "demo+1-1.0.tar.gz"),
        ('<a href="/f/demo-1.0.tar.gz"> </a>', "demo-1.0.tar.gz"),
        ('<a href="/f/x">demo&amp;co-1.0.tar.gz</a>', "demo&co-1.0.tar.gz"),
        ('<a href="/f/x"><b>demo</b>-1.0.tar.gz</a>', "demo-1.0.tar.gz"),
    ],
)
def test_filename(anchor: str, filename: str) -> None:
    """The filename is the stripped anchor text, else the percent-decoded last URL path segment."""
    assert _parse_anchor(anchor).filename == filename


def test_anchors_without_href_are_skipped() -> None:
    """Anchors without an href, with a blank one, or naming no file are skipped; unclosed anchors count."""
    anchors = ['<a name="top">top</a>', '<a href=" ">blank</a>', f"<a>{WHEEL}</a>", '<a href="/dir/"></a>']
    text = "".join(anchors) + f'<a href=" {WHEEL}\n">{WHEEL}'  # the last one is never closed
    page = parse_project_html(text, PAGE_URL, NAME)
    assert page == ProjectPage(NAME, (DistFile(WHEEL, PAGE_URL + WHEEL),), ("1.0",))


def test_versions_are_sorted_unique_and_skip_legacy() -> None:
    """Versions come from filenames, PEP 440-sorted, de-duplicated; unparseable filenames add none."""
    names = [
        "demo-1.10.tar.gz",
        "demo-1.9-py3-none-any.whl",
        "demo-1.9.tar.gz",
        "demo-1.0.win32.exe",
        "demo-2.0rc1.zip",
        "demo-1.0.post1.tar.gz",
    ]
    text = "".join(f'<a href="{n}">{n}</a>' for n in names)
    assert parse_project_html(text, PAGE_URL, NAME).versions == ("1.0.post1", "1.9", "1.10", "2.0rc1")


@pytest.mark.parametrize(
    ("attrs", "size", "upload_time"),
    [
        ('data-size="1234" data-upload-time="2024-01-02T03:04:05.000000Z"', 1234, "2024-01-02T03:04:05.000000Z"),
        ('data-size="-1" data-upload-time=""', None, None),
        ('data-size="12kB"', None, None),
        ("", None, None),
    ],
)
def test_nonstandard_size_and_upload_time(attrs: str, size: int | None, upload_time: str | None) -> None:
    """uv's non-standard data-size/data-upload-time are read when well-formed, else ignored."""
    dist = _parse_anchor(f'<a href="{WHEEL}" {attrs}>{WHEEL}</a>')
    assert (dist.size, dist.upload_time) == (size, upload_time)


def test_unparseable_html_raises() -> None:
    """The one input html.parser rejects (a malformed marked section) becomes UpstreamInvalid."""
    with pytest.raises(UpstreamInvalid):
        parse_project_html("<html><![ ab[", PAGE_URL, NAME)


def test_render_exact_output() -> None:
    """The rendered page has the PEP 503/629 shape, one fragment hash and both PEP 714 attributes."""
    page = ProjectPage(
        NAME,
        (
            DistFile(WHEEL, "u", {"sha256": SHA_A}, ">=3.8", yanked=True, core_metadata={"sha256": SHA_B}),
            DistFile("demo-1.0.tar.gz", "u", {}, yanked="bad", core_metadata=True),
        ),
    )
    assert _links(page) == "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            "<head>",
            '<meta name="pypi:repository-version" content="1.0">',
            "<title>Links for sampleproject</title>",
            "</head>",
            "<body>",
            "<h1>Links for sampleproject</h1>",
            f'<a href="/files/{WHEEL}#sha256={SHA_A}" data-requires-python="&gt;=3.8" data-yanked="" '
            f'data-core-metadata="sha256={SHA_B}" data-dist-info-metadata="sha256={SHA_B}">{WHEEL}</a><br>',
            '<a href="/files/demo-1.0.tar.gz" data-yanked="bad" data-core-metadata="true" '
            'data-dist-info-metadata="true">demo-1.0.tar.gz</a><br>',
            "</body>",
            "</html>",
            "",
        ]
    )


@pytest.mark.parametrize(
    ("sizes", "version"),
    [((1, 2), "1.1"), ((1, None), "1.0"), ((None, None), "1.0"), ((), "1.1")],
)
def test_render_repository_version_is_honest(sizes: tuple[int | None, ...], version: str) -> None:
    """PEP 629 meta claims 1.1 only when every file has a size (PEP 700)."""
    files = tuple(DistFile(f"demo-{i}.0.tar.gz", "u", size=s) for i, s in enumerate(sizes))
    assert f'<meta name="pypi:repository-version" content="{version}">' in _links(ProjectPage(NAME, files))


@pytest.mark.parametrize(
    ("hashes", "fragment"),
    [
        ({"sha256": SHA_A, "sha512": "ab", "md5": "cd"}, f"#sha256={SHA_A}"),
        ({"md5": "cd", "sha512": "ab"}, "#sha512=ab"),
        ({"blake2b_256": "ab", "md5": "cd"}, "#md5=cd"),
        ({"blake2b_256": "ab"}, ""),
        ({}, ""),
    ],
)
def test_render_emits_one_emittable_hash(hashes: dict[str, str], fragment: str) -> None:
    """Only the first EMITTABLE_HASHES algorithm is put in the fragment; blake2b_256 never is (uv rejects it)."""
    html = _links(ProjectPage(NAME, (DistFile(WHEEL, "u", hashes, core_metadata={"blake2b_256": "ef"}),)))
    assert f'href="/files/{WHEEL}{fragment}"' in html
    assert "blake2b" not in html
    assert 'data-core-metadata="true" data-dist-info-metadata="true"' in html


def test_render_escapes_hostile_values() -> None:
    """Quotes, angle brackets and ampersands in any value are escaped and survive a round trip."""
    hostile = DistFile(
        filename='x"><script>alert(1)<script>&amp;.whl',  # one path segment: '/' is dropped at parse time
        url='https://evil.example/a?b=1&c="2"<x>',
        hashes={"sha256": SHA_A},
        requires_python='>=3" onmouseover="x',
        yanked="<b>'reason' & \"more\"</b>",
        core_metadata={"sha256": SHA_B},
    )
    page = ProjectPage(NAME, (hostile,))  # an unparseable filename contributes no version
    html = render_project_html(page, lambda f: f.url)
    assert "<script>" not in html and "<b>" not in html and '" onmouseover' not in html
    assert "&amp;amp;" in html and "&quot;2&quot;" in html and "&#x27;reason&#x27;" in html
    assert parse_project_html(html, PAGE_URL, NAME) == page


ROUND_TRIP_PAGES = [
    ProjectPage(NAME, ()),
    ProjectPage(
        NAME,
        (
            DistFile(WHEEL, "https://files.example/a/" + WHEEL, {"sha256": SHA_A}, ">=3.8,<4", True, {"sha256": SHA_B}),
            DistFile("demo-1.0.tar.gz", "https://files.example/b/demo-1.0.tar.gz", {"md5": "abcd"}, yanked="why"),
            DistFile("demo-2.0.tar.gz", "https://files.example/c/demo-2.0.tar.gz", core_metadata=True),
            DistFile("odd name.exe", "https://files.example/d/odd%20name.exe", {"sha512": SHA_C}),
        ),
        ("1.0", "2.0"),
    ),
]


@pytest.mark.parametrize("page", ROUND_TRIP_PAGES)
def test_round_trip(page: ProjectPage) -> None:
    """parse(render(page)) == page for pages HTML can express fully (absolute URLs, emittable hashes)."""
    assert parse_project_html(render_project_html(page, lambda f: f.url), PAGE_URL, NAME) == page


def test_derive_versions() -> None:
    """derive_versions returns sorted unique versions of the files' filenames."""
    files = [DistFile("a-2.0.tar.gz", ""), DistFile("a-10.0.tar.gz", ""), DistFile("a-2.0-py3-none-any.whl", "")]
    assert derive_versions(files) == ("2.0", "10.0")


def test_render_index_exact_output() -> None:
    """The root page is a PEP 503 list of escaped links, claiming repository version 1.0."""
    projects = ProjectList((NormalizedName("a-b"), NormalizedName("zope-interface")))
    assert render_index_html(projects, lambda n: f"/simple/{n}/?x=1&y=2") == "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            "<head>",
            '<meta name="pypi:repository-version" content="1.0">',
            "<title>Simple index</title>",
            "</head>",
            "<body>",
            "<h1>Simple index</h1>",
            '<a href="/simple/a-b/?x=1&amp;y=2">a-b</a><br>',
            '<a href="/simple/zope-interface/?x=1&amp;y=2">zope-interface</a><br>',
            "</body>",
            "</html>",
            "",
        ]
    )


def test_parse_index_normalizes_dedupes_and_skips_invalid() -> None:
    """Root-page names are PEP 503-normalized, de-duplicated in page order; invalid names are skipped."""
    text = (
        '<a href="/simple/zope-interface/">Zope.Interface</a><a href="/x/">-bad-</a><a href="/y/"></a>'
        '<a href="/simple/a-b/">A_B</a><a href="/simple/zope-interface/">zope_interface</a><a>no href ok</a>'
    )
    assert parse_index_html(text) == ProjectList((NormalizedName("zope-interface"), NormalizedName("a-b")))


def test_index_round_trip() -> None:
    """parse_index_html(render_index_html(projects)) == projects."""
    projects = ProjectList((NormalizedName("a"), NormalizedName("b-c"), NormalizedName("d0")))
    assert parse_index_html(render_index_html(projects, lambda n: f"{n}/")) == projects


@pytest.mark.parametrize(
    ("anchor", "label"),
    [
        ('<a href="/f/x.whl">../evil.whl</a>', "../evil.whl"),
        ('<a href="/f/a%2Fb-1.0.tar.gz"></a>', "a/b-1.0.tar.gz"),
        ('<a href="/f/x.whl">..</a>', ".."),
        ('<a href="/f/x.whl">a\\b.whl</a>', "a\\b.whl"),
        ('<a href="/f/x.whl">a&#10;b.whl</a>', "a\nb.whl"),
    ],
)
def test_unsafe_filenames_are_dropped(anchor: str, label: str, caplog: pytest.LogCaptureFixture) -> None:
    """Anchor texts (or URL names) that are not one plain path segment are dropped with a warning."""
    page = parse_project_html(f'<a href="/f/{WHEEL}">{WHEEL}</a>{anchor}', PAGE_URL, NAME)
    assert [f.filename for f in page.files] == [WHEEL]
    assert repr(label) in caplog.text


def test_more_links_than_allowed_is_refused() -> None:
    """max_files bounds the page: one link more is UpstreamInvalid naming [upstream] max_page_files."""
    text = "".join(f'<a href="/f/demo-1.{i}.tar.gz">demo-1.{i}.tar.gz</a>' for i in range(3))
    assert len(parse_project_html(text, PAGE_URL, NAME, max_files=3).files) == 3
    with pytest.raises(UpstreamInvalid, match=r"upstream\] max_page_files \(2\)"):
        parse_project_html(text, PAGE_URL, NAME, max_files=2)

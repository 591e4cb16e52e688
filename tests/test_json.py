"""Tests for proxy.simple.json: PEP 691 project/index documents, parsed and rendered."""

from __future__ import annotations

import json
from typing import Any

import pytest

import proxy.simple.json as codec
from proxy.errors import UpstreamInvalid
from proxy.simple.json import parse_project_json, render_index_json, render_project_json
from proxy.simple.model import DistFile, Origin, ProjectList, ProjectPage
from proxy.simple.names import NormalizedName
from tests.codec_samples import DATA, FILES, NAME, PAGE_URL, SHA_A, SHA_B, SHA_C, SHA_D, SHA_E, SHA_F, SHA_G, WHEEL


def _doc(*files: dict[str, Any], **top: Any) -> str:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": list(files), **top})


def _entry(**fields: Any) -> dict[str, Any]:
    return {"filename": WHEEL, "url": f"https://f.example/{WHEEL}", "hashes": {}, **fields}


def _parse_entry(**fields: Any) -> DistFile:
    return parse_project_json(_doc(_entry(**fields)), PAGE_URL).files[0]


def _rendered(page: ProjectPage) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render_project_json(page, lambda f: f.url))
    return doc


def test_module_uses_stdlib_json() -> None:
    """Inside proxy.simple.json, `import json` is the standard library, not the module itself."""
    assert vars(codec)["json"] is json


def test_parse_pypi_page() -> None:
    """A PyPI-style document parses into the full model, including PEP 700 size/upload-time and versions."""
    data = (DATA / "pypi_page.json").read_bytes()
    expected = ProjectPage(
        name=NAME,
        files=(
            DistFile(
                "sampleproject-1.2.0-py2.py3-none-any.whl",
                f"{FILES}/0d/6e/4f1c1d3d9b1ab3f7ac4ac3e84a1a53c0f5fbeb1b5b9a1fa3c5b3d4a2b6e8e1f/"
                "sampleproject-1.2.0-py2.py3-none-any.whl",
                {"sha256": SHA_A},
                size=3795,
                upload_time="2015-06-14T14:38:05.093750Z",
            ),
            DistFile(
                "sampleproject-1.2.0.tar.gz",
                f"{FILES}/a9/5b/1e8e2c1d2bd1d0ef1b5f2e44b1b1d4c5b8f4d1b5b0f1c0e1d9a8b7c6d5e4f3a2/"
                "sampleproject-1.2.0.tar.gz",
                {"sha256": SHA_B},
                size=3148,
                upload_time="2015-06-14T14:37:56.000000Z",
            ),
            DistFile(
                "sampleproject-1.3.0-py2.7.egg",
                f"{FILES}/4c/2e/0f4b3c7a6a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1/"
                "sampleproject-1.3.0-py2.7.egg",
                {"sha256": SHA_C},
                size=4022,
                upload_time="2015-09-08T10:22:11.451190Z",
            ),
            DistFile(
                "sampleproject-2.0.0-py3-none-any.whl",
                f"{FILES}/6e/ac/2f8b0e6d4a3c1b5e7f9a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d/"
                "sampleproject-2.0.0-py3-none-any.whl",
                {"sha256": SHA_D},
                requires_python=">=3.6, <4",
                yanked=True,
                size=4209,
                upload_time="2020-06-25T19:09:43.925452Z",
            ),
            DistFile(
                "sampleproject-3.0.0-py3-none-any.whl",
                f"{FILES}/b2/7d/9c1e3a5b7d9f1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d/"
                "sampleproject-3.0.0-py3-none-any.whl",
                {"sha256": SHA_E},
                requires_python=">=3.7",
                yanked="Broken entry point, use 3.0.1",
                core_metadata={"sha256": SHA_F},
                size=4662,
                upload_time="2021-11-23T00:03:47.142365Z",
            ),
            DistFile(
                "sampleproject-4.0.0-py3-none-any.whl",
                f"{FILES}/67/2a/9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e/"
                "sampleproject-4.0.0-py3-none-any.whl",
                {"sha256": SHA_G},
                requires_python=">=3.8",
                core_metadata={"sha256": SHA_A},
                size=4662,
                upload_time="2024-04-17T20:23:31.364416Z",
            ),
            DistFile(
                "sampleproject-4.0.0.tar.gz",
                f"{FILES}/ee/1d/3c5e7a9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c/"
                "sampleproject-4.0.0.tar.gz",
                {"sha256": SHA_B},
                requires_python=">=3.8",
                size=5147,
                upload_time="2024-04-17T20:23:32.892711Z",
            ),
        ),
        versions=("1.2.0", "1.3.0", "2.0.0", "3.0.0", "4.0.0"),
    )
    assert parse_project_json(data, PAGE_URL, NAME) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"../../files/{WHEEL}", f"https://pypi.org/files/{WHEEL}"),
        (WHEEL, f"https://pypi.org/simple/sampleproject/{WHEEL}"),
        (f"/p/{WHEEL}", f"https://pypi.org/p/{WHEEL}"),
        (f"https://cdn.example/{WHEEL}", f"https://cdn.example/{WHEEL}"),
    ],
)
def test_relative_urls_resolve_against_page_url(url: str, expected: str) -> None:
    """Relative file URLs are resolved against the page URL."""
    assert _parse_entry(url=url).url == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param("<html></html>", "not valid JSON", id="html"),
        pytest.param(b"\xff\xfe{", "not valid JSON", id="bad-bytes"),
        pytest.param("", "not valid JSON", id="empty"),
        pytest.param("[]", "not an object", id="array"),
        pytest.param('"x"', "not an object", id="string"),
        pytest.param('{"name": "demo"}', "no 'files' list", id="no-files"),
        pytest.param('{"name": "demo", "files": {}}', "no 'files' list", id="files-not-list"),
        pytest.param('{"name": "demo", "files": [1]}', "not an object", id="entry-not-object"),
        pytest.param(_doc({"url": "u"}), "filename", id="no-filename"),
        pytest.param(_doc({"filename": 3, "url": "u"}), "filename", id="filename-not-str"),
        pytest.param(_doc({"filename": "", "url": "u"}), "filename", id="filename-empty"),
        pytest.param(_doc({"filename": WHEEL}), "url", id="no-url"),
        pytest.param(_doc({"filename": WHEEL, "url": None}), "url", id="url-null"),
        pytest.param(_doc(meta={"api-version": "2.0"}), "unsupported", id="major-2"),
        pytest.param(_doc(meta={"api-version": "0.9"}), "unsupported", id="major-0"),
        pytest.param(_doc(meta={"api-version": 1.0}), "unsupported", id="version-not-str"),
        pytest.param(_doc(meta=[]), "'meta'", id="meta-not-object"),
        pytest.param(_doc(name=None), "no valid 'name'", id="no-name"),
        pytest.param(_doc(name="-bad-"), "no valid 'name'", id="invalid-name"),
        pytest.param("[" * 100_000 + "]" * 100_000, "not valid JSON", id="deep-nesting"),
    ],
)
def test_malformed_documents_raise(data: str | bytes, message: str) -> None:
    """Documents that are not PEP 691 project pages raise UpstreamInvalid with a short message."""
    with pytest.raises(UpstreamInvalid, match=message):
        parse_project_json(data, PAGE_URL)


def test_name_mismatch_raises() -> None:
    """A page that names a different project than the one requested is refused."""
    with pytest.raises(UpstreamInvalid, match="is for 'demo', not 'other'"):
        parse_project_json(_doc(), PAGE_URL, NormalizedName("other"))


@pytest.mark.parametrize(
    ("top", "given", "expected"),
    [
        ({"name": "Demo_Project"}, None, "demo-project"),
        ({"name": "Demo_Project"}, "demo-project", "demo-project"),
        ({"name": None}, "demo", "demo"),
        ({"name": 5}, "demo", "demo"),
    ],
)
def test_page_name(top: dict[str, Any], given: str | None, expected: str) -> None:
    """The page's name is normalized; the requested name stands in when the page lacks a valid one."""
    name = None if given is None else NormalizedName(given)
    assert parse_project_json(_doc(**top), PAGE_URL, name).name == expected


@pytest.mark.parametrize(
    "doc",
    [
        {"meta": {"api-version": "1.0"}, "files": []},
        {"meta": {"api-version": "1.99", "_last-serial": 3}, "files": []},
        {"meta": {}, "files": []},
        {"files": []},
    ],
)
def test_api_version_1x_and_missing_are_accepted(doc: dict[str, Any]) -> None:
    """Any 1.x api-version is accepted (PEP 629 only warns on a greater minor), as is a missing one."""
    demo = NormalizedName("demo")
    assert parse_project_json(json.dumps(doc), PAGE_URL, demo) == ProjectPage(demo, ())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, DistFile(WHEEL, f"https://f.example/{WHEEL}"), id="minimal"),
        pytest.param(
            {"hashes": {"SHA256": SHA_A.upper(), "md5": 5, "x": "not-hex", "blake2b_256": "AB"}},
            DistFile(WHEEL, f"https://f.example/{WHEEL}", {"sha256": SHA_A, "blake2b_256": "ab"}),
            id="hashes-lowered-and-filtered",
        ),
        pytest.param({"hashes": ["sha256"]}, DistFile(WHEEL, f"https://f.example/{WHEEL}"), id="hashes-not-dict"),
        pytest.param(
            {"requires-python": ">=3.8", "upload-time": "2024-01-01T00:00:00Z", "size": 0},
            DistFile(
                WHEEL, f"https://f.example/{WHEEL}", requires_python=">=3.8", size=0, upload_time="2024-01-01T00:00:00Z"
            ),
            id="optional-fields",
        ),
        pytest.param(
            {"requires-python": "", "upload-time": "", "provenance": None, "gpg-sig": False, "x-extra": {}},
            DistFile(WHEEL, f"https://f.example/{WHEEL}"),
            id="empty-and-unknown-fields",
        ),
    ],
)
def test_file_fields(fields: dict[str, Any], expected: DistFile) -> None:
    """Each file entry maps onto DistFile; unknown keys are ignored and empty strings mean absent."""
    assert _parse_entry(**fields) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(False, False), (True, True), ("", False), ("reason", "reason"), (None, False), (1, False), ({}, False)],
)
def test_yanked(raw: object, expected: bool | str) -> None:
    """PEP 592/691: yanked is true or a non-empty reason; false, "" and junk mean not yanked."""
    assert _parse_entry(yanked=raw).yanked == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(3, 3), (0, 0), (True, None), (-1, None), (1.5, None), ("3", None), (None, None)],
)
def test_size(raw: object, expected: int | None) -> None:
    """PEP 700 size must be a non-negative integer; bools, negatives and strings are dropped."""
    assert _parse_entry(size=raw).size == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, False),
        ({"core-metadata": True}, True),
        ({"core-metadata": {"sha256": SHA_A}}, {"sha256": SHA_A}),
        ({"core-metadata": {}}, True),
        ({"core-metadata": {"sha256": "nothex"}}, True),
        ({"core-metadata": "yes"}, False),
        ({"dist-info-metadata": {"sha256": SHA_B}}, {"sha256": SHA_B}),
        ({"dist-info-metadata": True}, True),
        ({"core-metadata": {"sha256": SHA_A}, "dist-info-metadata": {"sha256": SHA_B}}, {"sha256": SHA_A}),
        ({"core-metadata": False, "dist-info-metadata": True}, False),
        ({"core-metadata": None, "dist-info-metadata": True}, True),
        ({"data-dist-info-metadata": True}, False),
    ],
)
def test_core_metadata(fields: dict[str, Any], expected: dict[str, str] | bool) -> None:
    """PEP 714: core-metadata wins when present; the legacy dist-info-metadata key is only a fallback."""
    assert _parse_entry(**fields).core_metadata == expected


@pytest.mark.parametrize(
    ("top", "versions"),
    [
        ({"versions": ["2.0", "1.0", 3]}, ("2.0", "1.0")),
        ({"versions": []}, ()),
        ({}, ("1.0",)),
        ({"versions": "1.0"}, ("1.0",)),
    ],
)
def test_versions(top: dict[str, Any], versions: tuple[str, ...]) -> None:
    """A `versions` list is kept as given (strings only); without one, versions derive from filenames."""
    assert parse_project_json(_doc(_entry(), **top), PAGE_URL).versions == versions


def test_render_exact_output() -> None:
    """The rendered document is compact PEP 691 JSON with hashes/yanked/core-metadata always present."""
    page = ProjectPage(
        NormalizedName("demo"),
        (
            DistFile(WHEEL, "u1", {"sha256": SHA_A}, ">=3.8", "bad", {"sha256": SHA_B}, 10, "2024-01-01T00:00:00Z"),
            DistFile("demo-1.0.tar.gz", "u2"),
        ),
        ("1.0",),
    )
    assert render_project_json(page, lambda f: f"/files/{f.filename}") == (
        '{"meta":{"api-version":"1.0"},"name":"demo","files":['
        f'{{"filename":"{WHEEL}","url":"/files/{WHEEL}","hashes":{{"sha256":"{SHA_A}"}},'
        f'"requires-python":">=3.8","yanked":"bad","core-metadata":{{"sha256":"{SHA_B}"}},'
        '"size":10,"upload-time":"2024-01-01T00:00:00Z"},'
        '{"filename":"demo-1.0.tar.gz","url":"/files/demo-1.0.tar.gz","hashes":{},"yanked":false,'
        '"core-metadata":false}],"versions":["1.0"]}'
    )


@pytest.mark.parametrize("core_metadata", [False, True, {"sha256": SHA_A}, {"blake2b_256": "ab"}])
def test_render_never_emits_legacy_metadata_key(core_metadata: dict[str, str] | bool) -> None:
    """PEP 714: the legacy `dist-info-metadata` JSON key is never rendered (pip hard-fails on it)."""
    page = ProjectPage(NAME, (DistFile(WHEEL, "u", core_metadata=core_metadata),))
    assert "dist-info-metadata" not in render_project_json(page, lambda f: f.url)


@pytest.mark.parametrize(
    ("hashes", "rendered"),
    [
        ({"sha256": SHA_A, "blake2b_256": "ab"}, {"sha256": SHA_A}),
        ({"md5": "cd", "sha512": "ef", "sha384": "01", "sha1": "23"}, {"sha512": "ef", "sha384": "01", "md5": "cd"}),
        ({"blake2b_256": "ab"}, {}),
    ],
)
def test_render_only_emittable_hashes(hashes: dict[str, str], rendered: dict[str, str]) -> None:
    """Only EMITTABLE_HASHES algorithms are rendered, in file hashes and core-metadata alike."""
    page = ProjectPage(NAME, (DistFile(WHEEL, "u", hashes, core_metadata=hashes),))
    entry = _rendered(page)["files"][0]
    assert entry["hashes"] == rendered
    assert entry["core-metadata"] == (rendered or True)


@pytest.mark.parametrize(
    ("sizes", "version"),
    [((1, 2), "1.1"), ((1, None), "1.0"), ((None,), "1.0"), ((), "1.1")],
)
def test_render_api_version_is_honest(sizes: tuple[int | None, ...], version: str) -> None:
    """PEP 629/700: api-version 1.1 only when every file has a size."""
    files = tuple(DistFile(f"demo-{i}.0.tar.gz", "u", size=s) for i, s in enumerate(sizes))
    assert _rendered(ProjectPage(NAME, files))["meta"] == {"api-version": version}


def test_render_derives_versions_when_empty() -> None:
    """A page without explicit versions renders the versions of its filenames (PEP 700 requires the key)."""
    files = (DistFile("demo-2.0.tar.gz", "u"), DistFile("demo-1.0.tar.gz", "u"), DistFile("demo.exe", "u"))
    assert _rendered(ProjectPage(NAME, files))["versions"] == ["1.0", "2.0"]


ROUND_TRIP_PAGES = [
    ProjectPage(NAME, ()),
    ProjectPage(
        NAME,
        (
            DistFile(
                WHEEL,
                "https://f.example/a/" + WHEEL,
                {"sha256": SHA_A, "md5": "ab"},
                ">=3.8,<4",
                True,
                {"sha256": SHA_B},
                1234,
                "2024-05-06T07:08:09.123456Z",
            ),
            DistFile("demo-1.0.tar.gz", "https://f.example/b/demo-1.0.tar.gz", yanked='régression "é" <&>'),
            DistFile("demo-2.0.tar.gz", "https://f.example/c/demo-2.0.tar.gz", core_metadata=True, size=0),
            DistFile("legacy.exe", "https://f.example/d/legacy%20x.exe?a=1&b=2", {"sha512": SHA_C}),
        ),
        ("2.0", "1.0", "1.5"),
    ),
]


@pytest.mark.parametrize("page", ROUND_TRIP_PAGES)
def test_round_trip(page: ProjectPage) -> None:
    """parse(render(page)) == page: the storage format keeps every DistFile field (absolute URLs)."""
    assert parse_project_json(render_project_json(page, lambda f: f.url), "") == page


def test_round_trip_with_explicit_name_and_relative_base() -> None:
    """Stored documents parse back with the expected name even when the base URL differs."""
    page = ROUND_TRIP_PAGES[1]
    assert parse_project_json(render_project_json(page, lambda f: f.url), PAGE_URL, NAME) == page


def test_parsed_files_are_upstream() -> None:
    """Parsed pages and files are marked as coming from upstream."""
    page = parse_project_json(_doc(_entry()), PAGE_URL)
    assert (page.origin, page.files[0].origin) == (Origin.UPSTREAM, Origin.UPSTREAM)


def test_render_index_json() -> None:
    """The project list is compact PEP 691 JSON claiming api-version 1.0."""
    projects = ProjectList((NormalizedName("a-b"), NormalizedName("c")))
    assert render_index_json(projects) == ('{"meta":{"api-version":"1.0"},"projects":[{"name":"a-b"},{"name":"c"}]}')


UNSAFE_FILENAMES = ["../evil.whl", "a/b-1.0.tar.gz", "..", ".", "a\\b-1.0.tar.gz", "nul\x00-1.0.tar.gz", "x\n.whl"]


@pytest.mark.parametrize("filename", UNSAFE_FILENAMES)
def test_unsafe_filenames_are_dropped(filename: str, caplog: pytest.LogCaptureFixture) -> None:
    """A file whose name is not one plain path segment is dropped (with a warning); the others are kept."""
    page = parse_project_json(_doc(_entry(), _entry(filename=filename)), PAGE_URL)
    assert [f.filename for f in page.files] == [WHEEL]
    assert repr(filename) in caplog.text


def test_more_files_than_allowed_is_refused() -> None:
    """max_files bounds the page: one file more is UpstreamInvalid naming [upstream] max_page_files."""
    doc = _doc(*(_entry(filename=f"demo-1.{i}.tar.gz") for i in range(3)))
    assert len(parse_project_json(doc, PAGE_URL, max_files=3).files) == 3
    with pytest.raises(UpstreamInvalid, match=r"4 files, more than \[upstream\] max_page_files \(3\)"):
        parse_project_json(_doc(*(_entry(filename=f"demo-1.{i}.tar.gz") for i in range(4))), PAGE_URL, max_files=3)

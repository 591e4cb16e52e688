"""Publishing over HTTP: twine uploads on every path, PyPI's refusals, credentials, and the management API."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.artifacts import Artifact, build_sdist, build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import HTML, JSON, ProxyFactory
from tests.publishing import (
    PASSWORD_AUTH,
    TOKEN,
    TOKEN_AUTH,
    Stored,
    add_token,
    revoke_token,
    spool_files,
    stored,
    twine_upload,
    write_htpasswd,
)
from tests.stores import data_dir_meta

PROJECT = "hello-world"
WHEEL = build_wheel(PROJECT, "1.0", requires_python=">=3.9")
SDIST = build_sdist(PROJECT, "1.0")
# Same filename as WHEEL, other bytes.
WHEEL_OTHER = build_wheel(PROJECT, "1.0", requires_python=">=3.9", module_source="CHANGED = True\n")
BIG = build_wheel(PROJECT, "1.0", payload_size=5000)

SEE_SPEC = "See https://packaging.python.org/specifications/core-metadata for more information."
DIGEST_MISMATCH = "The digest supplied does not match a digest calculated from the uploaded file."
BAD_CREDENTIALS = "Invalid or non-existent authentication information."
UPLOAD_NEEDS_AUTH = (
    "Invalid or non-existent authentication information. Uploads to shadowpi need a user from the htpasswd file "
    "or an API token (username __token__)."
)
BAD_EXTENSION = (
    "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 "
    "and https://peps.python.org/pep-0715/ for more information"
)
SEPARATOR = "Cannot upload a file with '/' or '\\' in the name."
NON_PRINTABLE = "Cannot upload a file with non-printable characters (ordinals 0-31) in the name."
FILENAME_REUSE = (
    "This filename was previously used by a file that has since been deleted. Use a different version. "
    "See https://pypi.org/help/#file-name-reuse for more information."
)
UPLOAD_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blake2(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def renamed(artifact: Artifact, filename: str) -> Artifact:
    return dataclasses.replace(artifact, filename=filename)


def file_url(artifact: Artifact, project: str = PROJECT) -> str:
    return f"/files/{project}/{artifact.sha256}/{artifact.filename}"


def authorization(credentials: tuple[str, str] | None) -> dict[str, str]:
    """The Authorization header for (user, password); none for None."""
    return {"Authorization": aiohttp.encode_basic_auth(*credentials)} if credentials is not None else {}


async def json_page(client: TestClient, project: str = PROJECT, auth: tuple[str, str] | None = None) -> Any:
    resp = await client.get(f"/simple/{project}/", headers={**JSON, **authorization(auth)})
    assert resp.status == 200, resp.reason
    return await resp.json(content_type=None)


async def files_on_page(client: TestClient, project: str = PROJECT) -> dict[str, dict[str, Any]]:
    return {f["filename"]: f for f in (await json_page(client, project))["files"]}


async def html_anchor(client: TestClient, filename: str, project: str = PROJECT) -> str:
    """The opening <a ...> tag of `filename` on the HTML page."""
    text = await (await client.get(f"/simple/{project}/", headers=HTML)).text()
    found = re.search(rf"<a [^>]*>{re.escape(filename)}</a>", text)
    assert found is not None, text
    return found.group(0)


async def download(client: TestClient, project: str, url: str, auth: tuple[str, str] | None = None) -> bytes:
    """GET a file URL from a project page (resolved against the page URL) and return its bytes."""
    resp = await client.get(urljoin(f"/simple/{project}/", url), headers=authorization(auth))
    assert resp.status == 200, resp.reason
    return await resp.read()


async def assert_nothing_written(
    client: TestClient, data_dir: Path, before: Stored, *, project: str | None = PROJECT, filename: str = ""
) -> None:
    """No new row or blob, no spool left over, the page does not list the file, and the server still serves."""
    assert await stored(data_dir) == before
    assert spool_files(data_dir) == []
    if project is not None:
        resp = await client.get(f"/simple/{project}/", headers=JSON)
        if resp.status != 404:
            assert resp.status == 200
            listed = {f["filename"] for f in (await resp.json(content_type=None))["files"]}
            assert filename not in listed
    assert (await client.get("/health")).status == 200


@pytest.fixture
def data_dir(make_proxy: ProxyFactory) -> Path:
    return make_proxy.data_dir


@pytest.fixture
async def token_id(data_dir: Path) -> int:
    """TOKEN, stored for user "ci" before shadowpi starts."""
    return await add_token(data_dir, "ci")


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    return write_htpasswd(tmp_path / "htpasswd", dict([PASSWORD_AUTH]))


@pytest.fixture
async def index(make_proxy: ProxyFactory, token_id: int, htpasswd: Path) -> TestClient:
    """shadowpi with an htpasswd user (alice/pw) and an API token (TOKEN, user "ci")."""
    return await make_proxy(auth={"htpasswd": str(htpasswd)})


# --- the happy path --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/legacy/", "/legacy", "/simple/"])
async def test_wheel_and_sdist_are_published(index: TestClient, data_dir: Path, path: str):
    """A wheel and an sdist uploaded like twine are listed with PEP 691/700/658 data and served byte for byte."""
    for artifact in (WHEEL, SDIST):
        resp = await twine_upload(index, artifact, path=path)
        assert resp.status == 200, resp.reason
        assert await resp.text() == f"OK: {artifact.filename}\n"
        assert artifact.filename in await files_on_page(index)  # no stale page between uploads
    page_resp = await index.get(f"/simple/{PROJECT}/", headers=JSON)
    assert page_resp.headers["X-Shadowpi-Cache"] == "private"
    page = await page_resp.json(content_type=None)
    assert page["name"] == PROJECT
    assert page["versions"] == ["1.0"]
    files = {f["filename"]: f for f in page["files"]}
    assert set(files) == {WHEEL.filename, SDIST.filename}
    for artifact in (WHEEL, SDIST):
        entry = files[artifact.filename]
        assert entry["hashes"] == {"sha256": artifact.sha256}
        assert entry["size"] == artifact.size
        assert UPLOAD_TIME.fullmatch(entry["upload-time"])
        assert entry["yanked"] is False
        assert await download(index, PROJECT, entry["url"]) == artifact.data
    assert WHEEL.metadata is not None
    assert files[WHEEL.filename]["requires-python"] == ">=3.9"
    assert files[WHEEL.filename]["core-metadata"] == {"sha256": sha256(WHEEL.metadata)}
    assert "requires-python" not in files[SDIST.filename]
    assert files[SDIST.filename]["core-metadata"] is False
    assert await download(index, PROJECT, files[WHEEL.filename]["url"] + ".metadata") == WHEEL.metadata
    assert (await index.get(file_url(SDIST) + ".metadata")).status == 404
    assert await stored(data_dir) == Stored(
        frozenset({WHEEL.sha256, SDIST.sha256, sha256(WHEEL.metadata)}), frozenset({WHEEL.filename, SDIST.filename})
    )
    assert spool_files(data_dir) == []


async def test_html_page_lists_uploads(index: TestClient):
    """The HTML page links the upload with its hash, escaped requires-python and PEP 658/714 attributes."""
    assert (await twine_upload(index, WHEEL)).status == 200
    anchor = await html_anchor(index, WHEEL.filename)
    assert f"#sha256={WHEEL.sha256}" in anchor
    assert 'data-requires-python="&gt;=3.9"' in anchor
    assert WHEEL.metadata is not None
    assert f'data-core-metadata="sha256={sha256(WHEEL.metadata)}"' in anchor
    assert f'data-dist-info-metadata="sha256={sha256(WHEEL.metadata)}"' in anchor
    assert "data-yanked" not in anchor


async def test_archive_metadata_wins_over_form_fields(index: TestClient):
    """requires-python comes from the archive's METADATA, not from what the form claims."""
    assert (await twine_upload(index, WHEEL, requires_python=">=2.7")).status == 200
    assert (await files_on_page(index))[WHEEL.filename]["requires-python"] == ">=3.9"


@pytest.mark.parametrize("name", ["Hello_World", "hello.world", "HELLO-WORLD"])
async def test_any_spelling_of_the_name_is_accepted(index: TestClient, name: str):
    """The form's name may be any spelling of the project name; the page uses the normalized one."""
    resp = await twine_upload(index, WHEEL, name=name)
    assert resp.status == 200, resp.reason
    assert list(await files_on_page(index)) == [WHEEL.filename]


@pytest.mark.parametrize("artifact", [build_wheel(PROJECT, "1.0+acme.1"), build_sdist(PROJECT, "1.0+acme.1")],
                         ids=["wheel", "sdist"])
async def test_local_versions_are_accepted(index: TestClient, artifact: Artifact):
    """Unlike PyPI, a private index accepts local versions (1.0+acme.1) and serves them."""
    resp = await twine_upload(index, artifact)
    assert resp.status == 200, resp.reason
    page = await json_page(index)
    assert page["versions"] == ["1.0+acme.1"]
    [entry] = page["files"]
    assert entry["filename"] == artifact.filename
    assert await download(index, PROJECT, entry["url"]) == artifact.data


async def test_upstream_is_never_asked_about_an_uploaded_project(index: TestClient, upstream: Upstream):
    """A private project hides a same-named upstream project with higher versions; upstream never hears the name."""
    for version in ("1.0", "9.0", "10.0"):
        upstream.fake.add(build_wheel("acme-utils", version))
    newer = upstream.fake.projects["acme-utils"][-1].artifact
    private = build_wheel("acme-utils", "1.0", module_source="PRIVATE = True\n")
    assert (await twine_upload(index, private)).status == 200
    page = await json_page(index, "acme-utils")
    assert page["versions"] == ["1.0"]
    assert [(f["filename"], f["hashes"]["sha256"]) for f in page["files"]] == [(private.filename, private.sha256)]
    assert await download(index, "acme-utils", page["files"][0]["url"]) == private.data
    assert await download(index, "acme-utils", page["files"][0]["url"] + ".metadata") == private.metadata
    assert private.filename in await html_anchor(index, private.filename, "acme-utils")
    assert (await index.get(file_url(newer, "acme-utils"))).status == 404
    assert (await index.get("/simple/acme_utils/", headers=JSON, allow_redirects=False)).status == 301
    listing = await (await index.get("/simple/", headers=JSON)).json(content_type=None)
    assert {"name": "acme-utils"} in listing["projects"]
    assert [r for r in upstream.fake.requests if "acme" in r.lower()] == []


async def test_upload_survives_a_restart(make_proxy: ProxyFactory, token_id: int, data_dir: Path):
    """Uploaded files are still listed and served after shadowpi restarts on the same data dir."""
    client = await make_proxy()
    assert (await twine_upload(client, WHEEL)).status == 200
    await client.close()
    client = await make_proxy()
    [entry] = (await json_page(client))["files"]
    assert entry["filename"] == WHEEL.filename
    assert await download(client, PROJECT, entry["url"]) == WHEEL.data
    assert (await twine_upload(client, WHEEL)).status == 200  # still known: an idempotent re-upload


# --- re-uploads ------------------------------------------------------------------------------------------


async def test_identical_reupload_is_a_success(index: TestClient, data_dir: Path):
    """twine retries: the same bytes under the same filename answer 200 and change nothing."""
    assert (await twine_upload(index, WHEEL)).status == 200
    first = await files_on_page(index)
    before = await stored(data_dir)
    again = await twine_upload(index, WHEEL, path="/legacy/")
    assert again.status == 200, again.reason
    assert await again.text() == f"OK: {WHEEL.filename}\n"
    assert await files_on_page(index) == first  # same upload-time: nothing was rewritten
    assert await stored(data_dir) == before
    assert spool_files(data_dir) == []


async def test_same_filename_other_bytes_is_refused(index: TestClient, data_dir: Path):
    """Other bytes under a used filename: 400 "File already exists" (twine --skip-existing), original kept."""
    assert WHEEL_OTHER.filename == WHEEL.filename and WHEEL_OTHER.data != WHEEL.data
    assert (await twine_upload(index, WHEEL)).status == 200
    before = await stored(data_dir)
    resp = await twine_upload(index, WHEEL_OTHER)
    assert resp.status == 400
    assert resp.reason == (
        f"File already exists ('{WHEEL.filename}', with blake2_256 hash '{blake2(WHEEL.data)}'). "
        "See https://pypi.org/help/#file-name-reuse for more information."
    )
    assert await resp.text() == resp.reason + "\n"
    await assert_nothing_written(index, data_dir, before, project=None)
    [entry] = (await json_page(index))["files"]
    assert entry["hashes"] == {"sha256": WHEEL.sha256}
    assert await download(index, PROJECT, entry["url"]) == WHEEL.data
    assert (await index.get(file_url(WHEEL_OTHER))).status == 404


@pytest.mark.parametrize(
    "filename",
    ["Hello_World-1.0-py3-none-any.whl", "hello.world-1.0-py3-none-any.whl", "hello_world-1.0.0-py3-none-any.whl"],
)
async def test_respelled_filename_cannot_add_other_bytes_to_a_release(index: TestClient, data_dir: Path, filename: str):
    """Other bytes for an already published wheel (same project, version and tags) are refused however spelled."""
    assert (await twine_upload(index, WHEEL)).status == 200
    before = await stored(data_dir)
    resp = await twine_upload(index, renamed(WHEEL_OTHER, filename))
    assert resp.status == 400
    await assert_nothing_written(index, data_dir, before, filename=filename)


async def test_overwrite_when_allowed(make_proxy: ProxyFactory, token_id: int):
    """With [upload] allow_overwrite, other bytes replace the file: the page and the download show the new ones."""
    client = await make_proxy(upload={"allow_overwrite": True})
    assert (await twine_upload(client, WHEEL)).status == 200
    resp = await twine_upload(client, WHEEL_OTHER)
    assert resp.status == 200, resp.reason
    [entry] = (await json_page(client))["files"]
    assert entry["hashes"] == {"sha256": WHEEL_OTHER.sha256}
    assert await download(client, PROJECT, entry["url"]) == WHEEL_OTHER.data
    assert await download(client, PROJECT, entry["url"] + ".metadata") == WHEEL_OTHER.metadata
    assert (await client.get(file_url(WHEEL))).status == 404


async def test_concurrent_uploads_of_one_filename(index: TestClient, data_dir: Path):
    """Two racing uploads of one filename with different bytes: one 200, one "File already exists", winner kept."""
    first, second = await asyncio.gather(twine_upload(index, WHEEL), twine_upload(index, WHEEL_OTHER))
    assert sorted([first.status, second.status]) == [200, 400]
    loser = first if first.status == 400 else second
    assert loser.reason.startswith("File already exists")
    winner = WHEEL if first.status == 200 else WHEEL_OTHER
    [entry] = (await json_page(index))["files"]
    assert entry["hashes"] == {"sha256": winner.sha256}
    assert await download(index, PROJECT, entry["url"]) == winner.data
    assert (await stored(data_dir)).files == {WHEEL.filename}
    assert spool_files(data_dir) == []


async def test_concurrent_identical_uploads_both_succeed(index: TestClient, data_dir: Path):
    """Two racing uploads of the same bytes (a twine retry overlapping the original) both answer 200."""
    results = await asyncio.gather(*(twine_upload(index, WHEEL) for _ in range(3)))
    assert [r.status for r in results] == [200, 200, 200]
    assert list(await files_on_page(index)) == [WHEEL.filename]
    assert spool_files(data_dir) == []


# --- refusals: form, digests, filenames, archives ----------------------------------------------------------


REFUSED_FORMS = [
    pytest.param(WHEEL, {"sha256_digest": "0" * 64}, DIGEST_MISMATCH, id="wrong-sha256"),
    pytest.param(WHEEL, {"blake2_256_digest": "0" * 64}, DIGEST_MISMATCH, id="wrong-blake2"),
    pytest.param(WHEEL, {"sha256_digest": None, "md5_digest": "0" * 32}, DIGEST_MISMATCH, id="wrong-md5"),
    pytest.param(WHEEL, {"sha256_digest": sha256(SDIST.data)}, DIGEST_MISMATCH, id="digest-of-another-file"),
    pytest.param(
        WHEEL, {"sha256_digest": None, "blake2_256_digest": None}, "Error: Include at least one message digest.",
        id="no-digest",
    ),
    pytest.param(
        WHEEL, {"sha256_digest": "abc"},
        "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest.", id="bad-sha256",
    ),
    pytest.param(WHEEL, {"protocol_version": "2"}, "Unknown protocol version.", id="protocol-2"),
    pytest.param(WHEEL, {"action": "submit"}, "Unknown action.", id="action-submit"),
    pytest.param(WHEEL, {"action": None}, "Missing ':action' field.", id="action-missing"),
    pytest.param(
        WHEEL, {"filetype": "bdist_egg"}, "Invalid value for filetype. Error: Use a known file type.", id="bdist-egg"
    ),
    pytest.param(
        WHEEL, {"filetype": None}, "Invalid value for filetype. Error: This field is required.", id="no-filetype"
    ),
    pytest.param(
        WHEEL, {"version": "1.0-garbage"}, f"'1.0-garbage' is invalid for 'version'. {SEE_SPEC}", id="bad-version"
    ),
    pytest.param(WHEEL, {"version": None}, f"'version' is a required field. {SEE_SPEC}", id="no-version"),
    pytest.param(
        WHEEL, {"name": None}, f"'' is an invalid value for Name. Error: This field is required. {SEE_SPEC}",
        id="no-name",
    ),
    pytest.param(
        WHEEL, {"name": "-bad-"},
        "'-bad-' is an invalid value for Name. Error: Start and end with a letter or numeral containing only "
        f"ASCII numeric and '.', '_' and '-'. {SEE_SPEC}",
        id="bad-name",
    ),
    pytest.param(
        WHEEL, {"name": "other"},
        f"Filename '{WHEEL.filename}' should contain the normalized project name 'other', not 'hello_world'.",
        id="wheel-name-mismatch",
    ),
    pytest.param(
        SDIST, {"name": "other"}, "Start filename for 'other' with 'other'.", id="sdist-name-mismatch"
    ),
    pytest.param(WHEEL, {"version": "2.0"}, "Version in filename should be '2.0' not '1.0'.", id="wheel-version"),
    pytest.param(SDIST, {"version": "2.0"}, "Version in filename should be '2.0' not '1.0'.", id="sdist-version"),
    pytest.param(
        WHEEL, {"pyversion": None},
        "Invalid value for pyversion. Error: Python version is required for binary distribution uploads.",
        id="wheel-without-pyversion",
    ),
    pytest.param(
        SDIST, {"pyversion": "py3"}, "Invalid value for pyversion. Error: Use 'source' as Python version for an sdist.",
        id="sdist-pyversion",
    ),
    pytest.param(
        WHEEL, {"filetype": "sdist", "pyversion": "source"},
        "Invalid file extension: Extension .whl is invalid for filetype sdist. "
        "See https://www.python.org/dev/peps/pep-0527 for more information.",
        id="wheel-sent-as-sdist",
    ),
    pytest.param(
        WHEEL, {"summary": "nul \x00 inside"}, "Invalid value for summary. Error: NUL characters are not allowed.",
        id="nul-in-field",
    ),
    pytest.param(WHEEL, {"filename": "hello_world-1.0.exe"}, BAD_EXTENSION, id="exe"),
    pytest.param(WHEEL, {"filename": "hello_world-1.0-py3.11.egg"}, BAD_EXTENSION, id="egg"),
    pytest.param(SDIST, {"filename": "hello_world-1.0.tar.bz2"}, BAD_EXTENSION, id="tar-bz2"),
    pytest.param(
        WHEEL, {"filename": "hello_world-1.0.whl"},
        "Invalid wheel filename (wrong number of parts): 'hello_world-1.0'", id="bad-wheel-filename",
    ),
    pytest.param(
        renamed(WHEEL, "other-1.0-py3-none-any.whl"), {"name": "other"},
        "Metadata name 'hello-world' does not match the form's name 'other'.", id="wheel-metadata-name",
    ),
    pytest.param(
        renamed(WHEEL, "hello_world-2.0-py3-none-any.whl"), {"version": "2.0"},
        "Metadata version '1.0' does not match the form's version '2.0'.", id="wheel-metadata-version",
    ),
    pytest.param(
        renamed(SDIST, "other-1.0.tar.gz"), {"name": "other"},
        "Metadata name 'hello-world' does not match the form's name 'other'.", id="sdist-metadata-name",
    ),
    pytest.param(
        Artifact(WHEEL.filename, b"this is not a zip archive\n" * 20, WHEEL.metadata), {},
        "Invalid distribution file. File is not a zip file", id="not-a-zip",
    ),
    pytest.param(
        Artifact(SDIST.filename, b"this is not a tarball\n" * 20, SDIST.metadata), {},
        "Invalid distribution file. not a gzip file", id="not-a-tarball",
    ),
]


@pytest.mark.parametrize(("artifact", "overrides", "reason"), REFUSED_FORMS)
async def test_refused_upload_writes_nothing(
    index: TestClient, data_dir: Path, artifact: Artifact, overrides: dict[str, str | None], reason: str
):
    """Invalid forms, digests, filenames and archives: 400 with PyPI's message as the reason, nothing stored."""
    assert (await twine_upload(index, SDIST if artifact.is_wheel else WHEEL)).status == 200  # an earlier success
    before = await stored(data_dir)
    resp = await twine_upload(index, artifact, **overrides)
    assert resp.status == 400
    assert resp.reason == reason
    assert await resp.text() == reason + "\n"
    await assert_nothing_written(index, data_dir, before, filename=overrides.get("filename") or artifact.filename)


PATH_TRICKS = [
    pytest.param("../evil-1.0-py3-none-any.whl", SEPARATOR, id="dotdot-slash"),
    pytest.param("..\\evil-1.0-py3-none-any.whl", SEPARATOR, id="dotdot-backslash"),
    pytest.param("/tmp/evil-1.0-py3-none-any.whl", SEPARATOR, id="absolute"),
    pytest.param("a/b.whl", SEPARATOR, id="slash"),
    pytest.param("a\\b.whl", SEPARATOR, id="backslash"),
    pytest.param("evil\x00-1.0-py3-none-any.whl", NON_PRINTABLE, id="nul"),
    pytest.param("evil\t-1.0-py3-none-any.whl", NON_PRINTABLE, id="tab"),
    pytest.param("evil\x1b[2J-1.0-py3-none-any.whl", NON_PRINTABLE, id="escape"),
    pytest.param("evil\x7f-1.0-py3-none-any.whl", NON_PRINTABLE, id="del"),
    pytest.param("evil\u2028-1.0-py3-none-any.whl", NON_PRINTABLE, id="line-separator"),
    pytest.param(".hidden.whl", "Invalid filename: '.hidden.whl'", id="hidden"),
    pytest.param("..", "Invalid filename: '..'", id="dotdot"),
]


@pytest.mark.parametrize(("filename", "reason"), PATH_TRICKS)
async def test_path_tricks_in_the_filename_are_refused(
    index: TestClient, data_dir: Path, tmp_path: Path, filename: str, reason: str
):
    """Separators, control characters and dot-files in the part's filename: 400, nothing written anywhere."""
    evil_before = set(tmp_path.parent.glob("**/evil*"))
    before = await stored(data_dir)
    resp = await twine_upload(index, WHEEL, filename=filename)
    assert resp.status == 400
    assert resp.reason == reason
    await assert_nothing_written(index, data_dir, before)
    assert set(tmp_path.parent.glob("**/evil*")) == evil_before
    assert not any("evil" in p.name for p in await asyncio.to_thread(lambda: list(data_dir.rglob("*"))))


async def test_oversized_upload_is_refused_while_streaming(make_proxy: ProxyFactory, token_id: int, data_dir: Path):
    """A file over [upload] max_size: 413 "File too large", nothing committed and no spool left behind."""
    client = await make_proxy(upload={"max_size": 1000})
    assert BIG.size > 5000
    before = await stored(data_dir)
    resp = await twine_upload(client, BIG)
    assert resp.status == 413
    assert "File too large" in resp.reason
    assert resp.reason == f"File too large. Limit for project '{PROJECT}' is 1000 bytes."
    await assert_nothing_written(client, data_dir, before)


def raw_form(fields: list[tuple[str, str]], files: list[tuple[str, bytes | str, str | None, str]]) -> aiohttp.FormData:
    """A hand-made multipart form: text fields, then (name, data, filename, content type) parts."""
    form = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
    for name, value in fields:
        form.add_field(name, value)
    for name, data, filename, content_type in files:
        form.add_field(name, data, filename=filename, content_type=content_type)
    return form


def wheel_fields(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    fields = {
        ":action": "file_upload", "protocol_version": "1", "name": PROJECT, "version": "1.0",
        "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1", "sha256_digest": WHEEL.sha256,
    }
    return [*fields.items(), *extra]


OCTET = "application/octet-stream"
NOT_MULTIPART = "Uploads must be multipart/form-data, as twine and uv publish send them."
THE_WHEEL = ("content", WHEEL.data, WHEEL.filename, OCTET)
# Each entry builds the keyword arguments of client.post() (a FormData can be sent only once).
MALFORMED = [
    pytest.param(lambda: {"json": {"name": PROJECT, "content": "aGk="}}, NOT_MULTIPART, id="json-body"),
    pytest.param(lambda: {"data": {"name": PROJECT, "version": "1.0"}}, NOT_MULTIPART, id="urlencoded"),
    pytest.param(
        lambda: {"data": raw_form(wheel_fields(), [])}, "Upload payload does not have a file.", id="no-content"
    ),
    pytest.param(
        lambda: {"data": raw_form(wheel_fields(), [("content", "not a file", None, "text/plain")])},
        "Upload payload does not have a file.", id="content-without-filename",
    ),
    pytest.param(
        lambda: {"data": raw_form(wheel_fields(), [("content", WHEEL.data, "", OCTET)])},
        "Upload payload does not have a file.", id="empty-filename",
    ),
    pytest.param(
        lambda: {"data": raw_form(wheel_fields(), [("content", WHEEL.data, WHEEL.filename, "image/png")])},
        "Invalid distribution file.", id="image-part",
    ),
    pytest.param(
        lambda: {"data": raw_form(wheel_fields(), [THE_WHEEL, THE_WHEEL])},
        "Only one file may be uploaded per request.", id="two-files",
    ),
    pytest.param(
        lambda: {"data": raw_form(wheel_fields(("name", "other")), [THE_WHEEL])},
        "Invalid value for name. Error: Use a single value.", id="repeated-name",
    ),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED)
async def test_malformed_requests_are_refused(
    index: TestClient, data_dir: Path, body: Callable[[], dict[str, Any]], reason: str
):
    """Bodies twine would never send: 400 with a message, nothing stored."""
    before = await stored(data_dir)
    resp = await index.post("/", headers=authorization(TOKEN_AUTH), **body())
    assert resp.status == 400
    assert resp.reason == reason
    await assert_nothing_written(index, data_dir, before)


# --- credentials -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "user"),
    [
        pytest.param(PASSWORD_AUTH, "alice", id="htpasswd"),
        pytest.param(TOKEN_AUTH, "ci", id="token"),
        pytest.param(("ci", TOKEN), "ci", id="token-with-owner-name"),
    ],
)
async def test_valid_credentials_may_upload(index: TestClient, data_dir: Path, credentials: tuple[str, str], user: str):
    """An htpasswd user or an API token uploads; the row records who did."""
    resp = await twine_upload(index, WHEEL, auth=credentials)
    assert resp.status == 200, resp.reason
    async with data_dir_meta(data_dir) as meta:
        record = await meta.private_file(WHEEL.filename)
    assert record is not None
    assert record.uploaded_by == user


REFUSED_CREDENTIALS = [
    pytest.param(None, None, UPLOAD_NEEDS_AUTH, id="anonymous"),
    pytest.param(("alice", "wrong"), None, BAD_CREDENTIALS, id="wrong-password"),
    pytest.param(("mallory", "pw"), None, BAD_CREDENTIALS, id="unknown-user"),
    pytest.param(("__token__", "spi_not-a-token"), None, BAD_CREDENTIALS, id="wrong-token"),
    pytest.param(("__token__", ""), None, BAD_CREDENTIALS, id="empty-token"),
    pytest.param(("alice", TOKEN), None, BAD_CREDENTIALS, id="token-of-another-user"),
    pytest.param(None, {"Authorization": "Basic !!!"}, BAD_CREDENTIALS, id="malformed-basic"),
    pytest.param(None, {"Authorization": "Bearer " + TOKEN}, UPLOAD_NEEDS_AUTH, id="bearer"),
]


@pytest.mark.parametrize(("credentials", "headers", "reason"), REFUSED_CREDENTIALS)
async def test_bad_credentials_are_refused(
    index: TestClient,
    data_dir: Path,
    credentials: tuple[str, str] | None,
    headers: dict[str, str] | None,
    reason: str,
):
    """Missing or wrong credentials: 403 (as PyPI answers uploads), nothing stored."""
    before = await stored(data_dir)
    resp = await twine_upload(index, WHEEL, auth=credentials, headers=headers)
    assert resp.status == 403
    assert resp.reason == reason
    assert "WWW-Authenticate" not in resp.headers
    await assert_nothing_written(index, data_dir, before)


async def test_revoked_token_is_refused(index: TestClient, data_dir: Path, token_id: int):
    """A token works until it is revoked, and not one request after (no stale credential cache)."""
    assert (await twine_upload(index, WHEEL)).status == 200
    await revoke_token(data_dir, token_id)
    before = await stored(data_dir)
    resp = await twine_upload(index, SDIST)
    assert resp.status == 403
    assert resp.reason == BAD_CREDENTIALS
    await assert_nothing_written(index, data_dir, before, filename=SDIST.filename)


async def test_anonymous_upload_without_htpasswd_explains_tokens(make_proxy: ProxyFactory, data_dir: Path):
    """Without an htpasswd file, the 403 tells the user to upload with a token."""
    client = await make_proxy()
    before = await stored(data_dir)
    resp = await twine_upload(client, WHEEL, auth=None)
    assert resp.status == 403
    assert resp.reason.startswith(f"{BAD_CREDENTIALS} This shadowpi has no htpasswd file: upload with an API token")
    await assert_nothing_written(client, data_dir, before)


async def test_read_auth_protects_pages_and_files(make_proxy: ProxyFactory, token_id: int, htpasswd: Path):
    """[auth] read = true: pages and files answer 401 + WWW-Authenticate without credentials, /health stays open."""
    client = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True})
    assert (await twine_upload(client, WHEEL)).status == 200
    for path in (f"/simple/{PROJECT}/", "/simple/", file_url(WHEEL), file_url(WHEEL) + ".metadata"):
        anonymous = await client.get(path, headers=JSON)
        assert anonymous.status == 401, path
        assert anonymous.reason == "Authentication required to read this index."
        assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="shadowpi"'
        wrong = await client.get(path, headers={**JSON, **authorization(("alice", "wrong"))})
        assert wrong.status == 401
        assert wrong.reason == BAD_CREDENTIALS
        assert wrong.headers["WWW-Authenticate"] == 'Basic realm="shadowpi"'
    assert (await client.head(file_url(WHEEL))).status == 401
    for credentials in (PASSWORD_AUTH, TOKEN_AUTH):
        page = await client.get(f"/simple/{PROJECT}/", headers={**JSON, **authorization(credentials)})
        assert page.status == 200
        assert page.headers["Cache-Control"].startswith("private")
        [entry] = (await page.json(content_type=None))["files"]
        assert await download(client, PROJECT, entry["url"], auth=credentials) == WHEEL.data
    health = await client.get("/health")
    assert health.status == 200


# --- management API: yank, unyank, delete ----------------------------------------------------------------


async def publish_both(client: TestClient) -> None:
    for artifact in (WHEEL, SDIST):
        resp = await twine_upload(client, artifact)
        assert resp.status == 200, resp.reason


async def test_yank_and_unyank_a_file(index: TestClient):
    """Yanking one file with a reason shows it on both page formats (escaped in HTML); unyank clears it."""
    await publish_both(index)
    reason = 'broken "build" <b>'
    url = f"/api/projects/{PROJECT}/{WHEEL.filename}"
    resp = await index.post(url + "/yank", json={"reason": reason}, headers=authorization(TOKEN_AUTH))
    assert resp.status == 200, resp.reason
    assert await resp.json() == {"yanked": [WHEEL.filename], "changed": 1}
    files = await files_on_page(index)
    assert files[WHEEL.filename]["yanked"] == reason
    assert files[SDIST.filename]["yanked"] is False
    assert 'data-yanked="broken &quot;build&quot; &lt;b&gt;"' in await html_anchor(index, WHEEL.filename)
    assert "data-yanked" not in await html_anchor(index, SDIST.filename)
    assert await download(index, PROJECT, files[WHEEL.filename]["url"]) == WHEEL.data  # still installable
    resp = await index.post(url + "/unyank", headers=authorization(PASSWORD_AUTH))
    assert resp.status == 200, resp.reason
    assert await resp.json() == {"unyanked": [WHEEL.filename], "changed": 1}
    assert (await files_on_page(index))[WHEEL.filename]["yanked"] is False
    assert "data-yanked" not in await html_anchor(index, WHEEL.filename)


async def test_yank_a_whole_version(index: TestClient):
    """A version as target yanks every file of that release; without a reason, yanked is true / data-yanked=""."""
    await publish_both(index)
    resp = await index.post("/api/projects/Hello_World/1.0/yank", headers=authorization(TOKEN_AUTH))
    assert resp.status == 200, resp.reason
    body = await resp.json()
    assert sorted(body["yanked"]) == sorted([WHEEL.filename, SDIST.filename])
    assert body["changed"] == 2
    files = await files_on_page(index)
    assert [f["yanked"] for f in files.values()] == [True, True]
    for artifact in (WHEEL, SDIST):
        assert 'data-yanked=""' in await html_anchor(index, artifact.filename)



async def test_yank_with_malformed_json_is_a_client_error(index: TestClient):
    """A yank whose body claims JSON but is not: 400, and the file stays unyanked."""
    await publish_both(index)
    resp = await index.post(
        f"/api/projects/{PROJECT}/{WHEEL.filename}/yank",
        data='{"reason": ',
        headers={**authorization(TOKEN_AUTH), "Content-Type": "application/json"},
    )
    assert (await files_on_page(index))[WHEEL.filename]["yanked"] is False
    assert resp.status == 400


async def test_delete_a_file_and_reuse_its_name(index: TestClient, data_dir: Path):
    """A deleted file leaves the page and storage; its name comes back only with the same bytes."""
    await publish_both(index)
    resp = await index.delete(f"/api/projects/{PROJECT}/{WHEEL.filename}", headers=authorization(TOKEN_AUTH))
    assert resp.status == 200, resp.reason
    assert await resp.json() == {"deleted": [WHEEL.filename]}
    assert list(await files_on_page(index)) == [SDIST.filename]
    assert (await index.get(file_url(WHEEL))).status == 404
    assert (await index.get(file_url(WHEEL) + ".metadata")).status == 404
    assert await stored(data_dir) == Stored(frozenset({SDIST.sha256}), frozenset({SDIST.filename}))
    before = await stored(data_dir)
    refused = await twine_upload(index, WHEEL_OTHER)
    assert refused.status == 400
    assert refused.reason == FILENAME_REUSE
    await assert_nothing_written(index, data_dir, before, filename=WHEEL.filename)
    restored = await twine_upload(index, WHEEL)
    assert restored.status == 200, restored.reason
    files = await files_on_page(index)
    assert set(files) == {WHEEL.filename, SDIST.filename}
    assert await download(index, PROJECT, files[WHEEL.filename]["url"]) == WHEEL.data
    assert await download(index, PROJECT, files[WHEEL.filename]["url"] + ".metadata") == WHEEL.metadata


async def test_delete_a_whole_version(index: TestClient, data_dir: Path):
    """A version as target deletes every file of that release, other releases stay."""
    await publish_both(index)
    newer = build_wheel(PROJECT, "2.0")
    assert (await twine_upload(index, newer)).status == 200
    resp = await index.delete(f"/api/projects/{PROJECT}/1.0", headers=authorization(PASSWORD_AUTH))
    assert resp.status == 200, resp.reason
    assert sorted((await resp.json())["deleted"]) == sorted([WHEEL.filename, SDIST.filename])
    page = await json_page(index)
    assert [f["filename"] for f in page["files"]] == [newer.filename]
    assert page["versions"] == ["2.0"]
    assert (await stored(data_dir)).files == {newer.filename}


async def test_deleting_one_wheel_keeps_the_metadata_of_its_siblings(index: TestClient):
    """Wheels of one release share identical METADATA bytes; deleting one must not break the others' .metadata."""
    py3 = build_wheel(PROJECT, "1.0", requires_python=">=3.9")
    universal = build_wheel(PROJECT, "1.0", requires_python=">=3.9", tag="py2.py3-none-any")
    assert py3.metadata == universal.metadata
    for artifact in (py3, universal):
        assert (await twine_upload(index, artifact)).status == 200
    deleted = await index.delete(f"/api/projects/{PROJECT}/{py3.filename}", headers=authorization(TOKEN_AUTH))
    assert deleted.status == 200
    entry = (await files_on_page(index))[universal.filename]
    assert entry["core-metadata"] == {"sha256": universal.metadata_sha256}  # still advertised, so pip will fetch it
    resp = await index.get(urljoin(f"/simple/{PROJECT}/", entry["url"] + ".metadata"))
    assert resp.status == 200
    assert await resp.read() == universal.metadata


async def test_deleting_all_files_does_not_reopen_the_name_to_upstream(index: TestClient, upstream: Upstream):
    """After its last private file is deleted, a private name still never reaches upstream."""
    upstream.fake.add(build_wheel(PROJECT, "9.0"))
    assert (await twine_upload(index, WHEEL)).status == 200
    assert (await index.delete(f"/api/projects/{PROJECT}/1.0", headers=authorization(TOKEN_AUTH))).status == 200
    resp = await index.get(f"/simple/{PROJECT}/", headers=JSON)
    assert resp.status == 404
    assert [r for r in upstream.fake.requests if PROJECT in r or "hello_world" in r] == []


MANAGEMENT_REFUSALS = [
    pytest.param("POST", f"{PROJECT}/{WHEEL.filename}/yank", None, 403, UPLOAD_NEEDS_AUTH, id="anonymous-yank"),
    pytest.param("POST", f"{PROJECT}/{WHEEL.filename}/unyank", None, 403, UPLOAD_NEEDS_AUTH, id="anonymous-unyank"),
    pytest.param("DELETE", f"{PROJECT}/{WHEEL.filename}", None, 403, UPLOAD_NEEDS_AUTH, id="anonymous-delete"),
    pytest.param("DELETE", f"{PROJECT}/1.0", ("alice", "wrong"), 403, BAD_CREDENTIALS, id="wrong-password-delete"),
    pytest.param("POST", "nope/1.0/yank", TOKEN_AUTH, 404, "nope has no private files", id="unknown-project"),
    pytest.param(
        "DELETE", f"{PROJECT}/hello_world-9.9-py3-none-any.whl", TOKEN_AUTH, 404,
        f"{PROJECT} has no private file or version 'hello_world-9.9-py3-none-any.whl'", id="unknown-file",
    ),
    pytest.param(
        "POST", f"{PROJECT}/9.9/yank", TOKEN_AUTH, 404, f"{PROJECT} has no private file or version '9.9'",
        id="unknown-version",
    ),
    pytest.param("DELETE", "-bad-/1.0", TOKEN_AUTH, 400, "'-bad-' is not a valid project name", id="bad-project"),
]


@pytest.mark.parametrize(("method", "target", "credentials", "status", "reason"), MANAGEMENT_REFUSALS)
async def test_management_refusals_change_nothing(
    index: TestClient,
    data_dir: Path,
    upstream: Upstream,
    method: str,
    target: str,
    credentials: tuple[str, str] | None,
    status: int,
    reason: str,
):
    """Yank/unyank/delete without valid credentials (403) or of unknown targets (404) change nothing."""
    await publish_both(index)
    before = await stored(data_dir)
    page = await files_on_page(index)
    resp = await index.request(method, f"/api/projects/{target}", headers=authorization(credentials))
    assert resp.status == status
    assert resp.reason == reason
    assert await stored(data_dir) == before
    assert await files_on_page(index) == page
    assert upstream.fake.requests == []



async def test_equal_versions_share_release_slots_but_build_tags_do_not(index: TestClient, data_dir: Path):
    """1.0 and 1.0.0 are one release: a second wheel with the same tags or a second sdist is refused;
    a build-tagged wheel (how a fixed wheel is re-published) is accepted beside the original."""
    assert (await twine_upload(index, WHEEL)).status == 200
    assert (await twine_upload(index, SDIST)).status == 200
    respelled = build_wheel(PROJECT, "1.0.0")
    refused = await twine_upload(index, respelled)
    assert refused.status == 400
    assert refused.reason.startswith("File already exists")
    second_sdist = build_sdist(PROJECT, "1.0.0")
    refused_sdist = await twine_upload(index, second_sdist)
    assert (refused_sdist.status, refused_sdist.reason) == (400, "Only one sdist may be uploaded per release.")
    rebuilt = build_wheel(PROJECT, "1.0", module_source="FIXED = True\n")
    rebuilt_name = rebuilt.filename.replace("-1.0-", "-1.0-1-")
    accepted = await twine_upload(index, Artifact(rebuilt_name, rebuilt.data, rebuilt.metadata))
    assert accepted.status == 200, accepted.reason
    assert set(await files_on_page(index)) == {WHEEL.filename, SDIST.filename, rebuilt_name}

"""Bundle manifests (proxy.bundle.manifest): which paths a bundle may hold, and every way a manifest is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from proxy.bundle.manifest import (
    BundleError,
    FileEntry,
    Manifest,
    Since,
    check_data_path,
    check_manifest_sha256,
    check_path,
    parse_manifest,
    parse_time,
    render_manifest,
    render_manifest_sha256,
)

SHA = "a" * 64
OTHER = "b" * 64


@pytest.mark.parametrize(
    "path",
    ["deleted.json", "pages/tinylib.json", "private/acme-internal.json", f"blobs/{SHA}", "a/b/c"],
)
def test_plain_relative_paths_pass(path: str):
    """Plain relative posix paths pass check_path unchanged."""
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "../x",
        "pages/../../x",
        "pages/./x.json",
        "./deleted.json",
        "pages//x.json",
        "pages/",
        "pages\\x.json",
        "C:x",
        "pages/x\x00.json",
        "pages/x\n.json",
    ],
)
def test_path_tricks_are_refused(path: str):
    """Absolute paths, '..', '.', empty components, backslashes, drive letters and control characters are refused."""
    with pytest.raises(BundleError):
        check_path(path)


@pytest.mark.parametrize(
    ("path", "sha256"),
    [("deleted.json", SHA), ("pages/tinylib.json", SHA), ("private/acme-internal.json", SHA), (f"blobs/{SHA}", SHA)],
)
def test_known_data_paths_pass(path: str, sha256: str):
    """The four shapes a bundle file may have are accepted."""
    check_data_path(path, sha256)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"blobs/{SHA}", "not named by its sha256"),
        (f"blobs/{SHA}/x", "not a file a bundle may contain"),
        ("blobs/abc", "not a file a bundle may contain"),
        (f"blobs/{SHA.upper()}", "not a file a bundle may contain"),
        ("pages/TinyLib.json", "not a file a bundle may contain"),  # names must be normalized
        ("pages/tiny_lib.json", "not a file a bundle may contain"),
        ("pages/tinylib.html", "not a file a bundle may contain"),
        ("pages/a/b.json", "not a file a bundle may contain"),
        ("private/-x.json", "not a file a bundle may contain"),
        ("notes.txt", "not a file a bundle may contain"),
        ("manifest.json.bak", "not a file a bundle may contain"),
        ("../blobs/x", "'..'"),
    ],
)
def test_unknown_data_paths_are_refused(path: str, message: str):
    """Anything else (unnormalized names, other files, a blob not named by its hash) is refused."""
    with pytest.raises(BundleError, match=message):
        check_data_path(path, OTHER)


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "shadowpi-bundle",
        "format_version": 1,
        "created_at": "2026-11-01T00:00:00.000000Z",
        "shadowpi_version": "0.1.0",
        "source": "host:/data",
        "since": None,
        "files": [{"path": f"blobs/{SHA}", "size": 3, "sha256": SHA}],
    }
    doc.update(changes)
    return doc


def _entry(**changes: Any) -> dict[str, Any]:
    return {"path": f"blobs/{SHA}", "size": 3, "sha256": SHA, **changes}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps(_doc(format="zip")).encode(), "not a shadowpi bundle manifest"),
        (json.dumps(_doc(format_version=3)).encode(), "format version 3 is not supported"),
        (json.dumps(_doc(format_version="1")).encode(), "format version '1' is not supported"),
        (json.dumps(_doc(files={})).encode(), "'files' is missing"),
        (json.dumps(_doc(created_at=None)).encode(), "'created_at' is missing"),
        (json.dumps(_doc(files=[_entry(), _entry()])).encode(), "lists blobs/a+ twice"),
        (json.dumps(_doc(files=["x"])).encode(), "not an object"),
        (json.dumps(_doc(files=[_entry(path=None)])).encode(), "has no 'path'"),
        (json.dumps(_doc(files=[_entry(size=-1)])).encode(), "no valid 'size'"),
        (json.dumps(_doc(files=[_entry(size=True)])).encode(), "no valid 'size'"),
        (json.dumps(_doc(files=[_entry(size="3")])).encode(), "no valid 'size'"),
        (json.dumps(_doc(files=[_entry(sha256="abc")])).encode(), "no valid 'sha256'"),
        (json.dumps(_doc(files=[_entry(path="manifest.json")])).encode(), "must not list manifest.json"),
        (json.dumps(_doc(files=[_entry(path="../x")])).encode(), "'..'"),
        (json.dumps(_doc(files=[_entry(path="/abs/x")])).encode(), "absolute"),
        (json.dumps(_doc(files=[_entry(path=f"blobs/{OTHER}")])).encode(), "not named by its sha256"),
        (json.dumps(_doc(since="yesterday")).encode(), "'since' is not an object"),
        (json.dumps(_doc(since={"time": "x", "manifest_sha256": "abc"})).encode(), "not a sha256"),
    ],
)
def test_bad_manifests_are_refused(data: bytes, message: str):
    """Each malformed manifest is refused with a message naming what is wrong."""
    with pytest.raises(BundleError, match=message):
        parse_manifest(data)


def test_manifest_round_trips():
    """render_manifest then parse_manifest gives back the same Manifest."""
    manifest = Manifest(
        created_at="2026-11-01T00:00:00.000000Z",
        shadowpi_version="0.1.0",
        source="host:/data",
        since=Since("2026-10-01T00:00:00.000000Z", OTHER),
        files=(FileEntry("deleted.json", 15, OTHER), FileEntry(f"blobs/{SHA}", 3, SHA)),
    )
    assert parse_manifest(render_manifest(manifest)) == manifest
    assert manifest.blobs == {SHA: 3}


def test_manifest_checksum_line_is_checked():
    """manifest.sha256 is a sha256sum line; any other content, or another manifest, is refused."""
    data = render_manifest(Manifest("t", "v", "s", None, ()))
    line = render_manifest_sha256(data)
    assert line.endswith(b"  manifest.json\n")
    check_manifest_sha256(data, line)
    with pytest.raises(BundleError, match=r"does not match manifest\.sha256"):
        check_manifest_sha256(data + b" ", line)
    with pytest.raises(BundleError, match=r"does not match manifest\.sha256"):
        check_manifest_sha256(data, b"")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T12:30", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01T12:30:00Z", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01T14:30:00+02:00", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_since_times_are_utc(text: str, expected: datetime):
    """--since dates and datetimes are read as UTC unless they carry an offset."""
    assert parse_time(text) == expected


def test_unreadable_since_time_is_refused():
    """A --since value that is neither a date nor a bundle is refused with an example of the format."""
    with pytest.raises(BundleError, match="not an ISO date"):
        parse_time("last tuesday")

"""Bundle records and import rules (pure): JSON documents, page merging, private-file clashes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from proxy.access.model import Member
from proxy.backends.records import PrivateFile, StoredPage
from proxy.bundle.importer import deletion_action, merge_page, private_action
from proxy.bundle.manifest import BundleError
from proxy.bundle.records import (
    DeletedFile,
    PageRecord,
    PrivateProject,
    decode_deleted,
    decode_page,
    decode_private,
    encode_deleted,
    encode_page,
    encode_private,
    page_blobs,
)
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName

NAME = NormalizedName("tinylib")
SHA_1, SHA_2, META_1, NOHASH = "1" * 64, "2" * 64, "3" * 64, "4" * 64
URL = "https://files.example/tinylib/"


def dist(version: str, sha256: str | None, **kw: object) -> DistFile:
    hashes = {"sha256": sha256} if sha256 else {}
    return DistFile(f"tinylib-{version}-py3-none-any.whl", f"{URL}tinylib-{version}.whl", hashes, **kw)  # type: ignore[arg-type]


def stored(*files: DistFile, versions: tuple[str, ...] = (), etag: str = '"e"', fetched_at: float = 1.0) -> StoredPage:
    return StoredPage(ProjectPage(NAME, files, versions), etag, None, fetched_at)


def private(sha256: str = SHA_1, **kw: object) -> PrivateFile:
    fields: dict[str, object] = {
        "filename": "acme-1.0-py3-none-any.whl", "project": NormalizedName("acme"), "version": "1.0",
        "sha256": sha256, "blake2_256": None, "size": 3, "requires_python": None, "metadata_sha256": None,
        "yanked": None, "upload_time": "2026-01-01T00:00:00.000000Z", "uploaded_by": None,
    }
    fields.update(kw)
    return PrivateFile(**fields)  # type: ignore[arg-type]


def test_page_record_round_trips():
    """A page record survives encode/decode, hash-less URL mapping included."""
    files = (dist("1.0", SHA_1, core_metadata={"sha256": META_1}, size=3), dist("2.0", None))
    record = PageRecord(NAME, stored(*files, versions=("1.0", "2.0")), {f"{URL}tinylib-2.0.whl": NOHASH})
    assert decode_page("pages/tinylib.json", NAME, encode_page(record)) == record
    assert list(page_blobs(record)) == [SHA_1, META_1, NOHASH]


def test_page_file_without_any_known_hash_is_refused():
    """A page listing a file whose bytes no sha256 identifies cannot be served: the bundle is refused."""
    record = PageRecord(NAME, stored(dist("1.0", None)), {})
    with pytest.raises(BundleError, match="without a known sha256"):
        list(page_blobs(record))


def test_private_and_deleted_round_trip_without_uploader():
    """Private records keep every column but uploaded_by, with their index, the project's indexes and members;
    deleted filenames keep sha256, time and index."""
    rows = [private(uploaded_by="alice", yanked="", metadata_sha256=META_1), replace(private(), index="ml")]
    members = (("ml", Member("alice", "owner")), ("ml", Member("group:ml", "maintainer")))
    project = PrivateProject(("ml", "root"), members)
    data = encode_private(NormalizedName("acme"), rows, project)
    decoded = decode_private("private/acme.json", NormalizedName("acme"), data)
    assert decoded == ([replace(row, uploaded_by=None) for row in rows], project)
    deleted = [DeletedFile("acme-0.9.tar.gz", SHA_2, 5.5), DeletedFile("acme-0.8.tar.gz", SHA_2, 5.5, "ml")]
    assert decode_deleted("deleted.json", encode_deleted(deleted)) == deleted


@pytest.mark.parametrize(
    ("path", "name", "doc", "message"),
    [
        ("pages/tinylib.json", "tinylib", {"project": "other"}, "not the page of tinylib"),
        ("pages/tinylib.json", "tinylib", {"project": "tinylib", "page": {}, "fetched_at": "x"}, "numeric"),
        ("pages/tinylib.json", "tinylib", {"project": "tinylib", "page": {"name": "tinylib"}, "fetched_at": 1},
         "no 'files' list"),
        ("pages/tinylib.json", "tinylib",
         {"project": "tinylib", "page": {"name": "other", "files": []}, "fetched_at": 1}, "is for 'other'"),
        ("pages/tinylib.json", "tinylib",
         {"project": "tinylib", "page": {"files": []}, "fetched_at": 1, "upstream_files": {"u": "nothex"}},
         "map URLs to sha256"),
        ("private/acme.json", "acme", {"project": "acme", "files": [{"filename": "../evil.whl"}]},
         "not a distribution filename"),
        ("private/acme.json", "acme", {"project": "acme", "files": [{"filename": "other-1.0.tar.gz"}]},
         "does not belong to acme"),
        ("private/acme.json", "acme", {"project": "acme", "files": [{"filename": "acme-1.0.tar.gz", "sha256": "x"}]},
         "no valid sha256"),
        ("private/acme.json", "acme", {"project": "acme", "files": [], "indexes": ["../x"]}, "not an index name"),
        ("private/acme.json", "acme", {"project": "acme", "files": [], "indexes": "ml"}, "'indexes' must be a list"),
        ("private/acme.json", "acme", {"project": "acme", "files": [], "members": [{"principal": "a b",
                                                                                  "role": "owner"}]}, "'principal'"),
        ("private/acme.json", "acme", {"project": "acme", "files": [], "members": [{"principal": "a",
                                                                                  "role": "god"}]}, "'role'"),
        ("deleted.json", "", {"deleted": [{"filename": "a", "sha256": SHA_1, "deleted_at": 1, "index": 3}]},
         "not an index name"),
        ("deleted.json", "", {"deleted": [{"filename": "a", "sha256": SHA_1}]}, "numeric 'deleted_at'"),
        ("deleted.json", "", {"deleted": {}}, "no 'deleted' list"),
    ],
)
def test_bad_records_are_refused(path: str, name: str, doc: dict[str, object], message: str):
    """Each malformed record is refused with a message naming the file and the problem."""
    data = json.dumps(doc).encode()
    with pytest.raises(BundleError, match=message):
        if path == "deleted.json":
            decode_deleted(path, data)
        elif path.startswith("pages/"):
            decode_page(path, NormalizedName(name), data)
        else:
            decode_private(path, NormalizedName(name), data)


@pytest.mark.parametrize(
    ("existing", "incoming", "expected"),
    [
        pytest.param(None, stored(dist("1.0", SHA_1)), stored(dist("1.0", SHA_1)), id="new-page"),
        pytest.param(
            StoredPage(None, None, None, 0.5), stored(dist("1.0", SHA_1)), stored(dist("1.0", SHA_1)), id="over-404"
        ),
        pytest.param(
            stored(dist("1.0", SHA_1), versions=("1.0",), etag='"old"', fetched_at=0.5),
            stored(dist("2.0", SHA_2), versions=("2.0",)),
            stored(dist("1.0", SHA_1), dist("2.0", SHA_2), versions=("1.0", "2.0")),
            id="union-bundle-validators",
        ),
        pytest.param(
            stored(dist("1.0", SHA_1), dist("2.0", SHA_2)),
            stored(dist("1.0", SHA_1, yanked="broken")),
            stored(dist("1.0", SHA_1, yanked="broken"), dist("2.0", SHA_2)),
            id="bundle-entry-wins",
        ),
        pytest.param(
            stored(dist("1.0", SHA_1), versions=("1.0",), etag='"new"', fetched_at=9.0),
            stored(dist("2.0", SHA_2), versions=("2.0",), etag='"old"', fetched_at=2.0),
            stored(dist("1.0", SHA_1), dist("2.0", SHA_2), versions=("1.0", "2.0"), etag='"new"', fetched_at=9.0),
            id="an-older-bundle-keeps-the-fresher-validators",
        ),
        pytest.param(
            stored(dist("1.0", SHA_1), versions=("2.0", "1.0", "0.9")),
            stored(dist("1.0", SHA_1), versions=("1.0", "0.9")),
            stored(dist("1.0", SHA_1), versions=("2.0", "1.0", "0.9")),
            id="no-new-version-keeps-the-order",
        ),
    ],
)
def test_merge_page(existing: StoredPage | None, incoming: StoredPage, expected: StoredPage):
    """Bundle pages merge into cached ones: union by filename, the bundle's entry wins, the fresher page's
    validators and fetched_at are kept, and versions are re-sorted only when the bundle adds one."""
    assert merge_page(existing, incoming) == expected


@pytest.mark.parametrize(
    "versions",
    [("1.0", "2.0"), ("2.0", "1.0"), ("1.0", "1.0.0"), ("1.0.0", "1.0"), ("1.0", "weird-legacy", "0.5")],
)
def test_merging_the_same_page_changes_nothing(versions: tuple[str, ...]):
    """Merging a page into itself gives an equal page (so a second import writes nothing), whatever order
    upstream listed its versions in (re-sorting them made every page of a re-import "updated")."""
    page = stored(dist("1.0", SHA_1), dist("2.0", SHA_2), versions=versions)
    assert merge_page(page, page) == page


@pytest.mark.parametrize(
    ("existing", "deleted", "expected"),
    [
        (None, None, "add"),
        (private(uploaded_by="bob"), None, "skip"),
        (private(yanked="bad"), None, "update"),
        (None, SHA_1, "add"),  # deleted here with the same bytes: may come back, as with uploads
    ],
)
def test_private_actions(existing: PrivateFile | None, deleted: str | None, expected: str):
    """A private record is added, skipped when identical (uploader aside) or updated when only its state differs."""
    assert private_action(private(), existing, deleted) == expected


@pytest.mark.parametrize(
    ("existing", "deleted", "message"),
    [
        (private(sha256=SHA_2), None, "already exists here with other bytes"),
        (None, SHA_2, "was deleted here and may not return with other bytes"),
    ],
)
def test_private_clashes_are_refused(existing: PrivateFile | None, deleted: str | None, message: str):
    """Same filename with other bytes, live or deleted here, refuses the import."""
    with pytest.raises(BundleError, match=message):
        private_action(private(), existing, deleted)


def test_deletions_propagate_only_for_the_same_bytes():
    """A file the source deleted is removed here when the bytes match; other bytes refuse the import."""
    assert deletion_action("acme-1.0-py3-none-any.whl", SHA_1, None) is False
    assert deletion_action("acme-1.0-py3-none-any.whl", SHA_1, private()) is True
    with pytest.raises(BundleError, match="has other bytes here"):
        deletion_action("acme-1.0-py3-none-any.whl", SHA_2, private())

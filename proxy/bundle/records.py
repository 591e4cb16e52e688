"""The bundle's JSON documents (pages, private files, deleted filenames) to and from models, and which blobs
each record needs. No I/O."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from proxy.access.graph import INDEX_NAME, USER_NAME
from proxy.access.model import GROUP_PREFIX, ROOT, Member
from proxy.backends.records import DeletedFile, PrivateFile, StoredPage
from proxy.bundle.manifest import BundleError, is_sha256
from proxy.errors import InvalidFilename, UpstreamInvalid
from proxy.simple.json import parse_project_json, render_project_json
from proxy.simple.model import METADATA_SUFFIX, DistFile
from proxy.simple.names import NormalizedName, parse_dist_filename


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A cached upstream page as a bundle carries it, with the blob of each hash-less URL."""

    name: NormalizedName
    stored: StoredPage
    upstream_files: Mapping[str, str]  # url -> sha256, for files (and .metadata files) without a declared sha256


@dataclass(frozen=True, slots=True)
class PrivateProject:
    """A private name's place in the indexes: every index holding it (with or without files) and its members
    there (owners and maintainers: who may upload, yank and delete after an import, as before the export)."""

    indexes: tuple[str, ...] = (ROOT,)
    members: tuple[tuple[str, Member], ...] = ()  # (index, member)


def file_blob(dist: DistFile, upstream_files: Mapping[str, str]) -> str | None:
    """The sha256 of a listed file's bytes: declared by the page, else what the download turned out to be."""
    return dist.sha256 or upstream_files.get(dist.url)


def metadata_blob(dist: DistFile, upstream_files: Mapping[str, str]) -> str | None:
    """The sha256 of a file's PEP 658 metadata, if the page advertises metadata and its bytes are known."""
    if dist.core_metadata is False:
        return None
    return dist.metadata_sha256 or upstream_files.get(dist.url + METADATA_SUFFIX)


def page_blobs(record: PageRecord) -> Iterator[str]:
    """Every blob a page record needs: each listed file, and each advertised metadata file."""
    assert record.stored.page is not None  # bundles carry pages, never remembered 404s
    for dist in record.stored.page.files:
        sha256 = file_blob(dist, record.upstream_files)
        if sha256 is None:
            raise BundleError(f"pages/{record.name}.json lists {dist.filename} without a known sha256")
        yield sha256
        if dist.core_metadata is not False:
            meta = metadata_blob(dist, record.upstream_files)
            if meta is None:
                raise BundleError(f"pages/{record.name}.json lists metadata of {dist.filename} without a sha256")
            yield meta


def private_blobs(record: PrivateFile) -> Iterator[str]:
    yield record.sha256
    if record.metadata_sha256:
        yield record.metadata_sha256


# --- encoding ---


def encode_page(record: PageRecord) -> bytes:
    assert record.stored.page is not None
    doc = {
        "project": record.name,
        "etag": record.stored.etag,
        "last_modified": record.stored.last_modified,
        "fetched_at": record.stored.fetched_at,
        "page": json.loads(render_project_json(record.stored.page, lambda f: f.url)),
        "upstream_files": dict(sorted(record.upstream_files.items())),
    }
    return _dump(doc)


def encode_private(name: NormalizedName, records: list[PrivateFile], project: PrivateProject) -> bytes:
    files = [
        {
            "filename": r.filename,
            "version": r.version,
            "sha256": r.sha256,
            "blake2_256": r.blake2_256,
            "size": r.size,
            "requires_python": r.requires_python,
            "metadata_sha256": r.metadata_sha256,
            "yanked": r.yanked,
            "upload_time": r.upload_time,
            "index": r.index,
        }
        for r in records
    ]
    members = [{"index": index, "principal": m.principal, "role": m.role} for index, m in project.members]
    return _dump({"project": name, "indexes": list(project.indexes), "files": files, "members": members})


def encode_deleted(deleted: list[DeletedFile]) -> bytes:
    entries = [
        {"filename": d.filename, "sha256": d.sha256, "deleted_at": d.deleted_at, "index": d.index} for d in deleted
    ]
    return _dump({"deleted": entries})


def _dump(doc: Mapping[str, object]) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()


# --- decoding (every value is untrusted until here) ---


def decode_page(path: str, name: NormalizedName, data: bytes) -> PageRecord:
    doc = _load(path, data)
    if doc.get("project") != name:
        raise BundleError(f"{path} is not the page of {name}")
    page_doc = doc.get("page")
    fetched_at = doc.get("fetched_at")
    if not isinstance(page_doc, dict) or not _is_number(fetched_at):
        raise BundleError(f"{path} has no 'page' object or no numeric 'fetched_at'")
    try:
        page = parse_project_json(json.dumps(page_doc), "", name)
    except UpstreamInvalid as exc:
        raise BundleError(f"{path}: {exc}") from None
    etag, last_modified = _opt_str(path, doc, "etag"), _opt_str(path, doc, "last_modified")
    mapping = doc.get("upstream_files", {})
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and is_sha256(v) for k, v in mapping.items()
    ):
        raise BundleError(f"{path}: 'upstream_files' must map URLs to sha256 digests")
    stored = StoredPage(page, etag, last_modified, float(fetched_at))
    return PageRecord(name, stored, dict(mapping))


def decode_private(path: str, name: NormalizedName, data: bytes) -> tuple[list[PrivateFile], PrivateProject]:
    """A project's private files and indexes. A record without indexes (format 1, before indexes) is root's."""
    doc = _load(path, data)
    files = doc.get("files")
    if doc.get("project") != name or not isinstance(files, list):
        raise BundleError(f"{path} is not the private file list of {name}")
    rows = [_private_file(path, name, item) for item in files]
    raw = doc.get("indexes", [ROOT])
    if not isinstance(raw, list):
        raise BundleError(f"{path}: 'indexes' must be a list of index names")
    indexes = sorted({_index(path, {"index": i}) for i in raw} | {r.index for r in rows})
    members = doc.get("members", [])
    if not isinstance(members, list):
        raise BundleError(f"{path}: 'members' must be a list")
    return rows, PrivateProject(tuple(indexes), tuple(_member(path, item) for item in members))


def _index(path: str, item: Mapping[str, Any]) -> str:
    """The "index" of an entry (root when absent: written before indexes existed)."""
    index = item.get("index", ROOT)
    if not isinstance(index, str) or not INDEX_NAME.fullmatch(index):
        raise BundleError(f"{path}: {index!r} is not an index name")
    return index


def _member(path: str, item: object) -> tuple[str, Member]:
    if not isinstance(item, dict):
        raise BundleError(f"{path}: a member entry is not an object")
    principal, role = item.get("principal"), item.get("role")
    user = principal.removeprefix(GROUP_PREFIX) if isinstance(principal, str) else ""
    if not USER_NAME.fullmatch(user) or role not in ("owner", "maintainer"):
        raise BundleError(f"{path}: a member entry lacks a valid 'principal' or 'role'")
    assert isinstance(principal, str)
    return _index(path, item), Member(principal, "owner" if role == "owner" else "maintainer")


def _private_file(path: str, name: NormalizedName, item: object) -> PrivateFile:
    if not isinstance(item, dict):
        raise BundleError(f"{path}: a file entry is not an object")
    filename = item.get("filename")
    try:
        project, _version = parse_dist_filename(filename if isinstance(filename, str) else "")
    except InvalidFilename:
        raise BundleError(f"{path}: {filename!r} is not a distribution filename") from None
    if project != name:
        raise BundleError(f"{path}: {filename} does not belong to {name}")
    assert isinstance(filename, str)
    sha256, size, meta = item.get("sha256"), item.get("size"), item.get("metadata_sha256")
    if not isinstance(sha256, str) or not is_sha256(sha256):
        raise BundleError(f"{path}: {filename} has no valid sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BundleError(f"{path}: {filename} has no valid size")
    if meta is not None and not (isinstance(meta, str) and is_sha256(meta)):
        raise BundleError(f"{path}: {filename} has an invalid metadata_sha256")
    version, upload_time = item.get("version"), item.get("upload_time")
    if not isinstance(version, str) or not isinstance(upload_time, str):
        raise BundleError(f"{path}: {filename} lacks 'version' or 'upload_time'")
    return PrivateFile(
        filename=filename,
        project=name,
        version=version,
        sha256=sha256,
        blake2_256=_opt_str(path, item, "blake2_256"),
        size=size,
        requires_python=_opt_str(path, item, "requires_python"),
        metadata_sha256=meta,
        yanked=_opt_str(path, item, "yanked"),
        upload_time=upload_time,
        uploaded_by=None,  # user names stay on the exporting side
        index=_index(path, item),
    )


def decode_deleted(path: str, data: bytes) -> list[DeletedFile]:
    entries = _load(path, data).get("deleted")
    if not isinstance(entries, list):
        raise BundleError(f"{path} has no 'deleted' list")
    result = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise BundleError(f"{path}: an entry is not an object")
        filename, sha256, when = entry.get("filename"), entry.get("sha256"), entry.get("deleted_at")
        if not isinstance(filename, str) or not isinstance(sha256, str) or not is_sha256(sha256):
            raise BundleError(f"{path}: an entry lacks a filename or a valid sha256")
        if not _is_number(when):
            raise BundleError(f"{path}: {filename} has no numeric 'deleted_at'")
        result.append(DeletedFile(filename, sha256, float(when), _index(path, entry)))
    return result


def _load(path: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise BundleError(f"{path} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path} is not a JSON object")
    return doc


def _opt_str(path: str, doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise BundleError(f"{path}: {key!r} must be a string or null")
    return value


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)

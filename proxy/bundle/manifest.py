"""The bundle manifest (pure): the list of files with sizes and sha256s, and which relative paths may appear."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.utils import InvalidName, canonicalize_name

from proxy.errors import ProxyError

FORMAT = "shadowpi-bundle"
FORMAT_VERSION = 2  # 2: private records and deleted filenames name their index (and carry project members)
READ_VERSIONS = (1, 2)  # a version 1 bundle predates indexes: everything private in it belongs to the root index
MANIFEST = "manifest.json"
MANIFEST_SHA256 = "manifest.sha256"
DELETED = "deleted.json"
PAGES = "pages"
PRIVATE = "private"
BLOBS = "blobs"
SINCE_OVERLAP = 60.0  # seconds before a previous manifest's created_at that still count as "since"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BundleError(ProxyError):
    """A bundle is damaged, inconsistent or does not fit this data dir; the message is one line."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a bundle, as the manifest records it."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Since:
    """What an incremental bundle is relative to: a cutoff time, and the previous manifest if one was given."""

    time: str  # ISO 8601 UTC
    manifest_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: str  # ISO 8601 UTC, microseconds
    shadowpi_version: str
    source: str
    since: Since | None
    files: tuple[FileEntry, ...]
    format_version: int = FORMAT_VERSION

    def entry(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    @property
    def blobs(self) -> dict[str, int]:
        """sha256 -> size of every blob in the bundle."""
        return {f.sha256: f.size for f in self.files if f.path.startswith(BLOBS + "/")}


def is_sha256(text: str) -> bool:
    return bool(_SHA256.fullmatch(text))


def blob_path(sha256: str) -> str:
    return f"{BLOBS}/{sha256}"


def page_path(name: str) -> str:
    return f"{PAGES}/{name}.json"


def private_path(name: str) -> str:
    return f"{PRIVATE}/{name}.json"


def check_path(path: str) -> str:
    """A safe relative path inside a bundle (posix, no `..`, not absolute); returns it. Raises BundleError."""
    if not path or _CONTROL.search(path):
        raise BundleError(f"bundle path {path!r} is empty or has control characters")
    if path.startswith("/") or "\\" in path or ":" in path:
        raise BundleError(f"bundle path {path!r} is absolute or not a plain relative path")
    if any(part in {"", ".", ".."} for part in path.split("/")):
        raise BundleError(f"bundle path {path!r} has an empty, '.' or '..' component")
    return path


def check_data_path(path: str, sha256: str) -> None:
    """A manifest entry must be one of the known shapes; a blob must be named by its own sha256."""
    check_path(path)
    top, _, rest = path.partition("/")
    if path == DELETED:
        return
    if top in {PAGES, PRIVATE} and rest.endswith(".json") and "/" not in rest:
        name = rest.removesuffix(".json")
        if _is_normalized(name):
            return
    if top == BLOBS and "/" not in rest and is_sha256(rest):
        if rest != sha256:
            raise BundleError(f"{path} is not named by its sha256 ({sha256})")
        return
    raise BundleError(f"bundle path {path!r} is not a file a bundle may contain")


def _is_normalized(name: str) -> bool:
    try:
        return canonicalize_name(name, validate=True) == name
    except InvalidName:
        return False


def parse_manifest(data: bytes) -> Manifest:
    """Read and validate manifest.json. Raises BundleError naming the first problem."""
    doc = _load(data)
    if doc.get("format") != FORMAT:
        raise BundleError("manifest.json is not a shadowpi bundle manifest")
    version = doc.get("format_version")
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise BundleError(
            f"bundle format version {version!r} is not supported (this shadowpi reads versions 1 to {FORMAT_VERSION})"
        )
    files = tuple(_entry(item) for item in _field(doc, "files", list))
    seen: set[str] = set()
    for entry in files:
        if entry.path in seen:
            raise BundleError(f"manifest.json lists {entry.path} twice")
        seen.add(entry.path)
    return Manifest(
        created_at=_field(doc, "created_at", str),
        shadowpi_version=_field(doc, "shadowpi_version", str),
        source=_field(doc, "source", str),
        since=_since(doc.get("since")),
        files=files,
        format_version=version,
    )


def _load(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise BundleError("manifest.json is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BundleError("manifest.json is not a JSON object")
    return doc


def _field(doc: Mapping[str, Any], key: str, kind: type[Any]) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleError(f"manifest.json: {key!r} is missing or not a {kind.__name__}")
    return value


def _entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise BundleError("manifest.json: a file entry is not an object")
    path, size, sha256 = item.get("path"), item.get("size"), item.get("sha256")
    if not isinstance(path, str):
        raise BundleError("manifest.json: a file entry has no 'path'")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BundleError(f"manifest.json: {path!r} has no valid 'size'")
    if not isinstance(sha256, str) or not is_sha256(sha256):
        raise BundleError(f"manifest.json: {path!r} has no valid 'sha256'")
    if path in {MANIFEST, MANIFEST_SHA256}:
        raise BundleError(f"manifest.json must not list {path}")
    check_data_path(path, sha256)
    return FileEntry(path, size, sha256)


def _since(raw: object) -> Since | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("time"), str):
        raise BundleError("manifest.json: 'since' is not an object with a 'time'")
    previous = raw.get("manifest_sha256")
    if previous is not None and not (isinstance(previous, str) and is_sha256(previous)):
        raise BundleError("manifest.json: 'since.manifest_sha256' is not a sha256")
    return Since(raw["time"], previous)


def render_manifest(manifest: Manifest) -> bytes:
    since = None
    if manifest.since is not None:
        since = {"time": manifest.since.time, "manifest_sha256": manifest.since.manifest_sha256}
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": manifest.created_at,
        "shadowpi_version": manifest.shadowpi_version,
        "source": manifest.source,
        "since": since,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in manifest.files],
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def render_manifest_sha256(manifest_bytes: bytes) -> bytes:
    """The checksum line for manifest.json, in `sha256sum` format."""
    return f"{hashlib.sha256(manifest_bytes).hexdigest()}  {MANIFEST}\n".encode()


def check_manifest_sha256(manifest_bytes: bytes, line: bytes) -> None:
    """manifest.sha256 must name manifest.json with its true sha256. Raises BundleError."""
    expected = render_manifest_sha256(manifest_bytes)
    if line.strip() != expected.strip():
        raise BundleError("manifest.json does not match manifest.sha256 (the manifest is damaged)")


def iso_utc(moment: datetime) -> str:
    """A timestamp as the bundle writes it: UTC, microseconds, trailing Z (like PEP 700 upload-time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or datetime; naive values are UTC. Raises BundleError."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BundleError(f"{text!r} is not an ISO date or datetime (e.g. 2026-11-01 or 2026-11-01T12:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

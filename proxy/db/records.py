"""Database records: what the queries return (models, never rows)."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A cached upstream answer for one project: a page, or a remembered 404 (page is None)."""

    page: ProjectPage | None
    etag: str | None
    last_modified: str | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class CacheUsage:
    files: int
    bytes: int
    pinned_bytes: int


@dataclass(frozen=True, slots=True)
class BlobRecord:
    sha256: str
    size: int
    last_access: float




@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token's bookkeeping (never the token itself)."""

    id: int
    user: str
    description: str | None
    created_at: float
    last_used: float | None
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class PrivateFile:
    """A privately uploaded distribution file."""

    filename: str
    project: NormalizedName
    version: str
    sha256: str
    blake2_256: str | None
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    yanked: str | None  # None: not yanked; "": yanked without a reason; else the reason
    upload_time: str
    uploaded_by: str | None




class DuplicateFilename(Exception):
    """Another upload committed the same filename first (a race between two uploads)."""


@dataclass(frozen=True, slots=True)
class DeletedFile:
    """A deleted private filename and the sha256 it had (the reuse rule)."""

    filename: str
    sha256: str
    deleted_at: float

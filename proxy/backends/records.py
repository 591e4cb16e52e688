"""Metadata records: what the metadata stores take and return (models, never rows), whatever the backend."""

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

    def same_answer(self, other: PageFreshness) -> bool:
        """Whether `other` describes this very answer (the same validators: refreshed, not changed, since)."""
        if (self.page is None) != other.missing:
            return False
        if self.page is None:
            return True
        validators = (self.etag, self.last_modified)
        return validators != (None, None) and validators == (other.etag, other.last_modified)


@dataclass(frozen=True, slots=True)
class PageFreshness:
    """What a cheap look at a stored page says: when upstream last confirmed it, and its validators (enough to
    tell whether a copy in memory is the same answer, without reading and parsing the page)."""

    fetched_at: float
    etag: str | None
    last_modified: str | None
    missing: bool  # a remembered 404


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """Cached upstream blobs (private uploads and their metadata files excluded)."""

    files: int
    bytes: int
    pinned_bytes: int


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """A committed blob as the blob index knows it (for eviction)."""

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


@dataclass(frozen=True, slots=True)
class DeletedFile:
    """A deleted private filename and the sha256 it had (the reuse rule)."""

    filename: str
    sha256: str
    deleted_at: float

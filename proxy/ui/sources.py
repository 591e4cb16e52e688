"""Where a project page's README comes from: core metadata already in storage, never fetched for the page.

- private wheels: the stored METADATA (the PEP 658 file kept at upload);
- private sdists (a release without wheels): PKG-INFO, read from the stored sdist on demand. Uploads checked
  the archive already; storing PKG-INFO at upload would need a new database column, and a PKG-INFO must not be
  advertised as PEP 658 metadata (sdist metadata may be dynamic, and pip would trust it for resolution);
- cached upstream projects: the `.metadata` of the newest file whose metadata is in the cache. Nothing is asked
  of upstream: a page view must not make traffic, and a private name never reaches upstream anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from proxy.archives import ArchiveLimits, inspect_distribution
from proxy.backends.records import PrivateFile
from proxy.errors import InvalidUpload
from proxy.filecache import FileCache
from proxy.simple.model import DistFile
from proxy.ui.project_view import Release
from proxy.web.files import metadata_file

log = logging.getLogger(__name__)
MAX_SDIST_BYTES = 64 * 2**20  # an sdist read for its PKG-INFO: bigger ones show "README not available"
MAX_UPSTREAM_CANDIDATES = 20  # newest files checked for a cached .metadata


class BlobBytes(Protocol):
    """Reads a small committed blob (the blob store's read_bytes)."""

    async def read_bytes(self, sha256: str) -> bytes: ...


class Origin(enum.Enum):
    """Where the README shown came from, or why there is none."""

    WHEEL = "wheel metadata"
    SDIST = "sdist PKG-INFO"
    CACHED = "cached metadata"
    NOT_CACHED = "not cached"  # upstream project without cached metadata
    MISSING = "missing"  # private project whose metadata could not be read


@dataclass(frozen=True, slots=True)
class Found:
    metadata: bytes | None
    origin: Origin
    version: str | None  # the release the metadata describes


class MetadataSource:
    def __init__(self, files: FileCache, blobs: BlobBytes, executor: Executor | None) -> None:
        self._files = files
        self._blobs = blobs
        self._executor = executor

    async def private(self, records: Sequence[PrivateFile], version: str | None) -> Found:
        """The metadata of release `version` (its wheel's METADATA, else its sdist's PKG-INFO)."""
        release = [r for r in records if r.version == version] or list(records)
        for record in sorted(release, key=lambda r: not r.filename.endswith(".whl")):
            if record.metadata_sha256:
                with contextlib.suppress(OSError):
                    return Found(await self._blobs.read_bytes(record.metadata_sha256), Origin.WHEEL, record.version)
        for record in release:
            if record.filename.endswith((".tar.gz", ".zip")) and record.size <= MAX_SDIST_BYTES:
                data = await self._sdist_metadata(record)
                if data is not None:
                    return Found(data, Origin.SDIST, record.version)
        return Found(None, Origin.MISSING, version)

    async def _sdist_metadata(self, record: PrivateFile) -> bytes | None:
        try:
            data = await self._blobs.read_bytes(record.sha256)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, _pkg_info, data, record.filename)
        except (OSError, InvalidUpload) as exc:
            log.warning("could not read PKG-INFO from %s: %s", record.filename, exc)
            return None

    async def upstream(self, releases: Sequence[Release]) -> Found:
        """The newest cached `.metadata` among the releases' files (looked up in the cache only)."""
        for version, dist in _newest_with_metadata(releases):
            cached = await self._files.cached(metadata_file(dist))
            if cached is None:
                continue
            with cached, contextlib.suppress(OSError):
                data = cached.reader.memory()  # a metadata file is small: usually held already
                if data is None:
                    data = await self._blobs.read_bytes(cached.reader.sha256)
                return Found(data, Origin.CACHED, version)
        return Found(None, Origin.NOT_CACHED, None)


def _newest_with_metadata(releases: Sequence[Release]) -> list[tuple[str, DistFile]]:
    """Up to MAX_UPSTREAM_CANDIDATES files with PEP 658 metadata: releases newest first (yanked ones after the
    others), wheels before sdists. The releases are already in version order: nothing is parsed here."""
    found: list[tuple[str, DistFile]] = []
    for release in [r for r in releases if not r.yanked] + [r for r in releases if r.yanked]:
        for row in sorted(release.files, key=lambda f: not f.filename.endswith(".whl")):
            if row.dist.has_metadata:
                found.append((release.version, row.dist))
                if len(found) == MAX_UPSTREAM_CANDIDATES:
                    return found
    return found


def _pkg_info(data: bytes, filename: str) -> bytes:
    """PKG-INFO of an sdist given as bytes, read with the upload path's defensive checks. Blocking."""
    fd, name = tempfile.mkstemp(prefix="shadowpi-readme-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return inspect_distribution(path, filename, ArchiveLimits()).metadata
    finally:
        path.unlink()

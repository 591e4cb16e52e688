"""Publishing a private file: the upload form (twine's legacy API) streamed to a spool, validated like PyPI,
committed to the overlay. The pure rules are proxy/simple/publishing.py; the HTTP handler is proxy/web/publish.py.

Nothing becomes visible until the blob and its metadata row are both committed: the row is written last, in
the same write transaction as the check that the release slot is free.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import MultipartReader
from packaging.version import Version

from proxy.access.model import ROOT, Member
from proxy.archives import ArchiveLimits, DistMetadata, inspect_distribution
from proxy.audit import Actor, audit_entry
from proxy.backends.blobs import BlobInfo, BlobStore
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import PrivateFile
from proxy.backends.spool import Spool
from proxy.backends.spools import SpoolDir
from proxy.config import UploadConfig
from proxy.errors import FileExists, InvalidUpload
from proxy.form import FormLimits, ReceivedForm, read_form
from proxy.reaper import BlobReaper
from proxy.simple.names import NormalizedName
from proxy.simple.publishing import (
    PublishRequest,
    check_digests,
    check_filename,
    check_metadata_matches,
    parse_publish_form,
    release_key,
)

log = logging.getLogger(__name__)

UPLOAD_DIGESTS = ("blake2_256", "md5")  # besides sha256, what clients may send for us to check


@dataclass(frozen=True, slots=True)
class Published:
    filename: str
    project: str
    version: str
    created: bool  # False: an identical file was already there (idempotent re-upload)


class Publisher:
    """Receives uploads into blob storage and the private files of the metadata store."""

    def __init__(
        self, db: MetadataStore, blobs: BlobStore, spools: SpoolDir, reaper: BlobReaper, config: UploadConfig
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._spools = spools
        self._reaper = reaper
        self._config = config

    async def receive(
        self, reader: MultipartReader, user: str, *, index: str = ROOT, gate: Gate | None = None,
        actor: Actor | None = None,
    ) -> Published:
        """Read, validate and commit one upload into `index`. Raises InvalidUpload (and its subclasses), and
        whatever `gate` raises (Forbidden) when the uploader may not upload to the project.

        The first uploader of a new project in an index becomes its owner; `actor` gets an audit entry."""
        async with self._spools.new(UPLOAD_DIGESTS) as spool:  # discarded on the way out unless committed
            received = await read_form(reader, spool, FormLimits.of(self._config))
            return await self._accept(received, _Uploader(user, index, gate or _open_gate, actor))

    async def _accept(self, received: ReceivedForm, uploader: _Uploader) -> Published:
        request, filename = parse_publish_form(received.fields), received.filename
        check_filename(request, filename)
        digests = received.spool.digests()
        check_digests(request, digests)
        # Refuse early what is bound to be refused, before unpacking anything; decided again in the transaction.
        slot = await _slot(self._db, request, filename, uploader.index)
        uploader.gate(request.name, bool(slot.siblings or slot.members), slot.members)
        existing = _claim_slot(request, filename, digests["sha256"], slot, allow_overwrite=self._config.allow_overwrite)
        if existing is not None:
            return _result(existing, created=False)
        loop = asyncio.get_running_loop()
        meta = await loop.run_in_executor(None, inspect_distribution, received.spool.path, filename, ArchiveLimits())
        check_metadata_matches(request, meta.name, meta.version)
        await self._blobs.prepare(received.spool)  # the slow part (fsync, upload): the transaction stays short
        if not filename.endswith(".whl"):  # PEP 658 is defined for wheels only
            return await self._commit(request, received, _Stored(meta, None), uploader)
        async with self._spools.new() as metadata:
            await metadata.write(meta.metadata)
            await self._blobs.prepare(metadata)
            return await self._commit(request, received, _Stored(meta, metadata), uploader)

    async def _commit(
        self, request: PublishRequest, received: ReceivedForm, stored: _Stored, uploader: _Uploader
    ) -> Published:
        """Check the slot, move the blobs into place and insert the row: one transaction, so racing uploads (in any
        process) cannot both pass the check; the blobs are renamed inside it so no reclaim removes them meanwhile."""
        filename, committed = received.filename, list[str]()
        try:
            async with self._db.transaction() as tx:
                slot = await _slot(tx, request, filename, uploader.index)
                created = await tx.add_private_project(request.name, uploader.index, created_by=uploader.user)
                uploader.gate(request.name, not created, slot.members)  # decided again, with what is committed
                sha256 = received.spool.digests()["sha256"]
                existing = _claim_slot(request, filename, sha256, slot, allow_overwrite=self._config.allow_overwrite)
                if existing is not None:
                    return _result(existing, created=False)
                blob = await self._blobs.commit(received.spool)
                committed.append(blob.sha256)
                metadata = await self._blobs.commit(stored.metadata) if stored.metadata is not None else None
                committed.extend([metadata.sha256] if metadata is not None else [])
                record = _record(request, received, stored.meta, blob, metadata, uploader)
                await tx.add_private_file(record, replace=slot.current is not None)
                await tx.record_blob(blob.sha256, blob.size)
                if created:  # the first uploader of a project owns it
                    await tx.add_member(uploader.index, request.name, uploader.user, "owner")
                if uploader.actor is not None:
                    await tx.add_audit(audit_entry(uploader.actor, "upload", uploader.index, request.name, filename,
                                                   {"sha256": blob.sha256, "version": record.version}))
        except BaseException:
            await self._reclaim_after_failure(committed)
            raise
        if slot.current is not None:  # overwritten: its bytes may now be nobody's
            await self._reaper.reclaim([slot.current.sha256, slot.current.metadata_sha256])
        return _result(record, created=True)

    async def _reclaim_after_failure(self, committed: list[str]) -> None:
        """Blobs moved into place whose row never committed: nobody refers to them (unless someone else does)."""
        try:
            await self._reaper.reclaim(committed)
        except Exception as exc:  # the upload's own error is the one to report; this only leaves unused bytes
            log.warning("could not remove the blobs of a failed upload (%s): %s", ", ".join(committed), exc)


@dataclass(frozen=True, slots=True)
class _Stored:
    """What inspecting the archive produced: its metadata, and the synced spool of the PEP 658 file (wheels)."""

    meta: DistMetadata
    metadata: Spool | None


@dataclass(frozen=True, slots=True)
class _Slot:
    """What the database says about a filename and its release."""

    current: PrivateFile | None  # the file under this very filename
    deleted_sha256: str | None  # the bytes this filename had, if it was deleted
    siblings: list[PrivateFile]  # the project's files
    members: tuple[Member, ...]  # the project's owners and maintainers


# Raises Forbidden unless the uploader may upload to the project (which exists or not, with these members).
Gate = Callable[[NormalizedName, bool, tuple[Member, ...]], None]


def _open_gate(_project: NormalizedName, _exists: bool, _members: tuple[Member, ...]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Uploader:
    user: str
    index: str
    gate: Gate
    actor: Actor | None


class _SlotQueries(Protocol):
    async def private_file(self, filename: str, index: str = ROOT) -> PrivateFile | None: ...
    async def deleted_sha256(self, filename: str, index: str = ROOT) -> str | None: ...
    async def private_files(self, project: NormalizedName, index: str = ROOT) -> list[PrivateFile]: ...
    async def project_members(self, index: str, project: str) -> list[Member]: ...


async def _slot(queries: _SlotQueries, request: PublishRequest, filename: str, index: str) -> _Slot:
    return _Slot(
        await queries.private_file(filename, index), await queries.deleted_sha256(filename, index),
        await queries.private_files(request.name, index), tuple(await queries.project_members(index, request.name)),
    )


def _claim_slot(
    request: PublishRequest, filename: str, sha256: str, slot: _Slot, *, allow_overwrite: bool
) -> PrivateFile | None:
    """The identical file already there (twine retries: a success), or None when this upload may go in.

    Raises FileExists / InvalidUpload: other bytes under a used or deleted filename; a second file for a release
    slot (one per release and wheel tags, one sdist per release; equal versions are one release).
    """
    current = slot.current
    if current is not None:
        if hmac.compare_digest(current.sha256, sha256):
            return current
        if not allow_overwrite:
            raise FileExists(_already_exists(current))
    if slot.deleted_sha256 is not None and slot.deleted_sha256 != sha256:
        raise InvalidUpload(
            "This filename was previously used by a file that has since been deleted. "
            "Use a different version. See https://pypi.org/help/#file-name-reuse for more information."
        )
    key = release_key(filename)
    for other in slot.siblings:
        if other.filename == filename or Version(other.version) != request.version:
            continue
        if release_key(other.filename) == key:
            if key == ("sdist",):
                raise InvalidUpload("Only one sdist may be uploaded per release.")
            raise FileExists(
                f"File already exists ('{other.filename}' has the same release and tags as '{filename}'). "
                "See https://pypi.org/help/#file-name-reuse for more information."
            )
    return None


def _record(
    request: PublishRequest, received: ReceivedForm, meta: DistMetadata, blob: BlobInfo, metadata: BlobInfo | None,
    uploader: _Uploader,
) -> PrivateFile:
    return PrivateFile(
        filename=received.filename,
        project=request.name,
        version=str(request.version),
        sha256=blob.sha256,
        blake2_256=received.spool.digests().get("blake2_256"),
        size=blob.size,
        requires_python=meta.requires_python,
        metadata_sha256=metadata.sha256 if metadata is not None else None,
        yanked=None,
        upload_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        uploaded_by=uploader.user,
        index=uploader.index,
    )


def _result(record: PrivateFile, *, created: bool) -> Published:
    return Published(record.filename, record.project, record.version, created=created)


def _already_exists(current: PrivateFile) -> str:
    # twine --skip-existing looks for "File already exists" in a 400's reason: keep the prefix.
    return (
        f"File already exists ('{current.filename}', with blake2_256 hash '{current.blake2_256 or ''}'). "
        "See https://pypi.org/help/#file-name-reuse for more information."
    )

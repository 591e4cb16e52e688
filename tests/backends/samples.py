"""Sample records for the contract suite."""

from __future__ import annotations

from proxy.backends.records import PrivateFile, StoredPage
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName

SHA_A, SHA_B, SHA_C, SHA_D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def private_file(filename: str = "acme-1.0.tar.gz", sha256: str = SHA_A, *, project: str = "acme",
                 version: str = "1.0", metadata_sha256: str | None = None, yanked: str | None = None) -> PrivateFile:
    return PrivateFile(
        filename=filename, project=NormalizedName(project), version=version, sha256=sha256, blake2_256=None,
        size=10, requires_python=">=3.8", metadata_sha256=metadata_sha256, yanked=yanked,
        upload_time="2025-01-01T00:00:00.000000Z", uploaded_by="ci",
    )


def stored_page(name: str = "tinylib", *, fetched_at: float = 100.0, files: int = 1) -> StoredPage:
    dists = tuple(
        DistFile(f"{name}-{i}.0.tar.gz", f"https://files.example/{name}-{i}.0.tar.gz", {"sha256": f"{i:064x}"})
        for i in range(files)
    )
    page = ProjectPage(NormalizedName(name), dists, tuple(f"{i}.0" for i in range(files)))
    return StoredPage(page, '"etag-1"', "Wed, 01 Jan 2025 00:00:00 GMT", fetched_at)


def missing_page(*, fetched_at: float = 100.0) -> StoredPage:
    """A remembered upstream 404."""
    return StoredPage(None, None, None, fetched_at)

"""The page model: one frozen record per concept, shared by both wire formats (PEP 503 HTML, PEP 691 JSON)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from packaging.version import Version

from proxy.errors import UpstreamInvalid
from proxy.simple.names import NormalizedName, version_of_filename

log = logging.getLogger(__name__)

# Hash algorithms both pip and uv accept in URL fragments and JSON `hashes`, strongest first.
# uv hard-fails on any other algorithm name, so nothing else is ever emitted.
EMITTABLE_HASHES = ("sha256", "sha512", "sha384", "md5")
METADATA_SUFFIX = ".metadata"  # PEP 658: a file's core-metadata file lives at the file's URL plus this


class Origin(enum.Enum):
    """Where a page or file comes from."""

    PRIVATE = "private"
    UPSTREAM = "upstream"


@dataclass(frozen=True, slots=True)
class DistFile:
    """One distribution file of a project page.

    `url` is where *shadowpi* fetches the file (absolute upstream URL, or "" for private files);
    the renderers rewrite it to shadowpi's own URL.
    """

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)  # {"sha256": "<hex>"}, lower-case hex
    requires_python: str | None = None
    yanked: bool | str = False  # PEP 592: a str is the reason
    core_metadata: Mapping[str, str] | bool = False  # PEP 658/714: hashes of the .metadata file, or True
    size: int | None = None  # PEP 700
    upload_time: str | None = None  # PEP 700: yyyy-mm-ddThh:mm:ss.ffffffZ
    origin: Origin = Origin.UPSTREAM

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def has_metadata(self) -> bool:
        return self.core_metadata is not False

    @property
    def metadata_hashes(self) -> Mapping[str, str]:
        """Hashes the index declares for the PEP 658 metadata file ({} when it declares none)."""
        return self.core_metadata if isinstance(self.core_metadata, Mapping) else {}

    @property
    def metadata_sha256(self) -> str | None:
        return self.metadata_hashes.get("sha256")


@dataclass(frozen=True, slots=True)
class ProjectPage:
    """A project detail page: the files of one project, with the versions it has (PEP 700)."""

    name: NormalizedName
    files: tuple[DistFile, ...]
    versions: tuple[str, ...] = ()
    origin: Origin = Origin.UPSTREAM

    def file(self, filename: str) -> DistFile | None:
        """The listed file with that exact filename, if any."""
        for dist in self.files:
            if dist.filename == filename:
                return dist
        return None


@dataclass(frozen=True, slots=True)
class ProjectList:
    """The index root: the projects this server knows."""

    names: tuple[NormalizedName, ...]


def is_safe_filename(filename: str) -> bool:
    """One plain path segment: no separator, not "." or "..", nothing unprintable (it becomes part of our URLs)."""
    return (
        filename.isprintable()
        and filename not in {"", ".", ".."}
        and "/" not in filename
        and "\\" not in filename
    )


def safe_files(name: NormalizedName, files: Iterable[DistFile]) -> tuple[DistFile, ...]:
    """The files whose names can be a path segment of our URLs; the others are dropped, with one warning."""
    kept: list[DistFile] = []
    dropped: list[DistFile] = []
    for dist in files:
        (kept if is_safe_filename(dist.filename) else dropped).append(dist)
    if dropped:
        log.warning(
            "dropped %d file(s) of %s with an unsafe filename from upstream, e.g. %r",
            len(dropped), name, dropped[0].filename,
        )  # fmt: skip
    return tuple(kept)


def check_file_count(count: int, max_files: int | None) -> None:
    """Raises UpstreamInvalid for a page listing more than `max_files` files (None: no limit)."""
    if max_files is not None and count > max_files:
        raise UpstreamInvalid(f"upstream page lists {count} files, more than [upstream] max_page_files ({max_files})")


def derive_versions(files: Iterable[DistFile]) -> tuple[str, ...]:
    """Sorted unique versions of the files' filenames; unparseable (legacy) filenames are skipped."""
    found = {v for f in files if (v := version_of_filename(f.filename)) is not None}
    return tuple(sorted(found, key=Version))


def first_emittable_hash(hashes: Mapping[str, str]) -> tuple[str, str] | None:
    """The preferred (alg, hex) that pip and uv both accept (sha256 first), if the file has one."""
    for alg in EMITTABLE_HASHES:
        if alg in hashes:
            return alg, hashes[alg]
    return None

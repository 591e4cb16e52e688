"""View models for a project page (pure): releases with their files, the project's standing, install lines."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from proxy.simple.model import DistFile, Origin, ProjectPage
from proxy.simple.names import NormalizedName, version_of_filename
from proxy.ui.urls import Endpoints

RELEASES_PER_PAGE = 25
OTHER_FILES = "other files"  # the group for filenames whose version cannot be read


class Standing(enum.Enum):
    """What the name is here, as the dependency-confusion defence sees it."""

    PRIVATE = "private"  # private files only: upstream is never asked about the name (it shadows upstream)
    MERGED = "merged"  # private, and [policy] merge_upstream also lists upstream files
    UPSTREAM = "upstream"  # cached from upstream


@dataclass(frozen=True, slots=True)
class FileRow:
    dist: DistFile  # the page's own record (where its metadata file is, for the README)
    filename: str
    path: str  # the download path, relative to the site root
    size: int | None
    sha256: str | None
    requires_python: str | None
    upload_time: str | None
    uploader: str | None
    private: bool
    yanked: bool
    yanked_reason: str | None


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    files: tuple[FileRow, ...]
    yanked: bool  # every file is yanked: resolvers skip the release
    partly_yanked: bool
    yanked_reason: str | None
    upload_time: str | None
    private: bool  # has private files (those are what management acts on)


@dataclass(frozen=True, slots=True)
class Install:
    requirement: str
    pip: str
    uv: str
    poetry: tuple[str, ...]


def standing(page: ProjectPage, *, has_private: bool) -> Standing:
    if not has_private:
        return Standing.UPSTREAM
    return Standing.MERGED if any(f.origin is Origin.UPSTREAM for f in page.files) else Standing.PRIVATE


def _file_row(dist: DistFile, path: str, uploader: str | None) -> FileRow:
    reason = dist.yanked if isinstance(dist.yanked, str) and dist.yanked else None
    return FileRow(
        dist=dist, filename=dist.filename, path=path, size=dist.size, sha256=dist.sha256,
        requires_python=dist.requires_python, upload_time=dist.upload_time, uploader=uploader,
        private=dist.origin is Origin.PRIVATE, yanked=dist.yanked is not False, yanked_reason=reason,
    )  # fmt: skip


def build_releases(
    page: ProjectPage, path: Callable[[DistFile], str], uploaders: Mapping[str, str | None]
) -> tuple[Release, ...]:
    """Releases newest first, files by filename; files whose version cannot be read come last, together.

    Pure CPU, O(files): big upstream pages (tens of thousands of files) should be built off the event loop.
    """
    groups: dict[str, list[FileRow]] = {}
    for dist in page.files:
        version = version_of_filename(dist.filename) or OTHER_FILES
        groups.setdefault(version, []).append(_file_row(dist, path(dist), uploaders.get(dist.filename)))
    ordered = sorted(groups, key=_version_key, reverse=True)
    return tuple(_release(v, sorted(groups[v], key=lambda r: r.filename)) for v in ordered)


def _version_key(raw: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(raw))
    except InvalidVersion:
        return (0, raw)


def _release(version: str, files: list[FileRow]) -> Release:
    yanked = [f for f in files if f.yanked]
    reasons = [f.yanked_reason for f in yanked if f.yanked_reason]
    times = [f.upload_time for f in files if f.upload_time]
    return Release(
        version=version,
        files=tuple(files),
        yanked=bool(files) and len(yanked) == len(files),
        partly_yanked=0 < len(yanked) < len(files),
        yanked_reason=reasons[0] if reasons else None,
        upload_time=max(times) if times else None,
        private=any(f.private for f in files),
    )


def install_lines(endpoints: Endpoints, name: NormalizedName, version: str | None) -> Install:
    """The commands that install this project through this index (pinned to `version` when given).

    Always --index-url, never --extra-index-url: an extra index lets pip pick a same-named upstream project, the
    very dependency confusion shadowing prevents.
    """
    requirement = f"{name}=={version}" if version and version != OTHER_FILES else str(name)
    simple = endpoints.simple
    trusted = f" --trusted-host {endpoints.trusted_host}" if endpoints.trusted_host else ""
    return Install(
        requirement=requirement,
        pip=f"pip install --index-url {simple}{trusted} {requirement}",
        uv=f"uv pip install --index-url {simple} {requirement}",
        poetry=(
            f"poetry source add --priority=primary shadowpi {simple}",
            f"poetry add --source shadowpi {requirement}",
        ),
    )

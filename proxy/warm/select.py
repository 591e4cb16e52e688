"""Which files of a project page suit a target: tag rank, requires-python, yanked (PEP 592) and hash rules."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from proxy.simple.model import DistFile
from proxy.warm.targets import Target

__all__ = ["Release", "best_file", "file_version", "is_compatible", "lock_files_for", "releases"]


@dataclass(frozen=True, slots=True)
class Release:
    """One version of a project with the files a target could install, best file first."""

    version: Version
    files: tuple[DistFile, ...]

    @property
    def best(self) -> DistFile:
        return self.files[0]


def file_version(filename: str) -> Version | None:
    """The version in a wheel or sdist filename; None for anything else (eggs, legacy names)."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _wheel_rank(target: Target, filename: str) -> int | None:
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return None
    return target.rank(tags)


def python_allows(target: Target, requires_python: str | None) -> bool:
    """pip's rule: no or an invalid Requires-Python keeps the file; otherwise the target version must match."""
    if not requires_python:
        return True
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True
    return spec.contains(target.python_full_version, prereleases=True)


def is_compatible(target: Target, dist: DistFile) -> bool:
    """Installable on the target: a supported wheel or any sdist, whose Requires-Python admits it."""
    if not python_allows(target, dist.requires_python):
        return False
    if dist.filename.endswith(".whl"):
        return _wheel_rank(target, dist.filename) is not None
    return file_version(dist.filename) is not None


def _sort_key(target: Target, dist: DistFile) -> tuple[int, int]:
    rank = _wheel_rank(target, dist.filename) if dist.filename.endswith(".whl") else None
    if rank is not None:
        return (0, rank)
    return (1, 0 if dist.filename.endswith(".tar.gz") else 1)  # sdists last; .tar.gz before .zip


def best_file(target: Target, files: Iterable[DistFile]) -> DistFile | None:
    """The file pip would pick for the target: the best-ranked wheel, else the sdist."""
    usable = [f for f in files if is_compatible(target, f)]
    return min(usable, key=lambda f: _sort_key(target, f)) if usable else None


def _matches_hashes(dist: DistFile, allowed: Collection[str]) -> bool:
    return any(f"{alg}:{value}" in allowed for alg, value in dist.hashes.items())


def _is_pinned(spec: SpecifierSet) -> bool:
    # PEP 592 as pip reads it: only `==X` (no wildcard) or `===X` lets a yanked release be chosen.
    return any(s.operator == "===" or (s.operator == "==" and not s.version.endswith(".*")) for s in spec)


def releases(
    target: Target,
    files: Sequence[DistFile],
    spec: SpecifierSet,
    *,
    prereleases: bool = False,
    hashes: Collection[str] = (),
) -> list[Release]:
    """The releases matching `spec` the target can install, newest first, with pip's candidate rules.

    Pre-releases only when asked, mentioned by `spec`, or nothing else matches; yanked files only when every
    matching file is yanked and `spec` pins the version; with `hashes`, only files carrying one (if any do).
    """
    usable = [(v, f) for f in files if (v := file_version(f.filename)) is not None and is_compatible(target, f)]
    wanted = set(spec.filter({v for v, _ in usable}, prereleases=True if prereleases else None))
    chosen = [(v, f) for v, f in usable if v in wanted]
    if not (_is_pinned(spec) and chosen and all(f.yanked is not False for _, f in chosen)):
        chosen = [(v, f) for v, f in chosen if f.yanked is False]
    if hashes and any(_matches_hashes(f, hashes) for _, f in chosen):
        chosen = [(v, f) for v, f in chosen if _matches_hashes(f, hashes)]
    by_version: dict[Version, list[DistFile]] = {}
    for version, dist in chosen:
        by_version.setdefault(version, []).append(dist)
    return [
        Release(v, tuple(sorted(by_version[v], key=lambda f: _sort_key(target, f))))
        for v in sorted(by_version, reverse=True)
    ]


def lock_files_for(target: Target, files: Sequence[DistFile]) -> list[DistFile]:
    """From a lock's files: every wheel the target supports, else its best sdist (nothing when neither fits)."""
    wheels = [f for f in files if f.filename.endswith(".whl") and is_compatible(target, f)]
    if wheels:
        return sorted(wheels, key=lambda f: _sort_key(target, f))
    best = best_file(target, files)
    return [best] if best is not None else []


def why_unusable(target: Target, files: Sequence[DistFile], spec: SpecifierSet) -> tuple[Version, str] | None:
    """For a requirement that found no release: the newest matching version and why the target can't use it.

    None when no listed version matches `spec` at all (a version problem, not a compatibility one).
    """
    listed = {v for f in files if (v := file_version(f.filename)) is not None}
    matching = sorted(spec.filter(listed, prereleases=True), reverse=True)
    if not matching:
        return None
    newest = matching[0]
    its_files = [f for f in files if file_version(f.filename) == newest]
    if all(not python_allows(target, f.requires_python) for f in its_files):
        return newest, f"requires Python {its_files[0].requires_python}"
    if any(is_compatible(target, f) for f in its_files):
        return newest, "all its files are yanked"
    return newest, "no wheel for this platform and no sdist"

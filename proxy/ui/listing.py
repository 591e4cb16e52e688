"""View models for project lists and search (pure: names and files in, rows and pages out)."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from packaging.version import InvalidVersion, Version

from proxy.simple.names import NormalizedName

T = TypeVar("T")
Entry = tuple[NormalizedName, bool]  # a project name and whether it is private
PAGE_SIZE = 50
MAX_QUERY_CHARS = 200


class Kind(enum.Enum):
    """Which projects a list shows."""

    ALL = "all"
    PRIVATE = "private"
    CACHED = "cached"  # upstream projects in the cache

    @classmethod
    def parse(cls, raw: str | None) -> Kind:
        """Unknown values mean all (a hand-edited URL shows everything rather than an error)."""
        try:
            return cls(raw or "all")
        except ValueError:
            return cls.ALL


@dataclass(frozen=True, slots=True)
class Summary:
    """A project's newest version and its most recent upload."""

    latest: str | None
    last_upload: str | None  # PEP 700 time, yyyy-mm-ddThh:mm:ss[.ffffff]Z


@dataclass(frozen=True, slots=True)
class Row:
    name: NormalizedName
    private: bool
    summary: Summary


@dataclass(frozen=True, slots=True)
class Paged(Generic[T]):
    items: tuple[T, ...]
    page: int
    pages: int
    total: int

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def paginate(items: Sequence[T], page: int, size: int = PAGE_SIZE) -> Paged[T]:
    """The requested page of `items`; a page past the end shows the last one (a stale link still shows something)."""
    pages = max(1, -(-len(items) // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return Paged(tuple(items[start : start + size]), page, pages, len(items))


def parse_page(raw: str | None) -> int:
    try:
        return max(1, int(raw or "1"))
    except ValueError:
        return 1


def normalize_query(query: str) -> str:
    """The search text in normalized-name form (PEP 503), so `Foo_Bar` finds `foo-bar`."""
    return re.sub(r"[-_.\s]+", "-", query.strip()[:MAX_QUERY_CHARS]).lower().strip("-")


def merge_names(private: Iterable[NormalizedName], cached: Iterable[NormalizedName]) -> tuple[Entry, ...]:
    """Every known project once, by name, as (name, is private); a private name that is also cached is private."""
    private_set = set(private)
    return tuple((n, n in private_set) for n in sorted(private_set.union(cached)))


def choose(entries: Sequence[Entry], query: str, kind: Kind) -> list[Entry]:
    """The entries (sorted by name) of `kind` matching `query`: an exact match first, then names starting with it,
    then names containing it, each group by name. Work is one pass, plus a sort of the matches only."""
    if kind is Kind.PRIVATE:
        entries = [e for e in entries if e[1]]
    elif kind is Kind.CACHED:
        entries = [e for e in entries if not e[1]]
    wanted = normalize_query(query)
    if not wanted:
        return list(entries)
    matches = [e for e in entries if wanted in e[0]]
    matches.sort(key=lambda e: (e[0] != wanted, not e[0].startswith(wanted)))  # stable: by name within a group
    return matches


def summarize(files: Iterable[tuple[str | None, bool, str | None]]) -> Summary:
    """From (version, yanked, upload time) per file: the newest final release that is not yanked (else the newest
    pre-release, else the newest yanked one, as PyPI shows), and the latest upload time."""
    versions: dict[str, bool] = {}  # version -> every file yanked
    last_upload: str | None = None
    for version, yanked, upload_time in files:
        if version is not None:
            versions[version] = versions.get(version, True) and yanked
        if upload_time is not None and (last_upload is None or upload_time > last_upload):
            last_upload = upload_time
    return Summary(latest_version(versions), last_upload)


def latest_version(versions: dict[str, bool]) -> str | None:
    """The version to show as "latest" from {version: yanked}."""
    parsed = []
    for raw, yanked in versions.items():
        try:
            parsed.append((Version(raw), yanked, raw))
        except InvalidVersion:
            continue
    tiers = (
        [(v, raw) for v, yanked, raw in parsed if not yanked and not v.is_prerelease],
        [(v, raw) for v, yanked, raw in parsed if not yanked],
        [(v, raw) for v, _yanked, raw in parsed],
    )
    for candidates in tiers:
        if candidates:
            return max(candidates)[1]
    return None

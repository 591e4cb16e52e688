"""The project index clients see: private pages and allowed upstream pages, resolved through an index's chain by
the shadow policy (proxy/access/resolve.py: the first index that holds or reserves a name hides the rest)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.access import ROOT, Access, locate
from proxy.errors import ProjectNotFound, UpstreamUnavailable
from proxy.pages import Outcome, PageCache
from proxy.simple.model import ProjectList, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.policy import resolve_project

log = logging.getLogger(__name__)
PrivateLookup = Callable[[NormalizedName, str], Awaitable[ProjectPage | None]]
PrivateNames = Callable[[str], Awaitable[list[NormalizedName]]]
Holders = Callable[[NormalizedName], Awaitable[frozenset[str]]]
Version = Callable[[], bytes]
# Answers reused while their inputs stand: at most this many (index, name) pairs, forgotten all at once when full.
HOT_ENTRIES = 4096


async def _no_private(_name: NormalizedName, _index: str) -> ProjectPage | None:
    return None


async def _no_private_names(_index: str) -> list[NormalizedName]:
    return []


def _no_version() -> bytes:
    return b""


async def _no_holders(_name: NormalizedName) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Resolved:
    """The page for a project and how its upstream part was obtained (weakly referenced by the page handler's
    ready answers, proxy/web/ready.py)."""

    page: ProjectPage
    outcome: Outcome


def _first_holder(
    access: Access, index: str, name: NormalizedName, held: frozenset[str]
) -> tuple[str | None, bool, bool]:
    """locate() when no index has private_patterns: (holder, upstream allowed, reserved)."""
    requested = access.indexes[index]
    if held:
        for member in access.chain(index):
            if member.name in held:
                return member.name, requested.upstream and name in member.merge_upstream, True
    return None, requested.upstream, False


# Outcomes that stay true while the inputs do (a MISS, REVALIDATED or STALE answer is not repeated as such).
STEADY = frozenset({Outcome.HIT, Outcome.OFFLINE, Outcome.PRIVATE})


_ABSENT = ProjectPage(name=NormalizedName("-"), files=(), versions=())  # a marker, never served


@dataclass(frozen=True, slots=True)
class _Hot:
    upstream: ProjectPage | None  # None: upstream was not asked
    resolved: Resolved


class ProjectIndex:
    """Resolves a project name to the page clients may see (the only path to upstream pages and files).

    `access` returns the current index graph (swapped on SIGHUP); `holders` says which indexes hold a name;
    `private_version` changes whenever what `private`, `private_names` or `holders` answer may have changed.
    """

    def __init__(
        self,
        pages: PageCache,
        access: Callable[[], Access],
        private: PrivateLookup = _no_private,
        private_names: PrivateNames = _no_private_names,
        holders: Holders = _no_holders,
        private_version: Version = _no_version,
    ) -> None:
        self._pages = pages
        self._access = access
        self._private = private
        self._private_names = private_names
        self._holders = holders
        self._private_version = private_version
        # Steady answers (a HIT, OFFLINE or PRIVATE page) by (index, name), with the upstream page they used. They
        # all rest on one basis: the index graph, the private version and the page cache's memory generation. When
        # any of the three moves, they are forgotten (so they never hold a page the page cache has let go); while
        # none does and the upstream page is still fresh, an answer stands, and a warm page request skips the
        # awaits and lookups (a fifth of its time in the handler).
        self._hot: dict[tuple[str, NormalizedName], _Hot] = {}
        self._hot_basis: tuple[Access, bytes, int] | None = None
        # Merged pages by the identity of their inputs: unchanged inputs give the same object, so the
        # render cache (keyed on page identity) keeps serving bytes from memory.
        self._merged: dict[NormalizedName, tuple[ProjectPage, ProjectPage, ProjectPage]] = {}

    async def project(self, name: NormalizedName, index: str = ROOT) -> Resolved:
        """Raises ProjectNotFound, or UpstreamUnavailable when upstream fails with nothing cached."""
        basis = self._basis()  # before any await
        if self._rests_on(basis):
            standing = self._standing(name, index)
            if standing is not None:
                return standing
        else:  # the world moved: forget every answer, new ones rest on the basis of now
            self._hot.clear()
            self._hot_basis = basis
        resolved, upstream = await self._project(basis[0], name, index)
        # Kept only while the basis it was computed on is still the one the answers rest on (see _hot).
        if resolved.outcome in STEADY and upstream is not _ABSENT and self._rests_on(basis):
            if len(self._hot) >= HOT_ENTRIES:
                self._hot.clear()
            self._hot[(index, name)] = _Hot(upstream, resolved)
        return resolved

    def reused(self, name: NormalizedName, index: str = ROOT) -> Resolved | None:
        """The steady answer project() would give again now, found without awaiting anything; None: ask
        project() (the answer was never steady, or what it rests on has moved)."""
        return self._standing(name, index) if self._rests_on(self._basis()) else None

    def _basis(self) -> tuple[Access, bytes, int]:
        return self._access(), self._private_version(), self._pages.generation

    def _standing(self, name: NormalizedName, index: str) -> Resolved | None:
        """The kept answer for (index, name) while its upstream page is still the fresh one in memory."""
        hot = self._hot.get((index, name))
        if hot is not None and (hot.upstream is None or self._pages.held_fresh(name) is hot.upstream):
            return hot.resolved
        return None

    def _rests_on(self, basis: tuple[Access, bytes, int]) -> bool:
        known = self._hot_basis
        return known is not None and known[0] is basis[0] and known[1] == basis[1] and known[2] == basis[2]

    async def _project(
        self, access: Access, name: NormalizedName, index: str
    ) -> tuple[Resolved, ProjectPage | None]:
        """The answer, and the upstream page it used: None when upstream was not asked, _ABSENT when upstream
        does not know the name (an answer that rests on that is not reused: nothing cheap says it still holds)."""
        held = await self._holders(name)
        if access.all_patterns.private_patterns:  # the general rule (proxy/access/resolve.py)
            others = access.all_patterns if len(access.indexes) > 1 else None
            where = locate(name, access.chain(index), held.__contains__, reserved_anywhere=others)
            holder, upstream, reserved = where.holder, where.upstream, where.reserved
        else:  # no index reserves names: the same rule without patterns, cheaper (every page request asks)
            holder, upstream, reserved = _first_holder(access, index, name, held)
        private = await self._private(name, holder) if holder is not None else None
        if not upstream:
            if private is None:
                if reserved:
                    raise ProjectNotFound(f"{name} is reserved for private packages and has none")
                raise ProjectNotFound(f"no project named {name} in index {index!r}")
            if not private.files:
                raise ProjectNotFound(f"{name} is a private project whose files were all deleted")
            return Resolved(private, Outcome.PRIVATE), None
        try:
            lookup = await self._pages.lookup(name)
        except UpstreamUnavailable as exc:
            if private is None:
                raise
            log.warning("upstream failed for %s, serving its private files only: %s", name, exc)
            return Resolved(private, Outcome.STALE), None
        page = self._resolve(name, private, lookup.page)
        if page is None and lookup.outcome is Outcome.OFFLINE:
            raise ProjectNotFound(f"{name} is not in the cache and shadowpi is offline")
        if page is None:
            raise ProjectNotFound(f"no project named {name} here or upstream")
        return Resolved(page, lookup.outcome), lookup.page if lookup.page is not None else _ABSENT

    def _resolve(
        self, name: NormalizedName, private: ProjectPage | None, upstream: ProjectPage | None
    ) -> ProjectPage | None:
        if private is None or upstream is None:
            return private or upstream
        known = self._merged.get(name)
        if known is not None and known[0] is private and known[1] is upstream:
            return known[2]
        merged = resolve_project(private, upstream)
        assert merged is not None  # both inputs are pages
        self._merged[name] = (private, upstream, merged)
        return merged

    async def project_list(self, index: str = ROOT) -> ProjectList:
        """Private projects of the chain, and (when the index reaches upstream) upstream projects already in the
        cache (never the whole upstream list)."""
        chain = self._access().chain(index)
        names: set[NormalizedName] = set()
        for member in chain:
            names.update(await self._private_names(member.name))
        if chain[0].upstream:
            names.update(await self._pages.cached_names())
        return ProjectList(tuple(sorted(names)))

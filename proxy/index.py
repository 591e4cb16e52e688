"""The project index clients see: private pages and allowed upstream pages, resolved by the shadow policy."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.errors import ProjectNotFound, UpstreamUnavailable
from proxy.pages import Outcome, PageCache
from proxy.simple.model import ProjectList, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.policy import ShadowPolicy, resolve_project, upstream_allowed

log = logging.getLogger(__name__)
PrivateLookup = Callable[[NormalizedName], Awaitable[ProjectPage | None]]
PrivateNames = Callable[[], Awaitable[list[NormalizedName]]]


async def _no_private(_name: NormalizedName) -> ProjectPage | None:
    return None


async def _no_private_names() -> list[NormalizedName]:
    return []


@dataclass(frozen=True, slots=True)
class Resolved:
    """The page for a project and how its upstream part was obtained."""

    page: ProjectPage
    outcome: Outcome


class ProjectIndex:
    """Resolves a project name to the page clients may see (the only path to upstream pages and files)."""

    def __init__(
        self,
        pages: PageCache,
        policy: ShadowPolicy,
        private: PrivateLookup = _no_private,
        private_names: PrivateNames = _no_private_names,
    ) -> None:
        self._pages = pages
        self._policy = policy
        self._private = private
        self._private_names = private_names
        # Merged pages by the identity of their inputs: unchanged inputs give the same object, so the
        # render cache (keyed on page identity) keeps serving bytes from memory.
        self._merged: dict[NormalizedName, tuple[ProjectPage, ProjectPage, ProjectPage]] = {}

    async def project(self, name: NormalizedName) -> Resolved:
        """Raises ProjectNotFound, or UpstreamUnavailable when upstream fails with nothing cached."""
        private = await self._private(name)
        if not upstream_allowed(name, has_private=private is not None, policy=self._policy):
            if private is None:
                raise ProjectNotFound(f"{name} is reserved for private packages and has none")
            if not private.files:
                raise ProjectNotFound(f"{name} is a private project whose files were all deleted")
            return Resolved(private, Outcome.PRIVATE)
        try:
            lookup = await self._pages.lookup(name)
        except UpstreamUnavailable as exc:
            if private is None:
                raise
            log.warning("upstream failed for %s, serving its private files only: %s", name, exc)
            return Resolved(private, Outcome.STALE)
        page = self._resolve(name, private, lookup.page)
        if page is None and lookup.outcome is Outcome.OFFLINE:
            raise ProjectNotFound(f"{name} is not in the cache and shadowpi is offline")
        if page is None:
            raise ProjectNotFound(f"no project named {name} here or upstream")
        return Resolved(page, lookup.outcome)

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

    async def project_list(self) -> ProjectList:
        """Private projects and upstream projects already in the cache (never the whole upstream list)."""
        names = set(await self._private_names()) | set(await self._pages.cached_names())
        return ProjectList(tuple(sorted(names)))

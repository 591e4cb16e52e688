"""Named indexes in the web interface (issue 14's /index/<name>/): which index a page shows, whether the viewer
may read it (the simple API's rule, with the UI's identity: Basic or the session cookie), and which indexes a
viewer may list on the home page."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from proxy.access import ROOT, Act, IndexDef, decide
from proxy.access.model import Access, Who
from proxy.auth import Identity
from proxy.errors import AuthenticationRequired, Forbidden, IndexNotFound
from proxy.keys import ACCESS


@dataclass(frozen=True, slots=True)
class Shown:
    """The index a page shows: its definition and its chain (the index, then its bases)."""

    index: IndexDef
    chain: tuple[IndexDef, ...]

    @property
    def name(self) -> str:
        return self.index.name

    @property
    def url_name(self) -> str | None:
        """The index parameter of Urls: None for root."""
        return None if self.index.name == ROOT else self.index.name


def who_of(access: Access, identity: Identity | None) -> Who:
    if identity is None:
        return Who(None)
    return Who(identity.user, access.groups_of(identity.user), identity.token)


def shown(request: web.Request) -> Shown:
    """The URL's index (root for unprefixed pages). Raises IndexNotFound (404)."""
    access = request.app[ACCESS].current
    name = request.match_info.get("index", ROOT)
    index = access.indexes.get(name)
    if index is None:
        raise IndexNotFound(f"no index named {name!r}")
    return Shown(index, access.chain(name))


def check_read(request: web.Request, identity: Identity | None) -> bool:
    """For a page under /index/<name>/: IndexNotFound (404) for an unknown index, AuthenticationRequired (401) for
    an anonymous viewer who may not read it, Forbidden (403) for a signed-in one. Root's pages keep [auth] read.
    Returns whether the page is restricted (an index not everyone may read: no cache may share it)."""
    if "index" not in request.match_info:
        return False
    index = shown(request).index
    if index.world_readable:
        return False
    decision = decide(Act.READ, who_of(request.app[ACCESS].current, identity), index, now=time.time())
    if decision.allowed:
        return True
    if decision.status == 401:
        raise AuthenticationRequired(decision.reason)
    raise Forbidden(decision.reason)


def readable(access: Access, identity: Identity | None) -> list[str]:
    """The named indexes (root excluded) `identity` may read, by name."""
    who, now = who_of(access, identity), time.time()
    return sorted(name for name, index in access.indexes.items()
                  if name != ROOT and decide(Act.READ, who, index, now=now).allowed)


def holder_of(chain: tuple[IndexDef, ...], held: frozenset[str]) -> str | None:
    """The first index of the chain holding a private project (the one whose files its readers see)."""
    return next((index.name for index in chain if index.name in held), None)

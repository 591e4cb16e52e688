"""Permission checks of the HTTP handlers: which index a URL names, who asks, and the pure rule's decision
(proxy/access/rules.py) turned into 401/403. Root's reads are checked at the edge (proxy/web/edge.py)."""

from __future__ import annotations

import time

from aiohttp import web

from proxy.access import ROOT, Act, IndexDef, Member, Who, decide
from proxy.audit import Actor
from proxy.auth import Action, Identity
from proxy.errors import AuthenticationRequired, Forbidden, IndexNotFound
from proxy.keys import ACCESS, AUTH
from proxy.simple.names import NormalizedName


def index_of(request: web.Request) -> IndexDef:
    """The index a URL names (/index/<name>/...), root for the unprefixed URLs. Raises IndexNotFound (404)."""
    name = request.match_info.get("index", ROOT)
    index = request.app[ACCESS].current.indexes.get(name)
    if index is None:
        raise IndexNotFound(f"no index named {name!r}")
    return index


def prefix(index: IndexDef) -> str:
    """The path prefix of an index's URLs: "" for root, "/index/<name>" for the others."""
    return "" if index.name == ROOT else f"/index/{index.name}"


def who(request: web.Request, identity: Identity | None) -> Who:
    if identity is None:
        return Who(None)
    return Who(identity.user, request.app[ACCESS].current.groups_of(identity.user), identity.token)


def actor(request: web.Request, identity: Identity) -> Actor:
    via = f"token:{identity.token.token_id}" if identity.token is not None else identity.via
    return Actor(identity.user, via, request.remote)


def needs_no_reader_check(index: IndexDef) -> bool:
    """Whether reading `index` needs no decision per reader here: root (its reads are checked at the edge, or by
    nobody) or a world-readable index. Every other index decides for each caller in readable_index()."""
    return index.name == ROOT or index.world_readable


async def readable_index(request: web.Request) -> IndexDef:
    """The URL's index, once the caller may read it (401 to ask for credentials, 403 for a user without read).

    Root's reads are checked at the edge as before indexes (no cost when anyone may read)."""
    index = index_of(request)
    if needs_no_reader_check(index):
        return index
    auth = request.app[AUTH]
    identity = await auth.identify(request.headers.get("Authorization"), request.remote)
    decision = decide(Act.READ, who(request, identity), index, now=time.time())
    if not decision.allowed:
        if decision.status == 401:
            raise AuthenticationRequired(decision.reason)
        raise Forbidden(decision.reason)
    return index


async def writer(request: web.Request) -> Identity:
    """The caller of an upload or a management request: anonymous and bad credentials are 403 (like PyPI; 401 is
    for reads, where pip prompts)."""
    auth = request.app[AUTH]
    try:
        identity = await auth.identify(request.headers.get("Authorization"), request.remote)
        auth.check(Action.UPLOAD, identity)
    except AuthenticationRequired as exc:
        raise Forbidden(str(exc)) from None
    assert identity is not None  # check() refuses anonymous writes
    return identity


def allow(
    request: web.Request, act: Act, identity: Identity, index: IndexDef, *, project: NormalizedName | None = None,
    exists: bool = True, members: tuple[Member, ...] = (),
) -> None:
    """Raise Forbidden unless `identity` may do `act` (writes and the audit log: always 403)."""
    decision = decide(act, who(request, identity), index, project=project, exists=exists, members=members,
                      now=time.time())
    if not decision.allowed:
        raise Forbidden(decision.reason)

"""Who is looking and how they reached us: the UI's services on the app, and the Viewer of one request."""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from proxy.access.model import TokenScope
from proxy.access.rules import token_expired
from proxy.auth import Authenticator, Identity
from proxy.backends.records import TokenRecord
from proxy.config import Config
from proxy.keys import AUTH
from proxy.ui.access import is_admin
from proxy.ui.catalog import Catalog
from proxy.ui.readme import ReadmeCache
from proxy.ui.recent import RecentErrors
from proxy.ui.session import CSRF_COOKIE, SESSION_COOKIE, Session, Signer, new_seed
from proxy.ui.sources import MetadataSource
from proxy.ui.urls import Endpoints, Urls, root_from

_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_PREFIX = re.compile(r"(/[A-Za-z0-9._~\-]+)*")


class TokenStore(Protocol):
    """The API tokens of users (the database's token queries; issue 12 types them as TokenStore)."""

    async def add_token(
        self, user: str, token_hash: str, description: str | None = None, scope: TokenScope | None = None
    ) -> int: ...
    async def token_record(self, token_hash: str) -> TokenRecord | None: ...
    async def revoke_token(self, token_id: int) -> bool: ...
    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]: ...


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    version: str  # content hash: URLs carry it, so the file may be cached for good


@dataclass
class UiServices:
    config: Config
    signer: Signer
    readmes: ReadmeCache
    sources: MetadataSource
    catalog: Catalog
    tokens: TokenStore
    errors: RecentErrors
    assets: dict[str, Asset]
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())


UI = web.AppKey("ui", UiServices)


@dataclass(frozen=True, slots=True)
class Viewer:
    """One request's viewer: identity (Basic credentials or a session cookie), links, and the CSRF seed."""

    identity: Identity | None
    session: bool  # signed in with the session cookie (not Basic): sign-out can end it
    admin: bool
    secure: bool  # reached over https (directly, or per a trusted proxy)
    csrf_seed: str
    csrf_is_new: bool  # the seed cookie must be set on the response
    urls: Urls
    endpoints: Endpoints
    path: str  # the request path, to come back to after signing in

    @property
    def user(self) -> str | None:
        return self.identity.user if self.identity is not None else None


def _trusted(request: web.Request, ui: UiServices) -> bool:
    if not ui.trusted or request.remote is None:
        return False
    try:
        address = ipaddress.ip_address(request.remote)
    except ValueError:
        return False
    return any(address in network for network in ui.trusted)


def endpoints_for(request: web.Request, ui: UiServices, index: str | None) -> tuple[Endpoints, bool]:
    """Absolute client URLs, and whether the client reached us over https. X-Forwarded-* count only from
    [ui] trusted_proxies; a Host header that is not a host name is replaced (it is echoed into the page)."""
    scheme, host, prefix = request.scheme, request.host, ""
    if _trusted(request, ui):
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip().lower()
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        prefix = request.headers.get("X-Forwarded-Prefix", "").split(",")[0].strip().rstrip("/")
    scheme = scheme if scheme in {"http", "https"} else "http"
    host = host if _HOST.fullmatch(host) else "localhost"
    prefix = prefix if _PREFIX.fullmatch(prefix) else ""
    return Endpoints(f"{scheme}://{host}{prefix}", index), scheme == "https"


async def identify(request: web.Request, ui: UiServices) -> tuple[Identity | None, bool]:
    """(identity, via the session cookie). Basic credentials win and are checked like the API's (wrong ones raise
    AuthenticationRequired, a flood TooManyRequests); a session cookie must still match a live user or token."""
    auth = request.app[AUTH]
    header = request.headers.get("Authorization")
    scheme = header.split(None, 1)[0].lower() if header and header.strip() else ""
    if scheme == "basic":
        return await auth.identify(header, request.remote), False
    session = ui.signer.read_session(request.cookies.get(SESSION_COOKIE), time.time())
    identity = await _session_identity(session, auth, ui.tokens) if session is not None else None
    return identity, identity is not None


async def _session_identity(session: Session, auth: Authenticator, tokens: TokenStore) -> Identity | None:
    """The identity a session cookie still proves, or None (anonymous). A sign-in with a token carries that token's
    scope, as the API's identity does, and lasts only while the token is neither revoked nor expired."""
    if session.via == "password":
        live = auth.htpasswd is not None and session.user in auth.htpasswd.users
        return Identity(session.user, "password") if live else None
    record = await tokens.token_record(session.token_hash) if session.token_hash is not None else None
    if record is None or record.user != session.user or token_expired(record.scope, time.time()) is not None:
        return None
    return Identity(session.user, "token", record.scope)


def viewer_for(request: web.Request, ui: UiServices, identity: Identity | None, session: bool) -> Viewer:
    index = request.match_info.get("index")
    endpoints, secure = endpoints_for(request, ui, index)
    seed = request.cookies.get(CSRF_COOKIE) or ""
    fresh = not (16 <= len(seed) <= 64)
    return Viewer(
        identity=identity, session=session, admin=is_admin(identity, ui.config.ui), secure=secure,
        csrf_seed=new_seed() if fresh else seed, csrf_is_new=fresh, urls=Urls(root_from(request.path), index),
        endpoints=endpoints, path=request.path_qs,
    )  # fmt: skip

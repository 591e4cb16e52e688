"""The Authenticator: an Authorization header to an Identity (htpasswd users, API tokens), and the permission rule
per action, in one function (permits)."""

from __future__ import annotations

import asyncio
import enum
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

from proxy.access.model import TokenScope
from proxy.access.rules import token_expired
from proxy.auth.credentials import TOKEN_PREFIX, CredentialCache, hash_token, is_basic, parse_basic_auth
from proxy.auth.htpasswd import TOKEN_USER, Htpasswd
from proxy.auth.throttle import FailureLimiter
from proxy.backends.records import TokenRecord
from proxy.errors import AuthenticationRequired, Forbidden

BAD_CREDENTIALS = "Invalid or non-existent authentication information."
READ_NEEDS_AUTH = "Authentication required to read this index."
UPLOAD_NEEDS_AUTH = (
    f"{BAD_CREDENTIALS} Uploads to shadowpi need a user from the htpasswd file or an API token (username __token__)."
)
UPLOADS_NOT_SET_UP = (
    f"{BAD_CREDENTIALS} This shadowpi has no htpasswd file: upload with an API token (username __token__). "
    "Operators: create one with `shadowpi token create --user NAME`, or start shadowpi with --htpasswd FILE."
)


class Action(enum.Enum):
    READ = "read"
    UPLOAD = "upload"
    DELETE = "delete"  # also yank and unyank


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    via: Literal["password", "token"]
    token: TokenScope | None = field(default=None, compare=False)  # what the token used may do (issue 14)


class TokenLookup(Protocol):
    async def token_record(self, token_hash: str) -> TokenRecord | None: ...


def permits(action: Action, identity: Identity | None, *, read_requires_auth: bool) -> bool:
    """The permission rule, in one place: extend it here (for example per-project ownership)."""
    if action is Action.READ and not read_requires_auth:
        return True
    return identity is not None


class Authenticator:
    """Turns an Authorization header into an Identity and decides what that identity may do.

    Password checks (bcrypt, 50-250 ms of CPU each) run in a small thread pool of their own, never in the
    default executor that file I/O uses: a flood of wrong passwords once stalled every download for half a
    minute. `limiter` bounds the failed checks per client address. Close the pool with close().
    """

    def __init__(
        self, htpasswd: Htpasswd | None, tokens: TokenLookup, *, read_requires_auth: bool,
        bcrypt_threads: int = 2, limiter: FailureLimiter | None = None,
    ) -> None:
        self._htpasswd = htpasswd
        self._tokens = tokens
        self.read_requires_auth = read_requires_auth
        self._cache = CredentialCache()
        # One bcrypt run per credential at a time: uv downloads in parallel with the same credentials.
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        self._pool = ThreadPoolExecutor(max_workers=bcrypt_threads, thread_name_prefix="bcrypt")
        self._limiter = limiter or FailureLimiter(max_failures=10, window=60.0)

    def close(self) -> None:
        """Stop the password threads (checks not yet started are cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def htpasswd(self) -> Htpasswd | None:
        return self._htpasswd

    def set_htpasswd(self, htpasswd: Htpasswd | None) -> None:
        """Swap in a reloaded file; cached verifications of the old file are dropped (passwords may have changed)."""
        self._htpasswd = htpasswd
        self._cache.clear()
        self._pending.clear()  # checks still running against the old file settle without caching

    async def identify(self, authorization: str | None, client: str | None = None) -> Identity | None:
        """None when no Basic credentials were sent; raises AuthenticationRequired when they are wrong, and
        TooManyRequests when `client` (the address) failed too often lately and the password needs bcrypt.

        Other schemes (`Bearer …` added by an SSO proxy, say) are not ours to judge and count as anonymous;
        a Basic header we cannot decode is a failed login.
        """
        if not is_basic(authorization):
            return None
        credentials = parse_basic_auth(authorization)
        identity = await self._authenticate(*credentials, client or "unknown") if credentials else None
        if identity is None:
            raise AuthenticationRequired(BAD_CREDENTIALS)
        return identity

    def check(self, action: Action, identity: Identity | None) -> None:
        """Raise AuthenticationRequired (anonymous) or Forbidden (known, not allowed) unless permitted."""
        if permits(action, identity, read_requires_auth=self.read_requires_auth):
            return
        if identity is not None:
            raise Forbidden(f"The user {identity.user!r} isn't allowed to {action.value} here.")
        if action is Action.READ:
            raise AuthenticationRequired(READ_NEEDS_AUTH)
        raise AuthenticationRequired(UPLOADS_NOT_SET_UP if self._htpasswd is None else UPLOAD_NEEDS_AUTH)

    async def authorize(
        self, action: Action, authorization: str | None, client: str | None = None
    ) -> Identity | None:
        """identify() + check() for one request; credentials are not even checked when anonymous is allowed."""
        if permits(action, None, read_requires_auth=self.read_requires_auth):
            return None  # like PyPI's simple API: stale credentials in a pip config must not break open reads
        identity = await self.identify(authorization, client)
        self.check(action, identity)
        return identity

    async def _authenticate(self, user: str, password: str, client: str) -> Identity | None:
        # Tokens are checked by their sha256 in the database: never bcrypt, never throttled.
        if user == TOKEN_USER:
            record = await self._tokens.token_record(hash_token(password)) if password else None
            return _token_identity(record) if record is not None else None
        # A token also works with its owner's name as username (handy in pip URLs: https://alice:spi_…@host/).
        # A password may start with the prefix too, so fall through to htpasswd when the token does not match.
        if password.startswith(TOKEN_PREFIX):
            record = await self._tokens.token_record(hash_token(password))
            if record is not None and record.user == user:
                return _token_identity(record)
        if self._htpasswd is not None and await self._verify_password(self._htpasswd, user, password, client):
            return Identity(user, "password")
        return None

    async def _verify_password(self, htpasswd: Htpasswd, user: str, password: str, client: str) -> bool:
        key = self._cache.key(user, password)
        if self._cache.hit(key):
            return True
        pending = self._pending.get(key)
        if pending is None:  # a new bcrypt run: it takes one of the client's slots (joining a running one does not)
            ticket = self._limiter.reserve(client)
            # bcrypt takes 50-250 ms of CPU: never on the event loop, never in the file I/O threads.
            pending = asyncio.get_running_loop().run_in_executor(self._pool, htpasswd.verify, user, password)
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, htpasswd, done, client, ticket))
        # shield: a cancelled request must not cancel the check other requests are waiting for.
        return await asyncio.shield(pending)

    def _settle(
        self, key: bytes, htpasswd: Htpasswd, done: asyncio.Future[bool], client: str, ticket: float
    ) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        matched = not done.cancelled() and done.exception() is None and done.result()
        if matched:
            self._limiter.forgive(client, ticket)
        # Cache successes only, and only if the file was not reloaded while bcrypt ran.
        if matched and htpasswd is self._htpasswd:
            self._cache.add(key)


def _token_identity(record: TokenRecord) -> Identity:
    """The identity a live token proves; an expired one is a failed login that says so (401, or 403 on uploads)."""
    expired = token_expired(record.scope, time.time())
    if expired is not None:
        raise AuthenticationRequired(expired)
    return Identity(record.user, "token", record.scope)

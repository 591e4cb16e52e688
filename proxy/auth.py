"""Credentials (htpasswd users, API tokens) to an Identity, and the permission rule per action."""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from proxy.errors import AuthenticationRequired, Forbidden
from proxy.htpasswd import TOKEN_USER as TOKEN_USER  # re-exported: defined here before
from proxy.htpasswd import Htpasswd as Htpasswd
from proxy.throttle import FailureLimiter

TOKEN_PREFIX = "spi_"  # noqa: S105 - marks shadowpi tokens (and lets secret scanners find leaked ones)

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


class TokenLookup(Protocol):
    async def token_user(self, token_hash: str) -> str | None: ...


def generate_token() -> str:
    """A new API token; show it once, store only hash_token(token)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token.

    A token carries 256 random bits, so nobody can guess one by trying candidate hashes: a fast, unsalted sha256
    is enough (a slow KDF like bcrypt defends low-entropy passwords) and lets the database look tokens up by hash.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """(user, password) from `Authorization: Basic …`; None for any other scheme and for anything malformed."""
    parts = (header or "").split(None, 1)
    if not parts or parts[0].lower() != "basic":
        return None
    try:
        text = base64.b64decode(parts[1] if len(parts) > 1 else "", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError covers non-ASCII input and UnicodeDecodeError
        return None
    user, colon, password = text.partition(":")  # the password may contain colons, the user may not
    return (user, password) if colon else None


def _is_basic(header: str | None) -> bool:
    parts = (header or "").split(None, 1)
    return bool(parts) and parts[0].lower() == "basic"


# --- verified-credential cache ----------------------------------------------------------------------------


class CredentialCache:
    """Recently verified passwords, so `pip install` of 50 files pays bcrypt once, not 50 times.

    Keys are HMAC-SHA256 digests under a random per-process key: the password is never kept, and a memory dump
    gives no fast hash to brute-force offline. The user's length is part of the message, so (user, password)
    pairs cannot collide by moving characters across the separator. Only successes are stored.
    """

    def __init__(
        self, ttl: float = 300.0, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def key(self, user: str, password: str) -> bytes:
        u, p = user.encode("utf-8", "surrogatepass"), password.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, len(u).to_bytes(4, "big") + u + p, hashlib.sha256).digest()

    def hit(self, key: bytes) -> bool:
        expiry = self._expiry.get(key)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[key]
            return False
        return True

    def add(self, key: bytes) -> None:
        self._expiry[key] = self._clock() + self._ttl
        self._expiry.move_to_end(key)
        while len(self._expiry) > self._max:
            self._expiry.popitem(last=False)  # the oldest verification goes first

    def clear(self) -> None:
        self._expiry.clear()

    def __len__(self) -> int:
        return len(self._expiry)


# --- authenticator ----------------------------------------------------------------------------------------


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
        if not _is_basic(authorization):
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
            owner = await self._tokens.token_user(hash_token(password)) if password else None
            return Identity(owner, "token") if owner is not None else None
        # A token also works with its owner's name as username (handy in pip URLs: https://alice:spi_…@host/).
        # A password may start with the prefix too, so fall through to htpasswd when the token does not match.
        if password.startswith(TOKEN_PREFIX) and await self._tokens.token_user(hash_token(password)) == user:
            return Identity(user, "token")
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

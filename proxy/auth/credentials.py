"""Credentials: HTTP Basic parsing, API tokens (generated, stored as a hash), and the cache of verified passwords."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

TOKEN_PREFIX = "spi_"  # noqa: S105 - marks shadowpi tokens (and lets secret scanners find leaked ones)


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


def is_basic(header: str | None) -> bool:
    parts = (header or "").split(None, 1)
    return bool(parts) and parts[0].lower() == "basic"


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

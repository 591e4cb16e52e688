"""Signed session cookies and CSRF tokens (no I/O, no aiohttp).

Sessions are stateless, HMAC-signed cookies, so every worker process and every replica accepts every other's:
they share the key, a secret kept in the metadata store (MetadataStore.shared_secret). What a cookie cannot say
by itself is checked on each request by the caller: that the user is still in the htpasswd file, and for a
sign-in with a token, that the token is neither revoked nor expired (and what its scope allows).

CSRF: every form carries HMAC(key, seed | user), where the seed is a random, HttpOnly, SameSite=Strict cookie.
Another site can make a browser send the cookie (not with Strict), but it can never read the token to post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Literal

SESSION_COOKIE = "shadowpi_session"
CSRF_COOKIE = "shadowpi_csrf"
CSRF_FIELD = "csrf"
KEY_NAME = "ui-session"  # the metadata store's shared secret that signs sessions and CSRF tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, how they proved it, until when."""

    user: str
    via: Literal["password", "token"]
    expires: float
    token_hash: str | None = None  # a token sign-in lasts only while that token lives, within its scope


class Signer:
    """Signs and verifies session cookies and CSRF tokens with one secret key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: bytes, message: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + message, hashlib.sha256).digest()

    def session_cookie(self, session: Session) -> str:
        payload = {"u": session.user, "v": session.via, "e": int(session.expires), "t": session.token_hash}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._mac(b'session', body.encode()))}"

    def read_session(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie carries, or None when it is absent, forged, damaged or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            valid = hmac.compare_digest(_unb64(mac), self._mac(b"session", body.encode()))
            payload = json.loads(_unb64(body)) if valid else None
        except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
            return None
        if not isinstance(payload, dict):
            return None
        user, via, expires, token_hash = payload.get("u"), payload.get("v"), payload.get("e"), payload.get("t")
        if not isinstance(user, str) or via not in ("password", "token") or not isinstance(expires, int):
            return None
        if expires <= now or not (token_hash is None or isinstance(token_hash, str)):
            return None
        return Session(user, via, float(expires), token_hash)

    def csrf_token(self, seed: str, user: str | None) -> str:
        """The token forms carry for this browser (seed cookie) and user (None: signed out)."""
        return _b64(self._mac(b"csrf", f"{seed}\0{user or ''}".encode()))

    def csrf_valid(self, seed: str | None, user: str | None, token: str | None) -> bool:
        if not seed or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(seed, user).encode())


def new_seed() -> str:
    return secrets.token_urlsafe(24)

"""htpasswd files: bcrypt entries only, validated line by line with errors naming file, line and user."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from pathlib import Path

import bcrypt

from proxy.errors import ConfigError

TOKEN_USER = "__token__"  # noqa: S105 - the username twine and PyPI use for API tokens, not a secret
BCRYPT_MAX_BYTES = 72  # bcrypt only reads this many bytes; bcrypt>=5 raises on longer passwords

# What `htpasswd -B` writes ($2y$) and the other spellings of the same algorithm; cost 04..31.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_DES_CRYPT = re.compile(r"[./0-9A-Za-z]{13}")
_DEFAULT_DUMMY_COST = 10


class Htpasswd:
    """Users from an htpasswd file: bcrypt entries only ($2y$/$2b$/$2a$, as `htpasswd -B` writes).

    Passwords longer than 72 UTF-8 bytes never match: bcrypt ignores everything after byte 72, and bcrypt>=5
    refuses such passwords rather than silently truncating them, so we refuse them too.
    """

    def __init__(self, path: Path, hashes: Mapping[str, bytes]) -> None:
        self.path = path
        self.users: frozenset[str] = frozenset(hashes)
        self._hashes = dict(hashes)
        # Unknown users are checked against this hash (at the file's highest cost) so they take as long as known ones.
        cost = max((int(h[4:6]) for h in self._hashes.values()), default=_DEFAULT_DUMMY_COST)
        self._dummy = bcrypt.hashpw(secrets.token_urlsafe(16).encode(), bcrypt.gensalt(rounds=cost))

    @classmethod
    def load(cls, path: Path) -> Htpasswd:
        """Read and validate the file (synchronously: at startup and on reload). Raises ConfigError."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"auth.htpasswd: cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"auth.htpasswd: cannot read {path}: not UTF-8 text") from None
        hashes: dict[str, bytes] = {}
        first_seen: dict[str, int] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, colon, hashed = line.partition(":")
            where = f"{path}:{lineno}"
            if not colon or not user or not hashed:  # never echo the line: it may hold a plaintext password
                raise ConfigError(f"{where}: malformed line (expected user:hash)")
            _check_entry(where, user, hashed, first_seen.get(user))
            first_seen[user] = lineno
            hashes[user] = hashed.encode("ascii")
        return cls(path, hashes)

    def verify(self, user: str, password: str) -> bool:
        """True if the password is the user's. Blocking and slow (bcrypt): run it in an executor."""
        stored = self._hashes.get(user)
        try:
            secret = password.encode("utf-8")
            if len(secret) > BCRYPT_MAX_BYTES:  # see the class docstring; the length is no secret
                return False
            matched = bcrypt.checkpw(secret, stored if stored is not None else self._dummy)
        except ValueError:  # unencodable password or a hash bcrypt refuses: a non-match, never a crash
            return False
        return matched and stored is not None

    def __repr__(self) -> str:  # never the hashes: they are offline-crackable
        return f"Htpasswd(path={str(self.path)!r}, users={len(self.users)})"


def _check_entry(where: str, user: str, hashed: str, seen_at: int | None) -> None:
    if seen_at is not None:
        raise ConfigError(f"{where}: user {user!r} appears twice (first on line {seen_at})")
    if user == TOKEN_USER:
        raise ConfigError(f"{where}: user {TOKEN_USER!r} is reserved for API tokens")
    if _BCRYPT_HASH.fullmatch(hashed):
        return
    if hashed.startswith("$2"):
        raise ConfigError(f"{where}: user {user!r} has a malformed bcrypt hash; recreate it with `htpasswd -B`")
    scheme = _weak_scheme(hashed)
    kind = "a weak" if scheme else "an unsupported"
    label = f" ({scheme})" if scheme else ""
    raise ConfigError(f"{where}: user {user!r} uses {kind} password scheme{label}; recreate it with `htpasswd -B`")


def _weak_scheme(hashed: str) -> str | None:
    """Name the weak scheme of a non-bcrypt entry; None for schemes we merely do not support."""
    for prefix, name in (("$apr1$", "$apr1$ MD5"), ("{SHA}", "{SHA} SHA-1"), ("$1$", "$1$ MD5-crypt")):
        if hashed.startswith(prefix):
            return name
    if hashed.startswith("$"):
        return None  # $5$/$6$ SHA-crypt, argon2, …: not weak, but only bcrypt is accepted
    return "crypt DES" if _DES_CRYPT.fullmatch(hashed) else "plaintext"

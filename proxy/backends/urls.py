"""`[database] url` and `[storage] url`: parsed and validated into typed locations (pure: no I/O).

Only the embedded backends exist so far:
- database: `sqlite:` (the data dir's database file) or `sqlite:///absolute/path.sqlite3`;
- storage: `file:` (the data dir) or `file:///absolute/dir`.
Any other scheme is refused with one line naming the key and the supported schemes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from proxy.errors import ConfigError

__all__ = ["DATABASE_SCHEMES", "STORAGE_SCHEMES", "FileURL", "SqliteURL", "parse_database_url", "parse_storage_url"]

DATABASE_SCHEMES = ("sqlite",)
STORAGE_SCHEMES = ("file",)


@dataclass(frozen=True, slots=True)
class SqliteURL:
    """A SQLite database file; `path` None means the data dir's own."""

    path: PurePosixPath | None = None


@dataclass(frozen=True, slots=True)
class FileURL:
    """A local directory for blobs (and the spools committed into them); `root` None means the data dir."""

    root: PurePosixPath | None = None


def parse_database_url(key: str, text: str) -> SqliteURL:
    """`database.url` -> where the database lives. Raises ConfigError naming `key`."""
    return SqliteURL(_local_path(key, text, DATABASE_SCHEMES, "sqlite:///var/lib/shadowpi/shadowpi.sqlite3"))


def parse_storage_url(key: str, text: str) -> FileURL:
    """`storage.url` -> where blobs live. Raises ConfigError naming `key`."""
    return FileURL(_local_path(key, text, STORAGE_SCHEMES, "file:///var/lib/shadowpi"))


def _local_path(key: str, text: str, schemes: tuple[str, ...], example: str) -> PurePosixPath | None:
    """The absolute path of `scheme:///path`, or None for a bare `scheme:`."""
    scheme, colon, _rest = text.partition(":")
    if not colon or not scheme:
        raise ConfigError(f"{key}: {text!r} is not a URL (expected {schemes[0]}: or {example})")
    if scheme.lower() not in schemes:
        raise ConfigError(f"{key}: unsupported scheme {scheme!r} (supported: {', '.join(schemes)})")
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise ConfigError(f"{key}: {text!r} takes no query or fragment (expected {example})")
    if text.lower() == f"{parts.scheme}:":
        return None
    if parts.netloc or not text[len(parts.scheme) + 1 :].startswith("///"):
        raise ConfigError(f"{key}: {text!r} must be {parts.scheme}: or an absolute path such as {example}")
    path = PurePosixPath(unquote(parts.path))
    if ".." in path.parts or path == PurePosixPath("/"):
        raise ConfigError(f"{key}: {text!r} must name a path without '..' (such as {example})")
    return path

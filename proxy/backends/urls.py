"""`[database] url` and `[storage] url`: parsed and validated into typed locations (pure: no I/O).

- database: `sqlite:` (the data dir's database file) or `sqlite:///absolute/path.sqlite3`; or PostgreSQL,
  `postgresql://user:password@host:port/dbname` (also `postgres://`; libpq-style query parameters such as
  `?sslmode=require` pass through to the driver);
- storage: `file:` (the data dir), `file:///absolute/dir`, or `s3://bucket/optional/prefix` (an S3-compatible
  object store; endpoint, region and credentials come from [storage] and the standard AWS settings, never the URL).
Anything else is refused with one line naming the key and the supported schemes. A password is never repeated in
a message: URLs are shown with it masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from proxy.errors import ConfigError

__all__ = [
    "DATABASE_SCHEMES",
    "S3URL",
    "STORAGE_SCHEMES",
    "FileURL",
    "PostgresURL",
    "SqliteURL",
    "mask_password",
    "parse_database_url",
    "parse_storage_url",
]

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
STORAGE_SCHEMES = ("file", "s3")
# S3's bucket naming rules (lower case, digits, dots, hyphens; 3-63 characters), which S3-compatible stores share.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()+-]+")  # S3's "safe" key characters (plus '+')
_POSTGRES_EXAMPLE = "postgresql://user:password@host:5432/dbname"
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SqliteURL:
    """A SQLite database file; `path` None means the data dir's own."""

    path: PurePosixPath | None = None


@dataclass(frozen=True, slots=True)
class PostgresURL:
    """A PostgreSQL database. `dsn` is the URL as given (for the driver: it may hold the password, so it is kept
    out of repr); `masked` is the same URL with the password replaced by ***, for messages and logs."""

    dsn: str = field(repr=False)
    masked: str
    database: str


@dataclass(frozen=True, slots=True)
class FileURL:
    """A local directory for blobs (and the spools committed into them); `root` None means the data dir."""

    root: PurePosixPath | None = None


@dataclass(frozen=True, slots=True)
class S3URL:
    """A bucket of an S3-compatible store, and the key prefix ("" or "a/b", no slashes around) blobs go under."""

    bucket: str
    prefix: str = ""


def parse_database_url(key: str, text: str) -> SqliteURL | PostgresURL:
    """`database.url` -> where the database lives. Raises ConfigError naming `key`."""
    scheme = _scheme(key, text, DATABASE_SCHEMES, "sqlite: or " + _POSTGRES_EXAMPLE)
    if scheme in {"postgresql", "postgres"}:
        return _postgres(key, text)
    return SqliteURL(_local_path(key, text, "sqlite:///var/lib/shadowpi/shadowpi.sqlite3"))


def parse_storage_url(key: str, text: str) -> FileURL | S3URL:
    """`storage.url` -> where blobs live. Raises ConfigError naming `key`."""
    if text[:5].lower() == "s3://":
        return _s3(key, text)
    _scheme(key, text, STORAGE_SCHEMES, "file: or file:///var/lib/shadowpi")
    return FileURL(_local_path(key, text, "file:///var/lib/shadowpi"))


def _s3(key: str, text: str) -> S3URL:
    example = "s3://my-bucket/shadowpi"
    rest = text[5:]
    location, _, _ = rest.partition("/")
    if "@" in location:  # never echoed: it may hold a secret key
        raise ConfigError(
            f"{key}: credentials do not belong in the URL (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "~/.aws/credentials or a profile)"
        )
    if any(c in rest for c in "?#"):
        raise ConfigError(f"{key}: {text!r} takes no query or fragment (expected {example})")
    bucket, _, prefix = rest.partition("/")
    if ":" in bucket:
        raise ConfigError(f"{key}: {text!r} names a port; the endpoint goes in storage.endpoint_url")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"{key}: {bucket!r} is not a bucket name (3-63 lower-case letters, digits, dots and hyphens; "
            f"expected {example})"
        )
    prefix = prefix.strip("/")
    segments = prefix.split("/") if prefix else []
    if any(s in {".", ".."} or not _PREFIX_SEGMENT.fullmatch(s) for s in segments):
        raise ConfigError(
            f"{key}: the prefix {prefix!r} must be path segments of letters, digits and !_.*'()+- "
            f"(no empty, '.' or '..' segments; expected {example})"
        )
    return S3URL(bucket, prefix)


def mask_password(text: str) -> str:
    """`text` with the password of its userinfo and of a `password=` query parameter replaced by ***."""
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostport}{slash}{tail}"


def _scheme(key: str, text: str, schemes: tuple[str, ...], expected: str) -> str:
    scheme, colon, _rest = text.partition(":")
    if not colon or not scheme:
        raise ConfigError(f"{key}: {mask_password(text)!r} is not a URL (expected {expected})")
    if scheme.lower() not in schemes:
        raise ConfigError(f"{key}: unsupported scheme {scheme!r} (supported: {', '.join(schemes)})")
    return scheme.lower()


def _postgres(key: str, text: str) -> PostgresURL:
    masked = mask_password(text)
    try:
        parts = urlsplit(text)
        _ = parts.port  # validates it: not a number, out of range
    except ValueError:
        raise ConfigError(f"{key}: {masked!r} is not a valid URL (expected {_POSTGRES_EXAMPLE})") from None
    if not text[len(parts.scheme) :].startswith("://"):
        raise ConfigError(f"{key}: {masked!r} must be {parts.scheme}://host/dbname (such as {_POSTGRES_EXAMPLE})")
    database = unquote(parts.path.removeprefix("/"))
    if not database or "/" in database:
        raise ConfigError(f"{key}: {masked!r} names no database (expected {_POSTGRES_EXAMPLE})")
    if parts.fragment:
        raise ConfigError(f"{key}: {masked!r} takes no fragment (expected {_POSTGRES_EXAMPLE})")
    return PostgresURL(dsn=text, masked=masked, database=database)


def _local_path(key: str, text: str, example: str) -> PurePosixPath | None:
    """The absolute path of `scheme:///path`, or None for a bare `scheme:`."""
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

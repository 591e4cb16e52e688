"""Project names (PEP 503 normalization) and distribution filenames, validated once at the edge."""

from __future__ import annotations

import functools
import re

from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from proxy.errors import InvalidFilename, InvalidProjectName

__all__ = [
    "MAX_FILENAME_BYTES",
    "NormalizedName",
    "filename_length_error",
    "is_canonical",
    "parse_dist_filename",
    "parse_project_name",
    "version_of_filename",
]

# Filename extensions pip and uv install from; PEP 527 trimmed the sdist list to .tar.gz and .zip.
DIST_EXTENSIONS = (".whl", ".tar.gz", ".zip")
# A filename must fit in one path component (255 bytes on every common file system) with PEP 658's ".metadata"
# appended: `export --static` stores both, and so do pip caches and PyPI's own upload code.
MAX_FILENAME_BYTES = 255 - len(".metadata")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_project_name(raw: str) -> NormalizedName:
    """Normalize an untrusted project name (URL segment, form field).

    Raises InvalidProjectName for anything that is not a valid name (slashes, '..', NUL, control characters).
    """
    if _is_canonical_cached(raw):  # every simple-API request parses a name: the common case costs a lookup
        return NormalizedName(raw)
    try:
        # validate=True matters: without it canonicalize_name("x\n") passes the newline through.
        return canonicalize_name(raw, validate=True)
    except InvalidName:
        raise InvalidProjectName(f"{_printable(raw)!r} is not a valid project name") from None


def is_canonical(raw: str) -> bool:
    """True when the name is already in PEP 503 normalized form (and valid)."""
    return _is_canonical_cached(raw)


@functools.lru_cache(maxsize=8192)
def _is_canonical_cached(raw: str) -> bool:
    try:
        return canonicalize_name(raw, validate=True) == raw
    except InvalidName:
        return False


def check_safe_filename(filename: str) -> None:
    """Reject filenames that could escape a directory or corrupt a listing (warehouse's rules)."""
    if not filename or _CONTROL.search(filename) or not filename.isprintable():
        raise InvalidFilename("Cannot upload a file with non-printable characters (ordinals 0-31) in the name.")
    if "/" in filename or "\\" in filename:
        raise InvalidFilename("Cannot upload a file with '/' or '\\' in the name.")
    if filename in {".", ".."} or filename.startswith("."):
        raise InvalidFilename(f"Invalid filename: {filename!r}")


def filename_length_error(filename: str) -> str | None:
    """Why a filename is too long to store as a file (with its ".metadata" sibling), or None when it fits."""
    size = len(filename.encode("utf-8", "surrogateescape"))
    if size <= MAX_FILENAME_BYTES:
        return None
    return f"{size} bytes; at most {MAX_FILENAME_BYTES} fit in a file name beside '.metadata'"


def parse_dist_filename(filename: str) -> tuple[NormalizedName, Version]:
    """Project name and version encoded in a wheel or sdist filename.

    Raises InvalidFilename when the filename is unsafe or not a wheel/sdist filename.
    """
    check_safe_filename(filename)
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise InvalidFilename(str(exc)) from None
    raise InvalidFilename(
        "Invalid file extension: Use .tar.gz, .whl or .zip extension. See "
        "https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information"
    )


def version_of_filename(filename: str) -> str | None:
    """The version string of a distribution filename, or None for names that do not parse (legacy files)."""
    try:
        return str(parse_dist_filename(filename)[1])
    except InvalidFilename:
        return None


def _printable(raw: str) -> str:
    return _CONTROL.sub("?", raw)[:100]

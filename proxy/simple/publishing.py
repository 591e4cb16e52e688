"""Validate a legacy-API (twine) upload: form fields, filename, digests and metadata, with PyPI's messages."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from proxy.errors import InvalidFilename, InvalidProjectName, InvalidUpload
from proxy.simple.names import (
    DIST_EXTENSIONS,
    NormalizedName,
    check_safe_filename,
    filename_length_error,
    parse_project_name,
)

__all__ = [
    "FileType",
    "PublishRequest",
    "check_digests",
    "check_filename",
    "check_metadata_matches",
    "display_value",
    "parse_publish_form",
]

FileType = Literal["sdist", "bdist_wheel"]

_SEE_SPEC = "See https://packaging.python.org/specifications/core-metadata for more information."
_NAME_RULE = "Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'."
_BAD_EXTENSION = (
    "Invalid file extension: Use .tar.gz, .whl or .zip extension. See "
    "https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information"
)
# PEP 527: sdists are .tar.gz or .zip, binary uploads are wheels only (warehouse's _filetype_extension_mapping).
_EXTENSIONS: Mapping[str, tuple[str, ...]] = {"sdist": (".tar.gz", ".zip"), "bdist_wheel": (".whl",)}
# form field -> (key in check_digests' `computed`, hex length, name in warehouse's message)
_DIGESTS: Mapping[str, tuple[str, int, str]] = {
    "blake2_256_digest": ("blake2_256", 64, "BLAKE2"),
    "md5_digest": ("md5", 32, "MD5"),
    "sha256_digest": ("sha256", 64, "SHA256"),
}
_HEX = re.compile(r"[0-9a-fA-F]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_Form = Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """The validated fields of an upload form that shadowpi uses; everything else twine sends is ignored."""

    name: NormalizedName
    raw_name: str
    version: Version  # PEP 440; local versions are allowed on a private index
    filetype: FileType
    pyversion: str  # "source" for sdists
    sha256_digest: str | None  # lower-case hex
    blake2_256_digest: str | None
    md5_digest: str | None
    requires_python: str | None  # as sent; the archive's metadata is authoritative
    summary: str | None


def display_value(value: str, limit: int = 60) -> str:
    """A client-supplied value made safe for a one-line message: control characters become '?'.

    Values longer than `limit` keep only both ends (warehouse shows 30 + "..." + 30 characters).
    """
    shown = _CONTROL.sub("?", value)
    half = limit // 2
    return shown if len(shown) <= limit else f"{shown[:half]}...{shown[-half:]}"


def parse_publish_form(fields: Mapping[str, Sequence[str]]) -> PublishRequest:
    """Validate twine's form fields (repeated keys as lists) in warehouse's order.

    Raises InvalidUpload with warehouse's message for the first problem found.
    """
    form = _sanitize(fields)
    _check_action(form)
    raw_name = _one(form, "name")
    name = _parse_name(raw_name)
    _check_field_formats(form)
    filetype: FileType = "sdist" if _one(form, "filetype") == "sdist" else "bdist_wheel"
    pyversion = _check_pyversion(filetype, _one(form, "pyversion"))
    digests = {field: (value.lower() if (value := _one(form, field)) else None) for field in _DIGESTS}
    if not any(digests.values()):
        raise InvalidUpload("Error: Include at least one message digest.")
    return PublishRequest(
        name=name,
        raw_name=raw_name or "",
        # warehouse validates the metadata fields (version among them) after the upload form's fields.
        version=_parse_version(_one(form, "version")),
        filetype=filetype,
        pyversion=pyversion,
        sha256_digest=digests["sha256_digest"],
        blake2_256_digest=digests["blake2_256_digest"],
        md5_digest=digests["md5_digest"],
        requires_python=_one(form, "requires_python"),
        summary=_one(form, "summary"),
    )


def _sanitize(fields: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Reject NUL anywhere; drop "UNKNOWN" values, which old distutils sent for unset fields (warehouse)."""
    form: dict[str, list[str]] = {}
    for key, values in fields.items():
        # A bare str is a Sequence[str] too: treat it as one value, never as its characters.
        items = [values] if isinstance(values, str) else list(values)
        if "\x00" in key or any("\x00" in value for value in items):
            raise InvalidUpload(f"Invalid value for {display_value(key)}. Error: NUL characters are not allowed.")
        form[key] = [value for value in items if value.strip() != "UNKNOWN"]
    return form


def _one(form: _Form, key: str) -> str | None:
    """The single value of a field; missing or empty is None. Repeats are refused so no two readers disagree."""
    values = form.get(key, ())
    if len(values) > 1:
        raise InvalidUpload(f"Invalid value for {key}. Error: Use a single value.")
    return values[0] if values and values[0] else None


def _check_action(form: _Form) -> None:
    action = _one(form, ":action")
    if action is None:
        raise InvalidUpload("Missing ':action' field.")
    if action != "file_upload":
        raise InvalidUpload("Unknown action.")
    # warehouse treats a missing protocol_version as "1"; twine always sends it.
    if (_one(form, "protocol_version") or "1") != "1":
        raise InvalidUpload("Unknown protocol version.")


def _parse_name(raw: str | None) -> NormalizedName:
    if raw is None:
        error = "This field is required."
    else:
        try:
            return parse_project_name(raw)
        except InvalidProjectName:
            error = _NAME_RULE
    raise InvalidUpload(f"'{display_value(raw or '')}' is an invalid value for Name. Error: {error} {_SEE_SPEC}")


def _check_field_formats(form: _Form) -> None:
    """The per-field checks of warehouse's UploadForm; like warehouse, report the first field in sorted order."""
    checks: dict[str, Callable[[str | None], str | None]] = {"filetype": _filetype_error}
    checks.update({field: _digest_checker(field) for field in _DIGESTS})
    for field in sorted(checks):
        if (error := checks[field](_one(form, field))) is not None:
            raise InvalidUpload(f"Invalid value for {field}. Error: {error}")


def _filetype_error(value: str | None) -> str | None:
    if value is None:
        return "This field is required."
    return None if value in _EXTENSIONS else "Use a known file type."


def _digest_checker(field: str) -> Callable[[str | None], str | None]:
    _key, length, label = _DIGESTS[field]

    def check(value: str | None) -> str | None:
        if value is None or (len(value) == length and _HEX.fullmatch(value)):
            return None
        return f"Use a valid, hex-encoded, {label} message digest."

    return check


def _check_pyversion(filetype: FileType, pyversion: str | None) -> str:
    if filetype == "bdist_wheel" and pyversion is None:
        raise InvalidUpload(
            "Invalid value for pyversion. Error: Python version is required for binary distribution uploads."
        )
    if filetype == "sdist" and pyversion not in {None, "source"}:
        raise InvalidUpload("Invalid value for pyversion. Error: Use 'source' as Python version for an sdist.")
    return pyversion or "source"


def _parse_version(raw: str | None) -> Version:
    # Messages are packaging.metadata's (which warehouse uses); unlike PyPI, local versions are accepted.
    if raw is None:
        raise InvalidUpload(f"'version' is a required field. {_SEE_SPEC}")
    try:
        return Version(raw)
    except InvalidVersion:
        raise InvalidUpload(f"'{display_value(raw)}' is invalid for 'version'. {_SEE_SPEC}") from None


def check_filename(request: PublishRequest, filename: str) -> None:
    """The uploaded file's name is safe, has the filetype's extension, and names the form's project and version.

    Raises InvalidUpload with warehouse's messages.
    """
    try:
        check_safe_filename(filename)
    except InvalidFilename as exc:
        raise InvalidUpload(str(exc)) from None
    if (too_long := filename_length_error(filename)) is not None:  # PyPI: "Filename is too long: '<f>'"
        raise InvalidUpload(f"Filename is too long: '{display_value(filename)}' ({too_long}).")
    extension = next((ext for ext in DIST_EXTENSIONS if filename.endswith(ext)), None)
    if extension is None:
        raise InvalidUpload(_BAD_EXTENSION)
    if extension not in _EXTENSIONS[request.filetype]:
        raise InvalidUpload(
            f"Invalid file extension: Extension {extension} is invalid for filetype {request.filetype}. "
            "See https://www.python.org/dev/peps/pep-0527 for more information."
        )
    if request.filetype == "bdist_wheel":
        version = _check_wheel_name(request, filename)
    else:
        version = _check_sdist_name(request, filename)
    if version != request.version:
        raise InvalidUpload(f"Version in filename should be '{request.version}' not '{version}'.")
    _check_normalized_spelling(request, filename, extension)


def _check_normalized_spelling(request: PublishRequest, filename: str, extension: str) -> None:
    """Name and version must be written in normalized form (wheel spec, PEP 625), as PyPI requires.

    Otherwise `Hello_World-1.0...` and `hello_world-1.0.0...` could add other bytes beside an existing file.
    """
    stem = filename.removesuffix(extension)
    if extension == ".whl":
        name_part, version_part = stem.split("-")[:2]
    else:
        name_part, _, version_part = stem.rpartition("-")
    expected_name = request.name.replace("-", "_")
    if name_part != expected_name:
        raise InvalidUpload(
            f"Filename '{filename}' should contain the normalized project name '{expected_name}', not '{name_part}'."
        )
    if version_part != str(request.version):
        raise InvalidUpload(f"Version in filename should be '{request.version}' not '{version_part}'.")


def release_key(filename: str) -> tuple[str, ...]:
    """What makes two files of one release clash: build tag + wheel tags, or "sdist" (one sdist per release).

    Build tags are how a fixed wheel is re-published for the same release and tags, so they keep files apart.
    """
    if filename.endswith(".whl"):
        _name, _version, build, tags = parse_wheel_filename(filename)
        return (repr(build), *sorted(str(t) for t in tags))
    return ("sdist",)


def _check_wheel_name(request: PublishRequest, filename: str) -> Version:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        # packaging's text mostly starts "Invalid wheel filename (...)"; do not say it twice.
        text = str(exc)
        raise InvalidUpload(
            text if text.startswith("Invalid wheel filename") else f"Invalid wheel filename: {text}"
        ) from None
    if name != request.name:
        raise InvalidUpload(
            f"Filename '{filename}' should contain the normalized project name "
            f"'{request.name.replace('-', '_')}', not '{filename.split('-', 1)[0]}'."
        )
    return version


def _check_sdist_name(request: PublishRequest, filename: str) -> Version:
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename:
        raise InvalidUpload(f"Invalid source distribution filename: {filename}") from None
    if name != request.name:
        # PEP 625: the sdist filename starts with the normalized name, '-' written as '_'.
        raise InvalidUpload(f"Start filename for '{request.raw_name}' with '{request.name.replace('-', '_')}'.")
    return version


def check_digests(request: PublishRequest, computed: Mapping[str, str]) -> None:
    """Every digest the client sent matches the received bytes; `computed` has hex sha256, blake2_256 and md5.

    Raises InvalidUpload on a mismatch (constant-time comparison); KeyError if `computed` lacks a supplied one.
    """
    supplied = {"sha256": request.sha256_digest, "blake2_256": request.blake2_256_digest, "md5": request.md5_digest}
    for algorithm, digest in supplied.items():
        if digest is not None and not hmac.compare_digest(digest, computed[algorithm].lower()):
            raise InvalidUpload("The digest supplied does not match a digest calculated from the uploaded file.")


def check_metadata_matches(request: PublishRequest, meta_name: NormalizedName, meta_version: Version) -> None:
    """The archive's own metadata names the same project and version as the form.

    Raises InvalidUpload otherwise; the index must never list a file under a name its metadata denies.
    """
    if canonicalize_name(meta_name) != request.name:
        raise InvalidUpload(f"Metadata name '{meta_name}' does not match the form's name '{request.name}'.")
    if meta_version != request.version:
        raise InvalidUpload(f"Metadata version '{meta_version}' does not match the form's version '{request.version}'.")

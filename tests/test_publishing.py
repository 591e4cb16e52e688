"""Publishing rules (proxy.simple.publishing): twine's form fields, filenames, digests and metadata, PyPI's messages."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest
from packaging.version import Version

from proxy.errors import InvalidUpload
from proxy.simple.names import NormalizedName
from proxy.simple.publishing import (
    PublishRequest,
    check_digests,
    check_filename,
    check_metadata_matches,
    parse_publish_form,
)

SHA256 = "9c7ea4a3c6a86e49a72cb04321c28c2afc2445246d2f1321fe9594206e74476d"
BLAKE2 = "dd319fe7bb7211ad80258ed63e4e142ca04f11f733c553d822031318f2157292"
SEE = "See https://packaging.python.org/specifications/core-metadata for more information."
NAME_RULE = "Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'."
PEP_527 = (
    "Invalid file extension: Use .tar.gz, .whl or .zip extension. See "
    "https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information"
)

# What twine 6 sends for a wheel (twine/package.py metadata_dictionary + twine/repository.py _upload), in order.
WHEEL_FORM: dict[str, list[str]] = {
    "summary": ["test artifact"],
    "version": ["1.0"],
    "name": ["Acme-Utils"],
    "requires_python": [">=3.8"],
    "metadata_version": ["2.1"],
    "requires_dist": ["requests>=2", "idna"],
    "pyversion": ["py3"],
    "filetype": ["bdist_wheel"],
    "sha256_digest": [SHA256],
    "blake2_256_digest": [BLAKE2],
    ":action": ["file_upload"],
    "protocol_version": ["1"],
}
SDIST_FORM = {**WHEEL_FORM, "pyversion": ["source"], "filetype": ["sdist"]}

WHEEL_REQUEST = PublishRequest(
    name=NormalizedName("acme-utils"),
    raw_name="Acme-Utils",
    version=Version("1.0"),
    filetype="bdist_wheel",
    pyversion="py3",
    sha256_digest=SHA256,
    blake2_256_digest=BLAKE2,
    md5_digest=None,
    requires_python=">=3.8",
    summary="test artifact",
)


def form(base: Mapping[str, list[str]], changes: Mapping[str, list[str] | None]) -> dict[str, list[str]]:
    """A copy of `base` with fields replaced; None removes a field."""
    result = dict(base)
    for key, values in changes.items():
        if values is None:
            result.pop(key, None)
        else:
            result[key] = values
    return result


def request(**changes: Any) -> PublishRequest:
    """WHEEL_REQUEST with some fields replaced."""
    return replace(WHEEL_REQUEST, **changes)


# --- parse_publish_form: happy paths ---


def test_twine_wheel_form_parses() -> None:
    """The fields twine sends for a wheel become an PublishRequest; unused metadata fields are ignored."""
    assert parse_publish_form(WHEEL_FORM) == WHEEL_REQUEST


def test_twine_sdist_form_parses() -> None:
    """An sdist form with pyversion 'source' parses as an sdist request."""
    assert parse_publish_form(SDIST_FORM) == request(filetype="sdist", pyversion="source")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"version": ["1.0+local.7"]}, request(version=Version("1.0+local.7"))),
        ({"version": ["v1.0.0"]}, request(version=Version("1.0"))),
        ({"name": ["Acme_Utils"]}, request(raw_name="Acme_Utils")),
        ({"name": ["acme.utils"]}, request(raw_name="acme.utils")),
        ({"summary": ["UNKNOWN"], "requires_python": [" UNKNOWN "]}, request(summary=None, requires_python=None)),
        ({"home_page": ["UNKNOWN"], "description": ["UNKNOWN"]}, WHEEL_REQUEST),
        ({"sha256_digest": [SHA256.upper()]}, WHEEL_REQUEST),
        ({"blake2_256_digest": None}, request(blake2_256_digest=None)),
        ({"blake2_256_digest": ["UNKNOWN"]}, request(blake2_256_digest=None)),
        ({"sha256_digest": None, "md5_digest": ["0" * 32]}, request(sha256_digest=None, md5_digest="0" * 32)),
        ({"attestations": ['[{"version": 1}]'], "comment": ["hi"], "gpg_signature": ["x"]}, WHEEL_REQUEST),
        ({"protocol_version": None}, WHEEL_REQUEST),
        ({"classifiers": ["A :: B", "C :: D"], "platform": ["any"]}, WHEEL_REQUEST),
    ],
    ids=[
        "local-version",
        "version-normalized",
        "name-underscore",
        "name-dot",
        "unknown-dropped",
        "unknown-unused-fields",
        "digest-lowercased",
        "sha256-only",
        "blake2-unknown",
        "md5-only",
        "attestations-ignored",
        "protocol-version-defaults-to-1",
        "repeated-list-fields",
    ],
)
def test_form_variants_parse(changes: Mapping[str, list[str] | None], expected: PublishRequest) -> None:
    """Local versions, UNKNOWN values, digest subsets and extra fields are accepted and normalized."""
    assert parse_publish_form(form(WHEEL_FORM, changes)) == expected


def test_sdist_without_pyversion_defaults_to_source() -> None:
    """An sdist form without pyversion gets 'source', as warehouse fills it in."""
    assert parse_publish_form(form(SDIST_FORM, {"pyversion": None})).pyversion == "source"


def test_plain_string_values_count_as_one_value() -> None:
    """A mapping of plain strings is read as single values, not as sequences of characters."""
    fields: dict[str, Sequence[str]] = {key: values[0] for key, values in WHEEL_FORM.items()}
    assert parse_publish_form(fields) == WHEEL_REQUEST


# --- parse_publish_form: rejections ---


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({":action": None}, "Missing ':action' field."),
        ({":action": ["submit"]}, "Unknown action."),
        ({"protocol_version": ["2"]}, "Unknown protocol version."),
        ({"name": None}, f"'' is an invalid value for Name. Error: This field is required. {SEE}"),
        ({"name": [""]}, f"'' is an invalid value for Name. Error: This field is required. {SEE}"),
        ({"name": ["UNKNOWN"]}, f"'' is an invalid value for Name. Error: This field is required. {SEE}"),
        ({"name": ["-acme"]}, f"'-acme' is an invalid value for Name. Error: {NAME_RULE} {SEE}"),
        ({"name": ["../etc"]}, f"'../etc' is an invalid value for Name. Error: {NAME_RULE} {SEE}"),
        ({"name": ["acme\nutils"]}, f"'acme?utils' is an invalid value for Name. Error: {NAME_RULE} {SEE}"),
        ({"name": ["acme\n"]}, f"'acme?' is an invalid value for Name. Error: {NAME_RULE} {SEE}"),
        (
            {"name": ["a b" * 30]},
            f"'{('a b' * 10)}...{('a b' * 10)}' is an invalid value for Name. Error: {NAME_RULE} {SEE}",
        ),
        ({"version": None}, f"'version' is a required field. {SEE}"),
        ({"version": ["UNKNOWN"]}, f"'version' is a required field. {SEE}"),
        ({"version": ["1.0.x"]}, f"'1.0.x' is invalid for 'version'. {SEE}"),
        ({"version": ["1.0\r\nX-Evil: 1"]}, f"'1.0??X-Evil: 1' is invalid for 'version'. {SEE}"),
        ({"filetype": None}, "Invalid value for filetype. Error: This field is required."),
        ({"filetype": ["bdist_egg"]}, "Invalid value for filetype. Error: Use a known file type."),
        (
            {"pyversion": None},
            "Invalid value for pyversion. Error: Python version is required for binary distribution uploads.",
        ),
        (
            {"pyversion": [""]},
            "Invalid value for pyversion. Error: Python version is required for binary distribution uploads.",
        ),
        (
            {"filetype": ["sdist"], "pyversion": ["py3"]},
            "Invalid value for pyversion. Error: Use 'source' as Python version for an sdist.",
        ),
        ({"sha256_digest": None, "blake2_256_digest": None}, "Error: Include at least one message digest."),
        ({"sha256_digest": [""], "blake2_256_digest": ["UNKNOWN"]}, "Error: Include at least one message digest."),
        (
            {"sha256_digest": ["abc"]},
            "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest.",
        ),
        (
            {"sha256_digest": ["g" * 64]},
            "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest.",
        ),
        (
            {"sha256_digest": [SHA256 + "\n"]},
            "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest.",
        ),
        (
            {"blake2_256_digest": ["0" * 32]},
            "Invalid value for blake2_256_digest. Error: Use a valid, hex-encoded, BLAKE2 message digest.",
        ),
        (
            {"md5_digest": ["z" * 32]},
            "Invalid value for md5_digest. Error: Use a valid, hex-encoded, MD5 message digest.",
        ),
        ({"name": ["acme\x00"]}, "Invalid value for name. Error: NUL characters are not allowed."),
        ({"description": ["a\x00b"]}, "Invalid value for description. Error: NUL characters are not allowed."),
        ({"version": ["1.0", "2.0"]}, "Invalid value for version. Error: Use a single value."),
        ({"name": ["acme", "evil"]}, "Invalid value for name. Error: Use a single value."),
    ],
)
def test_invalid_form_is_rejected_with_warehouse_message(changes: Mapping[str, list[str] | None], message: str) -> None:
    """Each invalid field is rejected with the exact text warehouse sends (twine prints it)."""
    with pytest.raises(InvalidUpload) as excinfo:
        parse_publish_form(form(WHEEL_FORM, changes))
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("changes", "reported"),
    [
        ({":action": ["submit"], "name": ["-x"]}, "Unknown action."),
        ({"protocol_version": ["2"], "name": ["-x"]}, "Unknown protocol version."),
        ({"name": ["-x"], "filetype": ["egg"]}, "is an invalid value for Name"),
        ({"blake2_256_digest": ["0"], "filetype": ["egg"]}, "Invalid value for blake2_256_digest"),
        ({"filetype": ["egg"], "sha256_digest": ["0"]}, "Invalid value for filetype"),
        ({"sha256_digest": ["0"], "pyversion": None}, "Invalid value for sha256_digest"),
        ({"pyversion": None, "sha256_digest": None, "blake2_256_digest": None}, "Invalid value for pyversion"),
        ({"sha256_digest": None, "blake2_256_digest": None, "version": ["x"]}, "Include at least one message digest"),
    ],
)
def test_first_error_in_warehouse_order(changes: Mapping[str, list[str] | None], reported: str) -> None:
    """With several problems, the one warehouse checks first is reported (form fields sorted, then metadata)."""
    with pytest.raises(InvalidUpload, match=reported):
        parse_publish_form(form(WHEEL_FORM, changes))


# --- check_filename ---

SDIST_REQUEST = request(filetype="sdist", pyversion="source", raw_name="Acme_Utils")


@pytest.mark.parametrize(
    ("upload", "filename"),
    [
        (WHEEL_REQUEST, "acme_utils-1.0-py3-none-any.whl"),
        (WHEEL_REQUEST, "acme_utils-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl"),
        (request(version=Version("1.0+local")), "acme_utils-1.0+local-py3-none-any.whl"),
        (SDIST_REQUEST, "acme_utils-1.0.tar.gz"),
        (SDIST_REQUEST, "acme_utils-1.0.zip"),
    ],
)
def test_matching_filename_is_accepted(upload: PublishRequest, filename: str) -> None:
    """A filename naming the form's project (normalized) and version, with the filetype's extension, passes."""
    check_filename(upload, filename)


@pytest.mark.parametrize(
    ("upload", "filename", "message"),
    [
        (WHEEL_REQUEST, "Acme_Utils-1.0-py3-none-any.whl",
         "Filename 'Acme_Utils-1.0-py3-none-any.whl' should contain the normalized project name 'acme_utils', "
         "not 'Acme_Utils'."),
        (SDIST_REQUEST, "acme-utils-1.0.tar.gz",
         "Filename 'acme-utils-1.0.tar.gz' should contain the normalized project name 'acme_utils', not 'acme-utils'."),
        (request(version=Version("1.0")), "acme_utils-1.0.0-py3-none-any.whl",
         "Version in filename should be '1.0' not '1.0.0'."),
    ],
)
def test_non_normalized_filename_is_refused(upload: PublishRequest, filename: str, message: str) -> None:
    """Name and version must be spelled in normalized form, so one release can't hold respelled duplicates."""
    with pytest.raises(InvalidUpload) as excinfo:
        check_filename(upload, filename)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("upload", "filename", "message"),
    [
        (
            WHEEL_REQUEST,
            "acme\x07utils-1.0-py3-none-any.whl",
            "Cannot upload a file with non-printable characters (ordinals 0-31) in the name.",
        ),
        (
            WHEEL_REQUEST,
            "acme_utils-1.0-py3-none-any.whl\n",
            "Cannot upload a file with non-printable characters (ordinals 0-31) in the name.",
        ),
        (WHEEL_REQUEST, "../acme_utils-1.0-py3-none-any.whl", "Cannot upload a file with '/' or '\\' in the name."),
        (WHEEL_REQUEST, "x\\acme_utils-1.0-py3-none-any.whl", "Cannot upload a file with '/' or '\\' in the name."),
        (WHEEL_REQUEST, "acme_utils-1.0.exe", PEP_527),
        (SDIST_REQUEST, "acme_utils-1.0.tar.bz2", PEP_527),
        (SDIST_REQUEST, "acme_utils-1.0.egg", PEP_527),
        (
            WHEEL_REQUEST,
            "acme_utils-1.0.tar.gz",
            "Invalid file extension: Extension .tar.gz is invalid for filetype bdist_wheel. "
            "See https://www.python.org/dev/peps/pep-0527 for more information.",
        ),
        (
            SDIST_REQUEST,
            "acme_utils-1.0-py3-none-any.whl",
            "Invalid file extension: Extension .whl is invalid for filetype sdist. "
            "See https://www.python.org/dev/peps/pep-0527 for more information.",
        ),
        (WHEEL_REQUEST, "acme_utils-1.0.whl", "Invalid wheel filename (wrong number of parts): 'acme_utils-1.0'"),
        (
            WHEEL_REQUEST,
            "acme_utils-1.x-py3-none-any.whl",
            "Invalid wheel filename (invalid version): 'acme_utils-1.x-py3-none-any'",
        ),
        (
            WHEEL_REQUEST,
            "acme_utils-1.0-x-py3-none-any.whl",
            "Invalid wheel filename: Invalid build number: x in 'acme_utils-1.0-x-py3-none-any'",
        ),
        (
            WHEEL_REQUEST,
            "other-1.0-py3-none-any.whl",
            "Filename 'other-1.0-py3-none-any.whl' should contain the normalized project name 'acme_utils', "
            "not 'other'.",
        ),
        (WHEEL_REQUEST, "acme_utils-2.0-py3-none-any.whl", "Version in filename should be '1.0' not '2.0'."),
        (
            request(version=Version("1.0+local")),
            "acme_utils-1.0-py3-none-any.whl",
            "Version in filename should be '1.0+local' not '1.0'.",
        ),
        (SDIST_REQUEST, "acme_utils.tar.gz", "Invalid source distribution filename: acme_utils.tar.gz"),
        (SDIST_REQUEST, "acme_utils-1.x.zip", "Invalid source distribution filename: acme_utils-1.x.zip"),
        (SDIST_REQUEST, "other-1.0.tar.gz", "Start filename for 'Acme_Utils' with 'acme_utils'."),
        (SDIST_REQUEST, "acme_utils-1.1.zip", "Version in filename should be '1.0' not '1.1'."),
    ],
)
def test_bad_filename_is_rejected(upload: PublishRequest, filename: str, message: str) -> None:
    """Unsafe names, wrong extensions and names or versions that differ from the form get warehouse's message."""
    with pytest.raises(InvalidUpload) as excinfo:
        check_filename(upload, filename)
    assert str(excinfo.value) == message


# --- check_digests ---

PAYLOAD = b"distribution bytes"
COMPUTED = {
    "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    "blake2_256": hashlib.blake2b(PAYLOAD, digest_size=32).hexdigest(),
    "md5": hashlib.md5(PAYLOAD).hexdigest(),  # noqa: S324 - the legacy API's md5_digest field
}
OTHER = {key: hashlib.new("sha256", value.encode()).hexdigest()[: len(value)] for key, value in COMPUTED.items()}


@pytest.mark.parametrize(
    ("supplied", "matches"),
    [
        ({"sha256_digest": COMPUTED["sha256"], "blake2_256_digest": COMPUTED["blake2_256"]}, True),
        ({"sha256_digest": COMPUTED["sha256"], "blake2_256_digest": None}, True),
        ({"sha256_digest": None, "blake2_256_digest": COMPUTED["blake2_256"]}, True),
        ({"sha256_digest": None, "blake2_256_digest": None, "md5_digest": COMPUTED["md5"]}, True),
        ({"sha256_digest": OTHER["sha256"], "blake2_256_digest": COMPUTED["blake2_256"]}, False),
        ({"sha256_digest": COMPUTED["sha256"], "blake2_256_digest": OTHER["blake2_256"]}, False),
        ({"sha256_digest": COMPUTED["sha256"], "md5_digest": OTHER["md5"]}, False),
    ],
)
def test_digests_are_checked(supplied: Mapping[str, str | None], matches: bool) -> None:
    """Every digest the client supplied must match the received bytes; absent ones are not checked."""
    upload = request(**supplied)
    if matches:
        check_digests(upload, COMPUTED)
    else:
        with pytest.raises(InvalidUpload) as excinfo:
            check_digests(upload, COMPUTED)
        assert str(excinfo.value) == ("The digest supplied does not match a digest calculated from the uploaded file.")


def test_computed_digests_may_be_upper_case() -> None:
    """Computed digests are compared case-insensitively; the request's are already lower-case."""
    upload = request(sha256_digest=COMPUTED["sha256"], blake2_256_digest=COMPUTED["blake2_256"])
    check_digests(upload, {algorithm: digest.upper() for algorithm, digest in COMPUTED.items()})


# --- check_metadata_matches ---


@pytest.mark.parametrize(
    ("meta_name", "meta_version", "message"),
    [
        ("acme-utils", "1.0", None),
        ("acme-utils", "1.0.0", None),
        ("Acme_Utils", "1.0", None),
        ("acme-tools", "1.0", "Metadata name 'acme-tools' does not match the form's name 'acme-utils'."),
        ("acme-utils", "1.1", "Metadata version '1.1' does not match the form's version '1.0'."),
        ("acme-utils", "1.0+local", "Metadata version '1.0+local' does not match the form's version '1.0'."),
    ],
)
def test_metadata_must_match_form(meta_name: str, meta_version: str, message: str | None) -> None:
    """The archive's Name and Version must equal the form's (normalized name, PEP 440 equality)."""
    if message is None:
        check_metadata_matches(WHEEL_REQUEST, NormalizedName(meta_name), Version(meta_version))
    else:
        with pytest.raises(InvalidUpload) as excinfo:
            check_metadata_matches(WHEEL_REQUEST, NormalizedName(meta_name), Version(meta_version))
        assert str(excinfo.value) == message

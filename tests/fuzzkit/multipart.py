"""Upload bodies: twine-shaped multipart forms built by hand, so every field and every byte of the envelope can break.

A form starts as what twine sends for a real artifact, then gets mutated fields, content, filename and envelope.
Sizes (huge fields, part counts) stay within a `Budget`, so the CI run stays fast and the long run can go further.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass, replace
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

from tests.artifacts import Artifact, build_sdist, build_wheel
from tests.fuzzkit.values import Header, long_value, short_text
from tests.publishing import twine_fields

PRIVATE_PROJECT = "fuzz-private"
# What may be uploaded: real artifacts of one private project (uploads never shadow the upstream projects).
ARTIFACTS = (
    build_wheel(PRIVATE_PROJECT, "1.0", requires_python=">=3.8"),
    build_sdist(PRIVATE_PROJECT, "1.0"),
    build_wheel(PRIVATE_PROJECT, "2.0"),
)
# Text fields up to this size make a valid upload (shadowpi allows 4 MiB of fields; the other fields need room).
VALID_FIELD_BYTES = 3 * 2**20
# Structurally valid archives of other releases (never colliding with ARTIFACTS) with one member no installer
# should ever unpack: a distribution carrying one must be refused (400), whatever else is right.
UNSAFE_MEMBERS = ("../../../etc/cron.d/evil", "/etc/evil", "C:/evil.py", "a\\..\\..\\evil.py", "a/../../evil.py")
UNSAFE_LINK = "../../../../etc/passwd"
BOUNDARY = b"fuzzboundary7MA4YWxkTrZu0gW"
FIELD_VALUES = (b"", b"UNKNOWN", b"0", b"1.0+local.1", b"../../etc/passwd", b"bdist_wheel", b"sdist", b"source",
                b"py3", b"file_upload", b"2", b"fuzz-private", b"tinylib", b"a" * 300, b"\x00", b"\r\n", b"\xff\xfe")


def _with_zip_member(artifact: Artifact, member: str) -> Artifact:
    buf = io.BytesIO(artifact.data)
    with zipfile.ZipFile(buf, "a") as archive:
        archive.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), b"evil\n")
    return dataclasses.replace(artifact, data=buf.getvalue())


def _with_tar_member(artifact: Artifact, member: str, *, link: str | None = None) -> Artifact:
    """The sdist with one more member after all the others (after PKG-INFO, where a reader may stop looking)."""
    out = io.BytesIO()
    with (tarfile.open(fileobj=io.BytesIO(artifact.data), mode="r:gz") as source,
          tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as target):
        for info in source:
            target.addfile(info, source.extractfile(info) if info.isfile() else None)
        extra = tarfile.TarInfo(member)
        if link is not None:
            extra.type, extra.linkname = tarfile.SYMTYPE, link
            target.addfile(extra)
        else:
            extra.size = 5
            target.addfile(extra, io.BytesIO(b"evil\n"))
    return dataclasses.replace(artifact, data=out.getvalue())


def _unsafe_artifacts() -> tuple[Artifact, ...]:
    """Each with a release of its own (3.x wheels, 4.x sdists): one accepted by mistake cannot hide the others."""
    wheels = [_with_zip_member(build_wheel(PRIVATE_PROJECT, f"3.{i}"), m) for i, m in enumerate(UNSAFE_MEMBERS)]
    sdists = [_with_tar_member(build_sdist(PRIVATE_PROJECT, f"4.{i}"), m) for i, m in enumerate(UNSAFE_MEMBERS)]
    linked = build_sdist(PRIVATE_PROJECT, f"4.{len(UNSAFE_MEMBERS)}")
    top = linked.filename.removesuffix(".tar.gz")
    return (*wheels, *sdists, _with_tar_member(linked, f"{top}/link", link=UNSAFE_LINK))


UNSAFE_ARTIFACTS = _unsafe_artifacts()


@dataclass(frozen=True)
class Budget:
    """Upper bounds for one example: bytes of huge fields and the number of extra parts."""

    field_bytes: int = 2 * 2**20
    parts: int = 2_000


@dataclass(frozen=True)
class Part:
    headers: tuple[Header, ...]
    body: bytes


@dataclass(frozen=True)
class UploadBody:
    """The multipart body, its Content-Type header (None: none sent), what was done to it, and the answer."""

    content_type: bytes | None
    body: bytes
    tags: frozenset[str]
    expect: frozenset[int]  # what a plain, authenticated upload of this body must get (empty: no fixed answer)


def field_part(name: bytes, value: bytes) -> Part:
    return Part(((b"Content-Disposition", b'form-data; name="' + name + b'"'),), value)


def file_part(filename: bytes, data: bytes, *, encoding: str = "plain", content_type: bytes | None = None) -> Part:
    if encoding == "rfc5987":
        disposition = b"form-data; name=\"content\"; filename*=utf-8''" + quote_from_bytes(filename, safe="").encode()
    elif encoding == "unquoted":
        disposition = b"form-data; name=content; filename=" + filename
    else:
        disposition = b'form-data; name="content"; filename="' + filename + b'"'
    headers = [(b"Content-Disposition", disposition)]
    if content_type is not None:
        headers.append((b"Content-Type", content_type))
    return Part(tuple(headers), data)


def envelope(parts: list[Part], boundary: bytes = BOUNDARY, *, eol: bytes = b"\r\n", close: bool = True) -> bytes:
    out = bytearray()
    for part in parts:
        out += b"--" + boundary + eol
        for name, value in part.headers:
            out += name + b": " + value + eol
        out += eol + part.body + eol
    if close:
        out += b"--" + boundary + b"--" + eol
    return bytes(out)


def twine_parts(artifact: Artifact) -> tuple[list[Part], Part]:
    """The text fields twine sends for `artifact` (in its order) and the file part."""
    fields = [field_part(k.encode(), v.encode()) for k, v in twine_fields(artifact).items()]
    return fields, file_part(artifact.filename.encode(), artifact.data, content_type=b"application/octet-stream")


# --- mutations -------------------------------------------------------------------------------------------


@st.composite
def _mutated_fields(draw: st.DrawFn, fields: list[Part], budget: Budget) -> tuple[list[Part], set[str]]:
    fields, tags = list(fields), set()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop", "set", "duplicate", "add", "huge", "many"]))
        index = draw(st.integers(0, max(0, len(fields) - 1)))
        if kind == "drop" and fields:
            fields.pop(index)
        elif kind == "set" and fields:
            value = draw(st.one_of(st.sampled_from(FIELD_VALUES), short_text(), st.binary(max_size=20)))
            fields[index] = replace(fields[index], body=value)
        elif kind == "duplicate" and fields:
            fields.insert(index, fields[index])
        elif kind == "add":
            fields.append(field_part(draw(st.one_of(short_text(15), st.sampled_from([b"", b"content", b'a"b']))),
                                     draw(short_text())))
        elif kind == "huge":  # a long description is legitimate up to the form's field limit
            size = draw(st.integers(0, budget.field_bytes))
            fields.append(field_part(b"description", b"d" * size))
            tags.add("form:huge-field" if size <= VALID_FIELD_BYTES else "form:over-field-limit")
            continue
        elif kind == "many":
            count = draw(st.integers(1, budget.parts))
            fields.extend([field_part(b"classifiers", b"x")] * count)
            tags.add("form:many-parts")
            continue
        tags.add(f"form:{kind}")
    return fields, tags


@st.composite
def _mutated_content(draw: st.DrawFn, artifact: Artifact) -> tuple[bytes | None, str]:
    data = artifact.data
    content = draw(st.sampled_from(["truncated", "flipped", "empty", "other", "random", "none"]))
    if content == "none":
        return None, content
    if content == "truncated":
        return data[: draw(st.integers(0, len(data) - 1))], content
    if content == "flipped":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :], content
    if content == "other":
        return draw(st.sampled_from([a.data for a in ARTIFACTS if a is not artifact])), content
    return (b"" if content == "empty" else draw(st.binary(max_size=200))), content


def _filenames(filename: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from([b"", b"x.whl", b"../" + filename, b"a/b.whl", b"a\\b.whl", filename + b"\x00",
                         filename.replace(b"1.0", b"9.9"), filename[:-4] + b".exe", b"\n" + filename]),
        short_text(40), long_value(400).map(lambda b: b + b".whl"))


@st.composite
def _mutated_file(draw: st.DrawFn, artifact: Artifact, axes: frozenset[str]) -> tuple[Part | None, set[str]]:
    data: bytes | None = artifact.data
    filename = artifact.filename.encode()
    encoding, content_type = "plain", b"application/octet-stream"
    tags: set[str] = set()
    if "content" in axes:
        data, kind = draw(_mutated_content(artifact))
        tags.add(f"file:{kind}")
    if "filename" in axes:
        filename = draw(_filenames(filename))
        tags.add("file:filename")
    if "part-headers" in axes:
        encoding = draw(st.sampled_from(["plain", "rfc5987", "unquoted"]))
        content_type = draw(st.sampled_from([None, b"image/png", b"text/plain; charset=bogus", b"\x00", b""]))
        tags.add("file:part-headers")
    if data is None:
        return None, tags
    return file_part(filename, data, encoding=encoding, content_type=content_type), tags


@st.composite
def _envelope(draw: st.DrawFn, parts: list[Part], axes: frozenset[str]) -> tuple[bytes | None, bytes, set[str]]:
    kind = "ok" if "envelope" not in axes else draw(st.sampled_from([
        "no-boundary", "wrong-boundary", "quoted-boundary", "lf-only", "unterminated", "truncated", "preamble",
        "garbage", "nested", "no-disposition", "base64-part", "no-content-type", "other-content-type"]))
    content_type: bytes | None = b"multipart/form-data; boundary=" + BOUNDARY
    body = envelope(parts)
    if kind == "no-boundary":
        content_type = b"multipart/form-data"
    elif kind == "wrong-boundary":
        content_type = b"multipart/form-data; boundary=" + BOUNDARY[::-1]
    elif kind == "quoted-boundary":
        content_type = b'multipart/form-data; boundary="' + BOUNDARY + b'"'
    elif kind == "lf-only":
        body = envelope(parts, eol=b"\n")
    elif kind == "unterminated":
        body = envelope(parts, close=False)
    elif kind == "truncated":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif kind == "preamble":
        body = draw(st.binary(max_size=50)) + b"\r\n" + body
    elif kind == "garbage":
        body = draw(st.binary(max_size=300))
    elif kind == "nested":
        inner = envelope(parts[:2], b"inner")
        nested = Part(((b"Content-Disposition", b'form-data; name="nested"'),
                       (b"Content-Type", b"multipart/mixed; boundary=inner")), inner)
        body = envelope([nested, *parts])
    elif kind == "no-disposition":
        body = envelope([Part(((b"Content-Type", b"text/plain"),), b"x"), *parts])
    elif kind == "base64-part":
        encoded = [replace(p, headers=(*p.headers, (b"Content-Transfer-Encoding", b"base64")),
                           body=base64.b64encode(p.body)) for p in parts]
        body = envelope(encoded)
    elif kind == "no-content-type":
        content_type = None
    elif kind == "other-content-type":
        content_type = draw(st.sampled_from([b"multipart/mixed; boundary=" + BOUNDARY, b"application/json",
                                             b"application/x-www-form-urlencoded", b"text/plain", b""]))
    return content_type, body, set() if kind == "ok" else {f"envelope:{kind}"}


AXES = ("fields", "content", "filename", "part-headers", "envelope")


@st.composite
def upload_bodies(draw: st.DrawFn, budget: Budget) -> UploadBody:
    """A twine upload of a real private artifact: valid, or broken along a few axes (fields, file content,
    filename, the file part's headers, the multipart envelope), or an archive with an unsafe member."""
    unsafe = draw(st.sampled_from([False, False, False, True]))
    # An unsafe archive mostly comes alone, so that the answer it must get (400) can be checked.
    alone = unsafe and draw(st.sampled_from([True, True, True, False]))
    axes = frozenset() if alone else frozenset(draw(st.sets(st.sampled_from(AXES), max_size=3)))
    artifact = draw(st.sampled_from(UNSAFE_ARTIFACTS if unsafe else ARTIFACTS))
    fields, file = twine_parts(artifact)
    tags: set[str] = {"archive:unsafe-member"} if unsafe else set()
    if "fields" in axes:
        fields, field_tags = draw(_mutated_fields(fields, budget))
        tags |= field_tags
    new_file, file_tags = draw(_mutated_file(artifact, axes))
    if new_file is not None and "content" in axes and draw(st.booleans()):
        fields = _with_digests(fields, new_file.body)  # past the digest check, into the archive reader
        file_tags.add("file:digests-match")
    parts = [*fields, new_file] if new_file is not None else fields
    content_type, body, envelope_tags = draw(_envelope(parts, axes))
    tags |= file_tags | envelope_tags
    rest = tags - {"form:huge-field", "archive:unsafe-member"}
    expect = frozenset() if rest or new_file != file else frozenset({400} if unsafe else {200})
    return UploadBody(content_type, body, frozenset(tags), expect)


def _with_digests(fields: list[Part], data: bytes) -> list[Part]:
    digests = {b"sha256_digest": hashlib.sha256(data).hexdigest().encode(),
               b"blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest().encode()}
    named = {b'form-data; name="' + name + b'"': value for name, value in digests.items()}
    return [replace(p, body=named.get(p.headers[0][1], p.body)) for p in fields]

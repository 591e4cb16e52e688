"""An upload's multipart/form-data body, read with bounded work: parts, text bytes and file bytes are counted as
they arrive, the file goes to a spool, and a malformed envelope is a 400 naming what is wrong (never a 500).

aiohttp's convenience readers are not used: `part.text()` applies aiohttp's own 1 MiB per-part limit (a 413 that
contradicts ours), and nothing bounds the number of parts. Here the limits are [upload] max_size (the file),
max_fields_size (every text field and part header together) and max_parts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage, InvalidHeader

from proxy.backends.spool import Spool
from proxy.config import UploadConfig
from proxy.errors import InvalidUpload, UploadTooLarge
from proxy.simple.names import check_safe_filename
from proxy.simple.publishing import display_value

__all__ = ["YIELD_EVERY", "FormLimits", "ReceivedForm", "open_form", "read_form", "size_text"]

CHUNK = 256 * 1024
# Parts between trips through the event loop: aiohttp parses buffered parts without ever waiting, so a body of
# many tiny parts would otherwise hold the loop (100,000 parts held it for 24 s).
YIELD_EVERY = 32
# What aiohttp's multipart parser raises for bodies it cannot parse (missing or wrong boundary, truncation, bad
# headers, unknown transfer encodings and charsets).
_MALFORMED = (ValueError, RuntimeError, LookupError, BadHttpMessage)
_NON_PRINTABLE = "Cannot upload a file with non-printable characters (ordinals 0-31) in the name."


@dataclass(frozen=True, slots=True)
class FormLimits:
    max_file_size: int
    max_fields_size: int
    max_parts: int

    @classmethod
    def of(cls, config: UploadConfig) -> FormLimits:
        return cls(config.max_size, config.max_fields_size, config.max_parts)

    def request_size(self, framing: int = 128) -> int:
        """The largest body a valid upload can have: the file, the fields, and `framing` bytes per part for the
        boundary lines (part headers count as fields)."""
        return self.max_file_size + self.max_fields_size + framing * self.max_parts


@dataclass(slots=True)
class ReceivedForm:
    fields: dict[str, list[str]]
    spool: Spool
    filename: str


def size_text(limit: int) -> str:
    """A byte count as people read it: '100 MB (104857600 bytes)', or '1000 bytes' below a megabyte."""
    if limit < 2**20:
        return f"{limit} bytes"
    return f"{limit / 2**20:g} MB ({limit} bytes)"


async def open_form(request: web.Request) -> MultipartReader:
    """The request's multipart reader. Raises InvalidUpload when the Content-Type has no usable boundary."""
    try:
        return await request.multipart()
    except ValueError as exc:
        raise _malformed(exc) from None


async def read_form(reader: MultipartReader, spool: Spool, limits: FormLimits) -> ReceivedForm:
    """Every text field, and the one file part ("content") streamed to `spool` (which the caller owns).

    Raises InvalidUpload (400) and UploadTooLarge (413).
    """
    form = _Form(limits, spool)
    while (part := await _next_part(reader)) is not None:
        await form.take(part)
    if not form.has_file:
        raise InvalidUpload("Upload payload does not have a file.")
    return ReceivedForm(form.fields, spool, form.filename)


class _Form:
    """What has been read so far, and the limits it is counted against."""

    def __init__(self, limits: FormLimits, spool: Spool) -> None:
        self.limits = limits
        self.fields: dict[str, list[str]] = {}
        self.spool = spool
        self.has_file = False
        self.filename = ""
        self.parts = 0
        self.text_bytes = 0

    async def take(self, part: BodyPartReader | MultipartReader) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise UploadTooLarge(f"Too many parts in the upload form: more than {self.limits.max_parts}.")
        if self.parts % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let other requests (and /health) run between batches of parts
        if not isinstance(part, BodyPartReader):
            raise InvalidUpload("Nested multipart content is not supported.")
        self._count(sum(len(k) + len(v) + 4 for k, v in part.headers.items()))  # "k: v\r\n"
        if part.name == "content":
            await self._take_file(part)
        elif part.name:
            self.fields.setdefault(part.name, []).append(await self._read_text(part))

    async def _take_file(self, part: BodyPartReader) -> None:
        if self.has_file:
            raise InvalidUpload("Only one file may be uploaded per request.")
        self.has_file = True
        self.filename = _part_filename(part)
        # warehouse refuses image/* parts: a browser form posting a picture is not a distribution.
        if part.headers.get("Content-Type", "").startswith("image/"):
            raise InvalidUpload("Invalid distribution file.")
        spool = self.spool
        limit = self.limits.max_file_size
        while chunk := await _chunk(part):
            if spool.size + len(chunk) > limit:  # enforced while reading: never buffer past the limit
                project = display_value((self.fields.get("name") or ["this project"])[0])
                raise UploadTooLarge(f"File too large. Limit for project '{project}' is {size_text(limit)}.")
            await spool.write(chunk)

    async def _read_text(self, part: BodyPartReader) -> str:
        data = bytearray()
        while chunk := await _chunk(part):
            self._count(len(chunk))
            data += chunk
        name = display_value(part.name or "")
        try:
            # Content-Transfer-Encoding (RFC 7578 deprecates it, some clients send it) and the part's charset.
            return bytes(part.decode(bytes(data))).decode(part.get_charset(default="utf-8"))
        except _MALFORMED as exc:
            raise InvalidUpload(f"Invalid value for {name}. Error: {_reason(exc)}") from None

    def _count(self, size: int) -> None:
        self.text_bytes += size
        if self.text_bytes > self.limits.max_fields_size:
            raise UploadTooLarge(
                f"The upload's form fields are too large: more than {size_text(self.limits.max_fields_size)} "
                "together (metadata and long description)."
            )


async def _next_part(reader: MultipartReader) -> BodyPartReader | MultipartReader | None:
    try:
        return await reader.next()
    except InvalidHeader as exc:
        # A raw NUL, CR or LF inside a part header: for the file's name, PyPI's wording says what to fix.
        if "filename" in str(exc.hdr):
            raise InvalidUpload(_NON_PRINTABLE) from None
        header = display_value(str(exc.hdr), limit=100)
        raise _malformed(f"a part header is malformed: '{header}' (a line break or NUL inside a value?)") from None
    except _MALFORMED as exc:
        raise _malformed(exc) from None


async def _chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(CHUNK)
    except _MALFORMED as exc:
        raise _malformed(exc) from None


def _part_filename(part: BodyPartReader) -> str:
    filename = part.filename
    if not filename:
        raise InvalidUpload("Upload payload does not have a file.")
    check_safe_filename(filename)
    return filename


def _reason(exc: BaseException) -> str:
    # aiohttp's HTTP errors render as "400, message: ..." over two lines; their message alone is the reason.
    text = exc.message if isinstance(exc, BadHttpMessage) else str(exc)
    return display_value(text or type(exc).__name__, limit=200)


def _malformed(problem: BaseException | str) -> InvalidUpload:
    reason = problem if isinstance(problem, str) else _reason(problem)
    if reason == "Reading after EOF":  # aiohttp's words for a body that stops inside a part
        reason = "the body ends before the form's closing boundary (cut off?)"
    return InvalidUpload(f"The upload is not a valid multipart/form-data body: {reason}")

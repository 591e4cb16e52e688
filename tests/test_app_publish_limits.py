"""Hostile upload bodies: malformed multipart envelopes, huge fields, endless parts. Each is a clear 4xx, never a
500 with a traceback; nothing is stored; the server keeps serving."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.artifacts import Artifact, build_wheel
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import TOKEN_AUTH, add_token, spool_files, stored, twine_fields, twine_upload

WHEEL = build_wheel("hello-world", "1.0")
AUTH = {"Authorization": aiohttp.encode_basic_auth(*TOKEN_AUTH)}
MALFORMED_BODY = "The upload is not a valid multipart/form-data body: "
CUT_OFF = MALFORMED_BODY + "the body ends before the form's closing boundary (cut off?)"
NON_PRINTABLE = "Cannot upload a file with non-printable characters (ordinals 0-31) in the name."


@pytest.fixture
async def index(make_proxy: ProxyFactory) -> TestClient:
    await add_token(make_proxy.data_dir, "ci")
    return await make_proxy()


def part(headers: str, body: bytes, boundary: bytes = b"B") -> bytes:
    return b"--" + boundary + b"\r\n" + headers.encode("latin-1") + b"\r\n\r\n" + body + b"\r\n"


def form(*parts: bytes, boundary: bytes = b"B") -> bytes:
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


FIELD = part('Content-Disposition: form-data; name=":action"', b"file_upload")
COMPLETE = form(FIELD)


def file_part(filename: str) -> bytes:
    return part(f'Content-Disposition: form-data; name="content"; filename="{filename}"', WHEEL.data)


MALFORMED = [
    pytest.param("multipart/form-data", COMPLETE,
                 MALFORMED_BODY + "boundary missed for Content-Type: multipart/form-data", id="no-boundary"),
    pytest.param("multipart/form-data; boundary=X", COMPLETE,
                 MALFORMED_BODY + "Could not find starting boundary b'--X'", id="wrong-boundary"),
    pytest.param("multipart/form-data; boundary=" + "x" * 71, COMPLETE,
                 MALFORMED_BODY + f"boundary '{'x' * 71}' is too long (70 chars max)", id="boundary-too-long"),
    pytest.param("multipart/form-data; boundary=B", COMPLETE[:30], CUT_OFF, id="truncated"),
    pytest.param("multipart/form-data; boundary=B", FIELD + file_part(WHEEL.filename), CUT_OFF, id="unterminated"),
    pytest.param("multipart/form-data; boundary=B", b"\x00\xff garbage \r\n garbage",
                 MALFORMED_BODY + "Could not find starting boundary b'--B'", id="garbage"),
    pytest.param("multipart/form-data; boundary=B", form(FIELD, file_part("a\x00b.whl")), NON_PRINTABLE,
                 id="nul-in-filename"),
    pytest.param("multipart/form-data; boundary=B", form(FIELD, file_part("a\rb.whl")), NON_PRINTABLE,
                 id="cr-in-filename"),
    pytest.param("multipart/form-data; boundary=B", form(FIELD, file_part("a\nb.whl")),
                 MALFORMED_BODY + "a part header is malformed: 'b.whl\"' (a line break or NUL inside a value?)",
                 id="newline-in-filename"),
    pytest.param("multipart/form-data; boundary=B",
                 form(part('Content-Disposition: form-data; name="name"\r\nContent-Transfer-Encoding: rot13', b"x")),
                 "Invalid value for name. Error: unknown content transfer encoding: rot13", id="unknown-encoding"),
    pytest.param("multipart/form-data; boundary=B",
                 form(part('Content-Disposition: form-data; name="name"\r\nContent-Type: text/plain; charset=nope',
                           b"x")),
                 "Invalid value for name. Error: unknown encoding: nope", id="unknown-charset"),
    pytest.param("multipart/form-data; boundary=B", form(part('Content-Disposition: form-data; name="name"', b"\xff")),
                 "Invalid value for name. Error: 'utf-8' codec can't decode byte 0xff in position 0: invalid start "
                 "byte", id="not-utf8"),
    pytest.param("multipart/form-data; boundary=B",
                 form(part('Content-Disposition: form-data; name="name"\r\nContent-Transfer-Encoding: base64', b"QQ")),
                 "Invalid value for name. Error: Incorrect padding", id="bad-base64"),
]


@pytest.mark.parametrize(("content_type", "body", "reason"), MALFORMED)
async def test_malformed_multipart_is_a_client_error(
    index: TestClient, make_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture, content_type: str, body: bytes,
    reason: str,
):
    """Bodies with no, a wrong or an overlong boundary, cut-off or garbage bodies, undecodable fields and NUL or
    line breaks in the file's name: 400 with the reason, no traceback logged, nothing stored."""
    before = await stored(make_proxy.data_dir)
    with caplog.at_level(logging.ERROR):
        resp = await index.post("/", data=body, headers={**AUTH, "Content-Type": content_type})
        assert (resp.status, resp.reason) == (400, reason)
        assert await resp.text() == reason + "\n"
        assert (await index.get("/health")).status == 200
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await stored(make_proxy.data_dir) == before
    assert spool_files(make_proxy.data_dir) == []


async def test_client_cutting_the_body_short_leaves_nothing(index: TestClient, make_proxy: ProxyFactory,
                                                             caplog: pytest.LogCaptureFixture):
    """A client that disconnects mid-file (Content-Length promised more): no traceback, no spool left behind."""
    assert index.server.port is not None
    head = (
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n"
        f"Authorization: {AUTH['Authorization']}\r\n\r\n"
    )
    with caplog.at_level(logging.ERROR):
        reader, writer = await asyncio.open_connection("127.0.0.1", index.server.port)
        writer.write(head.encode() + FIELD + file_part(WHEEL.filename)[:2000])
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        assert await reader.read() == b""  # the server had nothing to say to a client that left
        assert (await index.get("/health")).status == 200  # handled after the upload request ended
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert spool_files(make_proxy.data_dir) == []


# --- text fields: one documented limit for all of them together (item 11) ---


async def test_long_description_is_accepted(index: TestClient):
    """A 1.5 MB long description is within the 4 MiB fields limit: published (aiohttp alone would answer 413)."""
    resp = await twine_upload(index, WHEEL, description="x" * 1_500_000)
    assert resp.status == 200, resp.reason
    page = await (await index.get("/simple/hello-world/", headers=JSON)).json(content_type=None)
    assert [f["filename"] for f in page["files"]] == [WHEEL.filename]


@pytest.mark.parametrize("where", ["one-field", "many-fields"])
async def test_fields_over_the_limit_are_refused(make_proxy: ProxyFactory, where: str):
    """Past [upload] max_fields_size (one huge field or many small ones): 413 naming the limit, nothing stored."""
    await add_token(make_proxy.data_dir, "ci")
    client = await make_proxy(upload={"max_fields_size": 64 * 1024})
    before = await stored(make_proxy.data_dir)
    if where == "one-field":
        resp = await twine_upload(client, WHEEL, description="x" * 70 * 1024)
    else:
        resp = await twine_upload(client, WHEEL, **{f"x{i}": "y" * 1024 for i in range(70)})
    assert (resp.status, resp.reason) == (
        413, "The upload's form fields are too large: more than 65536 bytes together (metadata and long description)."
    )
    assert await stored(make_proxy.data_dir) == before
    assert spool_files(make_proxy.data_dir) == []


# --- the number of parts (item 6) ---


def many_parts_form(count: int) -> aiohttp.FormData:
    """twine's fields for WHEEL plus `count` classifiers (one part each), then the file."""
    data = aiohttp.FormData(quote_fields=False)
    for key, value in twine_fields(WHEEL).items():
        data.add_field(key, value)
    for i in range(count):
        data.add_field("classifiers", f"Topic :: {i}")
    data.add_field("content", WHEEL.data, filename=WHEEL.filename, content_type="application/octet-stream")
    return data


async def test_too_many_parts_are_refused(make_proxy: ProxyFactory):
    """More parts than [upload] max_parts: 413 naming the limit, nothing stored, the server keeps serving."""
    await add_token(make_proxy.data_dir, "ci")
    client = await make_proxy(upload={"max_parts": 100})
    before = await stored(make_proxy.data_dir)
    resp = await client.post("/", data=many_parts_form(200), headers=AUTH)
    assert (resp.status, resp.reason) == (413, "Too many parts in the upload form: more than 100.")
    assert await stored(make_proxy.data_dir) == before
    assert spool_files(make_proxy.data_dir) == []
    assert (await client.get("/health")).status == 200
    assert (await twine_upload(client, WHEEL)).status == 200


# --- filename length (item 14) ---


def wheel_named(length: int) -> Artifact:
    """WHEEL under a valid wheel filename of exactly `length` characters (a long platform tag)."""
    head, tail = "hello_world-1.0-py3-none-linux_", ".whl"
    return dataclasses.replace(WHEEL, filename=head + "x" * (length - len(head) - len(tail)) + tail)


@pytest.mark.parametrize(("length", "status"), [(246, 200), (247, 400), (325, 400)])
async def test_filename_length_is_limited(index: TestClient, make_proxy: ProxyFactory, length: int, status: int):
    """A filename must fit in a file name with '.metadata' appended (246 bytes), or `export --static` and other
    tools cannot store it: longer ones get PyPI's "Filename is too long" and nothing is stored."""
    artifact = wheel_named(length)
    before = await stored(make_proxy.data_dir)
    resp = await twine_upload(index, artifact)
    assert resp.status == status, resp.reason
    if status == 400:
        shown = f"{artifact.filename[:30]}...{artifact.filename[-30:]}"
        assert resp.reason == (
            f"Filename is too long: '{shown}' ({length} bytes; at most 246 fit in a file name beside '.metadata')."
        )
        assert await stored(make_proxy.data_dir) == before
        assert spool_files(make_proxy.data_dir) == []

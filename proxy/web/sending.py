"""Sending file bytes to a client: a committed blob with its conditional and Range answers, and byte ranges of any
ByteSource, with the kernel's sendfile when the bytes are a local file and through aiohttp's writer otherwise.

A cached hit costs no thread hand-off: the blob is already open (BlobStore.reader_nowait) and loop.sendfile writes
from the event loop (aiohttp's FileResponse stat()ed, opened and closed the file in its executor: 2 hand-offs and
about 16 thread wake-ups per file). A remote blob (an object store) is written piece by piece as its reader streams
it (with read-ahead: proxy/backends/s3/reader.py); each write waits until the client's socket takes it, so memory
stays bounded whatever the file's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import time
from collections.abc import Mapping

from aiohttp import web

from proxy.backends.blobs import BlobReader, ByteSource
from proxy.logs import SendfileCounted
from proxy.web.ranges import Representation, answer

__all__ = ["Sent", "send_blob", "send_range"]

log = logging.getLogger(__name__)

# aiohttp sends files with sendfile unless this is set; then its own writer sends (and counts) them. Honoured here.
_NOSENDFILE = bool(os.environ.get("AIOHTTP_NOSENDFILE"))


class InMemory(SendfileCounted, web.Response):
    """A small file's bytes, sent with the headers (aiohttp counts them)."""


class Sent(SendfileCounted, web.StreamResponse):
    """A file response; bytes sent with sendfile bypass aiohttp's count, so they are counted here (access log)."""

    sent = 0

    def sendfile_bytes(self) -> int:
        return self.sent


async def send_blob(request: web.Request, reader: BlobReader, headers: Mapping[str, str]) -> web.StreamResponse:
    """A committed blob, whatever the request: HEAD, Range (206/416) and conditionals (304/412) as RFC 9110 says."""
    plan = answer(Representation(reader.size, f'"{reader.sha256}"', reader.modified), request.headers)
    fields = dict(headers)
    if plan.validators:
        fields["ETag"] = f'"{reader.sha256}"'
        fields["Last-Modified"] = _http_date(reader.modified)
    if plan.status in (200, 206):
        fields["Accept-Ranges"] = "bytes"
    if plan.content_range is not None:
        fields["Content-Range"] = plan.content_range
    data = reader.memory()
    if data is not None and plan.status in (200, 206):  # small: headers and bytes in one write
        return InMemory(status=plan.status, headers=fields, body=data[plan.offset : plan.offset + plan.count])
    response = Sent(status=plan.status, headers=fields)
    if plan.status != 304:
        response.content_length = plan.count
    await response.prepare(request)
    if request.method == "HEAD" or not plan.count:
        await response.write_eof()
        return response
    try:
        await send_range(request, response, reader, plan.offset, plan.count)
    except ConnectionError:  # normal: pip, uv and poetry hang up on purpose
        log.info("client went away during %s", request.path)
        return response
    except OSError as exc:  # storage failed mid-body (an object store): cut the connection, the only signal left
        log.warning("aborting %s: %s", request.path, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


@functools.lru_cache(maxsize=4096)  # a blob's time never changes, and formatting it was 3-4% of a warm file request
def _http_date(when: float) -> str:
    # Rounded up, as aiohttp does: a client's If-Modified-Since with this value then matches the file.
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(math.ceil(when)))


async def send_range(
    request: web.Request, response: Sent, source: ByteSource, offset: int, count: int, *, sendfile: bool = True
) -> None:
    """Send `count` bytes of `source` from `offset` after the prepared response's headers. `sendfile=False` for a
    chunked response (unknown length): aiohttp's writer must frame those bytes.

    Raises ConnectionResetError when the client is gone, or the source holds fewer bytes than that.
    """
    file = source.sendfile_source() if sendfile and not _NOSENDFILE else None
    if file is not None:
        transport = request.transport
        if transport is None or transport.is_closing():  # loop.sendfile would raise a RuntimeError
            raise ConnectionResetError("client went away")
        try:
            # No fallback: asyncio's would read through the file's position, which concurrent senders share.
            sent = await asyncio.get_running_loop().sendfile(transport, file, offset, count, fallback=False)
        except asyncio.SendfileNotAvailableError:
            pass
        else:
            response.sent += sent
            if sent < count:
                raise ConnectionResetError("the file is shorter than announced")
            return
    async with contextlib.aclosing(source.chunks(offset, count)) as chunks:  # closed at once if the client goes
        async for data in chunks:
            await response.write(data)
            count -= len(data)
    if count > 0:
        raise ConnectionResetError("the file is shorter than announced")

"""The peer endpoint: GET /_shadowpi/fills/<sha256>?offset=N streams the fill of a file that a process on this host
leads to another replica following it (proxy/backends/postgres/remote.py), from `offset`, as the bytes arrive.

Only replicas may ask: the request carries a token signed with the secret they share through the database
(proxy/peer_token.py); anything else is refused (403) before the fill is even looked up. The response ends
normally only once the fill is committed (sealed in the store); a fill that fails or whose leader dies cuts the
connection, so the follower can never take a partial body for a complete one (it verifies the sha256 anyway).
"""

from __future__ import annotations

import contextlib
import time

from aiohttp import web

from proxy.backends.fills import FillOutcome, ForeignFill
from proxy.download import POLL_MIN
from proxy.download_checks import is_sha256
from proxy.errors import BadRequest, FileNotFound, Forbidden
from proxy.keys import BACKENDS, PEER_SECRET
from proxy.peer_token import check

routes = web.RouteTableDef()

# Seconds between looks at the spool while it does not grow, at most: a follower's first bytes wait for the look
# after the leader's first write (the follower's clients all wait on it), so shorter than a local follower's.
POLL_MAX = 0.02


@routes.get("/_shadowpi/fills/{sha256}", name="peer-fill")
async def peer_fill(request: web.Request) -> web.StreamResponse:
    sha256 = request.match_info["sha256"]
    if not is_sha256(sha256):
        raise FileNotFound("no fill has that name")
    if not check(await request.app[PEER_SECRET](), sha256, request.headers.get("Authorization"), time.time()):
        raise Forbidden("the peer endpoint is for shadowpi replicas of this cluster only")
    offset = _offset(request.query.get("offset", "0"))
    foreign = await request.app[BACKENDS].fills.follow_local(sha256)
    if foreign is None:
        raise FileNotFound(f"no download of {sha256} is running here")
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-store"})
    try:
        await _stream(request, response, foreign, offset)
    except ConnectionError:  # the follower went away (it stopped, or will ask again from where it got to)
        pass
    finally:
        foreign.close()
    return response


def _offset(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise BadRequest("offset must be a number of bytes")
    return int(text)


async def _stream(request: web.Request, response: web.StreamResponse, foreign: ForeignFill, offset: int) -> None:
    await response.prepare(request)
    delay = POLL_MIN
    while True:
        foreign.grown()
        if offset < foreign.size:
            async with contextlib.aclosing(foreign.chunks(offset, foreign.size - offset)) as chunks:
                async for chunk in chunks:
                    await response.write(chunk)
                    offset += len(chunk)
            delay = POLL_MIN
            continue
        outcome = await foreign.outcome()
        if outcome is FillOutcome.COMMITTED:
            if foreign.grown():  # the commit came after the last write we saw: send the rest first
                continue
            await response.write_eof()
            return
        if outcome is not FillOutcome.WRITING:  # failed or abandoned: cut the body short, never end it cleanly
            if request.transport is not None:
                request.transport.abort()
            return
        await foreign.wait(delay)  # another process writes the spool: polled
        delay = min(2 * delay, POLL_MAX)

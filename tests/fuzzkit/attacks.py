"""Resource attacks of issue 10 items 4-8, run from an event loop against a real `shadowpi serve`.

Each attack keeps going until stopped: a bcrypt flood (wrong passwords), a zip central-directory bomb, a
multipart part flood, huge upstream pages, and slowloris. Attackers connect from 127.0.0.2, so a per-address
defence can tell them from the legitimate client on 127.0.0.1. Used by tests/test_attacks.py (a real pip install
must still complete) and bench/attacks.py (peak RSS and /health latency during each attack).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import secrets
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from tests.fuzzkit.harness import FUZZ_TOKEN
from tests.fuzzkit.multipart import BOUNDARY, envelope, field_part, file_part

ATTACKER = "127.0.0.2"
TOKEN_HEADER = aiohttp.encode_basic_auth("__token__", FUZZ_TOKEN)
HUGE_PREFIX = "huge-"  # /simple/huge-<n>/: the hostile upstream answers with a huge page


@dataclass
class AttackRun:
    """A running attack: `engaged` is set once every worker has sent (or connected); `statuses` counts answers."""

    name: str
    workers: int
    engaged: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    statuses: Counter[str] = field(default_factory=Counter)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _started: int = 0

    def started(self) -> None:
        """A worker is under way (its first request is being sent, or its connection is open)."""
        self._started += 1
        if self._started >= self.workers:
            self.engaged.set()

    def note(self, status: object) -> None:
        self.statuses[str(status)] += 1

    async def halt(self) -> None:
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


Worker = Callable[[AttackRun, aiohttp.ClientSession, int], Awaitable[None]]


async def _repeat(run: AttackRun, session: aiohttp.ClientSession, send: Callable[[int], Awaitable[int]]) -> None:
    """Send requests back to back until stopped; refusals and errors are counted, never raised."""
    for n in itertools.count():
        if run.stop.is_set():
            return
        if n == 0:
            run.started()
        try:
            run.note(await send(n))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            run.note(type(exc).__name__)


def start(name: str, base: str, worker: Worker, concurrency: int) -> AttackRun:
    """Start `concurrency` workers on one client session from the attacker's address (call from the loop)."""
    run = AttackRun(name, concurrency)

    async def session_owner() -> None:
        connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0), limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(worker(run, session, i) for i in range(concurrency)))

    run.tasks.append(asyncio.create_task(session_owner(), name=f"attack:{name}"))
    return run


# --- item 4: bcrypt flood -------------------------------------------------------------------------------------

async def bcrypt_flood(run: AttackRun, session: aiohttp.ClientSession, _worker: int) -> None:
    """Wrong passwords for a real user, each one new (failures are never cached), as fast as answered."""
    async def send(_n: int) -> int:
        wrong = {"Authorization": aiohttp.encode_basic_auth("alice", secrets.token_hex(8))}
        async with session.get("/simple/tinylib/", headers=wrong) as resp:
            await resp.read()
            return resp.status

    await _repeat(run, session, send)


# --- item 5: zip central-directory bomb ----------------------------------------------------------------------

def zip_bomb(entries: int) -> bytes:
    """A wheel-named zip whose central directory lists `entries` members, all pointing at one empty local file.

    Every central-directory record costs `zipfile` a ZipInfo object; the archive itself stays ~47 bytes/entry.
    """
    name = b"a"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    record = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0)
    central = (record + name) * entries
    cd_offset, cd_size = len(local), len(central)
    zip64_eocd = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, cd_offset + cd_size, 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return local + central + zip64_eocd + locator + eocd


def bomb_upload(entries: int) -> tuple[bytes, str]:
    """A twine upload body (and its Content-Type) carrying the bomb as bomb-1.0-py3-none-any.whl."""
    data = zip_bomb(entries)
    fields = {":action": "file_upload", "protocol_version": "1", "name": "bomb", "version": "1.0",
              "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
              "sha256_digest": hashlib.sha256(data).hexdigest()}
    parts = [field_part(k.encode(), v.encode()) for k, v in fields.items()]
    parts.append(file_part(b"bomb-1.0-py3-none-any.whl", data, content_type=b"application/octet-stream"))
    return envelope(parts), f"multipart/form-data; boundary={BOUNDARY.decode()}"


def poster(body: bytes, content_type: str) -> Worker:
    """A worker that POSTs the same upload body again and again with a valid token."""
    async def worker(run: AttackRun, session: aiohttp.ClientSession, _worker: int) -> None:
        async def send(_n: int) -> int:
            headers = {"Content-Type": content_type, "Authorization": TOKEN_HEADER}
            async with session.post("/", data=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        await _repeat(run, session, send)

    return worker


# --- item 6: multipart part flood ----------------------------------------------------------------------------

def part_flood(parts: int) -> tuple[bytes, str]:
    """An upload body of `parts` one-byte text fields (and no file)."""
    body = envelope([field_part(b"classifiers", b"x")] * parts)
    return body, f"multipart/form-data; boundary={BOUNDARY.decode()}"


# --- item 7: huge upstream pages -----------------------------------------------------------------------------

def huge_page(files: int, upstream: str) -> tuple[bytes, bytes]:
    """A PEP 691 page with `files` wheels, split around the project name: (before the name, after it)."""
    entries = [{"filename": f"huge-{i}.0-py3-none-any.whl", "url": f"{upstream}files/huge/huge-{i}.whl",
                "hashes": {"sha256": hashlib.sha256(str(i).encode()).hexdigest()}, "requires-python": None,
                "size": 1000, "yanked": False} for i in range(files)]
    doc = json.dumps({"meta": {"api-version": "1.1"}, "name": "@NAME@", "files": entries})
    before, after = doc.split("@NAME@")
    return before.encode(), after.encode()


def huge_pages_middleware(files: int) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A FakeIndex middleware: /simple/huge-<n>/ answers a `files`-file page (built once, then reused)."""
    page: dict[str, tuple[bytes, bytes]] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.path.removeprefix("/simple/").rstrip("/")
        if not (request.path.startswith("/simple/" + HUGE_PREFIX) and name.count("/") == 0):
            return await handler(request)
        if "parts" not in page:
            page["parts"] = huge_page(files, str(request.url.origin()) + "/")
        before, after = page["parts"]
        return web.Response(body=before + name.encode() + after, content_type="application/vnd.pypi.simple.v1+json")

    return middleware


async def huge_pages(run: AttackRun, session: aiohttp.ClientSession, worker: int) -> None:
    """A new huge project each time, so every request is a cache miss: fetched, parsed and rendered."""
    headers = {"Accept": "application/vnd.pypi.simple.v1+json"}

    async def send(n: int) -> int:
        async with session.get(f"/simple/{HUGE_PREFIX}{worker}-{n}/", headers=headers) as resp:
            await resp.read()
            return resp.status

    await _repeat(run, session, send)


# --- item 8: slowloris ---------------------------------------------------------------------------------------

def slowloris(host: str, port: int, connections: int, *, drip: float = 1.0) -> AttackRun:
    """`connections` connections that send a request's headers one line per `drip` seconds, never finishing;
    each one the server closes is opened again."""
    run = AttackRun("slowloris", connections)

    async def one(_i: int) -> None:
        first = True
        while not run.stop.is_set():
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection(host, port, local_addr=(ATTACKER, 0))
                if first:
                    run.started()
                    first = False
                writer.write(b"GET /simple/ HTTP/1.1\r\nHost: shadowpi\r\n")
                try:
                    while not run.stop.is_set() and not reader.at_eof():
                        writer.write(b"X-Slow: 1\r\n")
                        await writer.drain()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(reader.read(1024), drip)
                    run.note("closed by server" if reader.at_eof() else "held")
                finally:
                    writer.close()

    run.tasks.extend(asyncio.create_task(one(i), name=f"slowloris:{i}") for i in range(connections))
    return run

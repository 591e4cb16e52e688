"""The herd across replicas, measured: N clients spread round-robin over R `shadowpi serve` replicas on one
PostgreSQL database and one S3 bucket (the engines the tests start) ask at once for one cold file from an upstream
that sends at 25 MB/s. Reports upstream GETs of the file (the target: 1 for the whole cluster), correct copies,
and the time to first byte and to the last, per client (median and worst).

    .venv/bin/python bench/cluster_herd.py                     # 3 replicas, 32 clients, 50 MiB
    .venv/bin/python bench/cluster_herd.py --replicas 2 --clients 16 --mib 20

Measured on the 2-core machine (load average 5-7 from other runs), 3 replicas, 32 clients, 50 MiB: 1 upstream
GET, 32/32 correct copies, first byte median 155 ms (worst 171 ms), last byte 6.8 s (the leader's upload to
SeaweedFS comes before every follower's last byte: it is released only once the file is in the bucket).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import `proxy` and `tests` from the checkout
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import aiohttp
from aiohttp import web

from tests.engines.postgres import PostgresServer
from tests.engines.seaweed import SeaweedServer
from tests.servers import reserve_port

RATE = 25 * 10**6  # bytes/s the upstream sends the file at
CHUNK = 256 * 1024
PROJECT, FILENAME = "herdlib", "herdlib-1.0-py3-none-any.whl"


class SlowUpstream:
    """A one-project simple index whose single file trickles out at RATE; counts file GETs."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.file_gets = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/simple/", self.root)
        app.router.add_get(f"/simple/{PROJECT}/", self.page)
        app.router.add_get(f"/files/{FILENAME}", self.file)
        return app

    async def root(self, request: web.Request) -> web.Response:
        body = {"meta": {"api-version": "1.1"}, "projects": [{"name": PROJECT}]}
        return web.Response(text=json.dumps(body), content_type="application/vnd.pypi.simple.v1+json")

    async def page(self, request: web.Request) -> web.Response:
        entry = {"filename": FILENAME, "url": f"/files/{FILENAME}", "hashes": {"sha256": self.sha256},
                 "size": len(self.data)}
        body = {"meta": {"api-version": "1.1"}, "name": PROJECT, "files": [entry], "versions": ["1.0"]}
        return web.Response(text=json.dumps(body), content_type="application/vnd.pypi.simple.v1+json")

    async def file(self, request: web.Request) -> web.StreamResponse:
        self.file_gets += 1
        response = web.StreamResponse()
        response.content_length = len(self.data)
        await response.prepare(request)
        started = time.monotonic()
        for offset in range(0, len(self.data), CHUNK):
            await response.write(self.data[offset : offset + CHUNK])
            ahead = (offset + CHUNK) / RATE - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)  # pacing the upstream at RATE
        await response.write_eof()
        return response


async def replica(data_dir: Path, port: int, upstream: str, db: str, bucket: str, env: dict[str, str]
                  ) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--data-dir", str(data_dir), "--port", str(port),
        "--upstream", upstream, "--database", db, "--storage", bucket, "--log-level", "WARNING",
        env={**os.environ, **env, "SHADOWPI_UI_ENABLED": "false"}, start_new_session=True,
    )
    async with aiohttp.ClientSession() as session, asyncio.timeout(60):
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)


async def client(session: aiohttp.ClientSession, url: str) -> tuple[float, float, str]:
    """(seconds to the first body byte, seconds to the last, sha256 of the body)."""
    digest = hashlib.sha256()
    started = time.monotonic()
    first = None
    async with session.get(url) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_any():
            first = first or time.monotonic()
            digest.update(chunk)
    return (first or time.monotonic()) - started, time.monotonic() - started, digest.hexdigest()


async def run(replicas: int, clients: int, mib: int, workdir: Path) -> None:
    upstream = SlowUpstream(os.urandom(mib * 2**20))
    runner = web.AppRunner(upstream.app())
    await runner.setup()
    port = reserve_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pg, weed = PostgresServer.start(), SeaweedServer.start()
    procs: list[asyncio.subprocess.Process] = []
    try:
        db, bucket = pg.create_database(), weed.create_bucket()
        ports = [reserve_port() for _ in range(replicas)]
        for i, replica_port in enumerate(ports):
            procs.append(await replica(workdir / f"r{i}", replica_port, f"http://127.0.0.1:{port}/simple/",
                                       db.url, bucket.url, bucket.env))
        urls = [f"http://127.0.0.1:{p}/files/{PROJECT}/{upstream.sha256}/{FILENAME}" for p in ports]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for p in ports:  # pages are warm: the herd is about the file
                async with session.get(f"http://127.0.0.1:{p}/simple/{PROJECT}/") as response:
                    response.raise_for_status()
            results = await asyncio.gather(*(client(session, urls[i % replicas]) for i in range(clients)))
        ok = sum(1 for _, _, sha in results if sha == upstream.sha256)
        ttfb = sorted(r[0] * 1e3 for r in results)
        total = sorted(r[1] for r in results)
        print(f"replicas={replicas} clients={clients} file={mib} MiB upstream={RATE / 1e6:.0f} MB/s")
        print(f"upstream GETs of the file: {upstream.file_gets}; correct copies: {ok}/{clients}")
        print(f"first byte: median {statistics.median(ttfb):.0f} ms, worst {ttfb[-1]:.0f} ms")
        print(f"last byte: median {statistics.median(total):.2f} s, worst {total[-1]:.2f} s")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            await proc.wait()
        weed.stop()
        pg.stop()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--mib", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shadowpi-herd-") as workdir:
        asyncio.run(run(args.replicas, args.clients, args.mib, Path(workdir)))


if __name__ == "__main__":
    main()

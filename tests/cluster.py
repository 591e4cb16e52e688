"""Replicas of a cluster in the test process: shadowpi apps on one PostgreSQL database and one S3 bucket, each with
a data dir of its own and a real HTTP listener (other replicas stream downloads from its peer endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.app import create_app
from proxy.config import build_config
from tests.servers import reserve_port

JSON_ACCEPT = {"Accept": "application/vnd.pypi.simple.v1+json"}


@dataclass
class Replica:
    app: web.Application
    url: str


@asynccontextmanager
async def replica(
    data_dir: Path, database: str, storage: str, upstream: str, *, port: int | None = None,
    **sections: dict[str, Any],
) -> AsyncIterator[Replica]:
    """A replica listening on 127.0.0.1 (its advertise_url derived from host and port unless set)."""
    port = port or reserve_port()
    raw: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(data_dir), "host": "127.0.0.1", "port": port},
        "upstream": {"url": upstream},
        "database": {"url": database},
        "storage": {"url": storage},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    runner = web.AppRunner(create_app(build_config(raw), background=False))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        yield Replica(runner.app, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


async def file_url(session: aiohttp.ClientSession, base: str, project: str) -> str:
    """The URL of the project's first file on the replica at `base`."""
    async with session.get(f"{base}/simple/{project}/", headers=JSON_ACCEPT) as resp:
        assert resp.status == 200, await resp.text()
        page = await resp.json(content_type=None)
    return f"{base}/simple/{project}/{page['files'][0]['url']}"

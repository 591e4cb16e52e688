"""SIGHUP reloads the indexes and groups of the config file (issue 14), in one process and in every worker, without
dropping connections; a bad file keeps the indexes in use."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import Upstream
from tests.test_serve import serving

BEFORE = '[indexes.ml]\nread = ["*"]\n'
AFTER = '[indexes.ml]\nread = ["*"]\n[indexes.web]\nread = ["*"]\n'
BROKEN = '[indexes.ml]\nbases = ["nope"]\n'


async def _status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as resp:
        await resp.read()
        return resp.status


async def _until(session: aiohttp.ClientSession, url: str, status: int, tries: int) -> list[int]:
    """Polls (another process reloads): the statuses seen, ending with `status` unless it never came."""
    seen = []
    for _ in range(tries):
        seen.append(await _status(session, url))
        if seen[-1] == status:
            break
        await asyncio.sleep(0.1)  # waiting on another process: polling with a deadline
    return seen


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sighup_reloads_indexes_and_keeps_them_on_a_bad_file(tmp_path: Path, upstream: Upstream, workers: str):
    """A new [indexes.web] serves after SIGHUP on every worker, and the server keeps running; a broken file logs one
    line naming the key and changes nothing."""
    config = tmp_path / "shadowpi.toml"
    config.write_text(BEFORE)
    async with serving(tmp_path / "d", upstream, "--config", str(config), "--workers", workers) as server:
        async with aiohttp.ClientSession() as session:
            web = server.url + "/index/web/simple/"
            assert await _status(session, web) == 404
            config.write_text(AFTER)
            server.proc.send_signal(signal.SIGHUP)
            for _ in range(int(workers) * 4):  # every worker answers 200 (connections spread over workers)
                async with aiohttp.ClientSession() as fresh:
                    assert (await _until(fresh, web, 200, 100))[-1] == 200
            config.write_text(BROKEN)
            server.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)  # nothing observable must change: give the reload time to be refused
            assert await _status(session, web) == 200
            assert await _status(session, server.url + "/index/ml/simple/") == 200
        assert await server.stop() == 0
    assert any("reload refused" in line and "indexes.ml.bases" in line for line in server.output)

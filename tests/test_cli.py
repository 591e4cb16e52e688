"""The command line as users run it: --version, config errors without tracebacks, serve and SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from proxy import __version__
from tests.clients import clean_env, run
from tests.conftest import Upstream
from tests.servers import reserve_port, wait_until_serving


async def shadowpi(*args: str) -> tuple[int, str, str]:
    return await run(sys.executable, "-m", "proxy", *args, timeout=60)


async def test_version():
    """--version prints the version."""
    code, out, _err = await shadowpi("--version")
    assert code == 0
    assert out.strip() == f"shadowpi {__version__}"


async def test_bad_config_is_one_line_without_traceback(tmp_path: Path):
    """A bad config stops start-up with exit code 2 and one line naming the key."""
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nprot = 8080\n")
    code, _out, err = await shadowpi("serve", "--config", str(config))
    assert code == 2
    assert err.strip() == "shadowpi: config error: server.prot: unknown key (known: host, port, data_dir, workers)"


async def test_bad_flag_value_is_a_config_error(tmp_path: Path):
    """Flags are validated like the file: a bad --upstream URL names upstream.url."""
    code, _out, err = await shadowpi("serve", "--upstream", "ftp://x", "--data-dir", str(tmp_path))
    assert code == 2
    assert "upstream.url" in err
    assert "Traceback" not in err


async def test_unwritable_data_dir_is_refused(tmp_path: Path):
    """A data dir that cannot be created/written stops start-up naming server.data_dir."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _out, err = await shadowpi("serve", "--data-dir", str(blocker / "sub"))
    assert code == 2
    assert "server.data_dir" in err
    assert "Traceback" not in err


async def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path, populated_upstream: Upstream):
    """`shadowpi serve` with flags serves pages from the upstream, then exits 0 on SIGTERM."""
    port = reserve_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d"),
        "--upstream", populated_upstream.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):  # wait for the "serving" log line, not a fixed sleep
            while b"serving http://127.0.0.1" not in await proc.stdout.readline():
                pass
        await wait_until_serving(proc, f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/simple/tinylib/") as resp:
            assert resp.status == 200
            assert "tinylib-1.0-py3-none-any.whl" in await resp.text()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert list((tmp_path / "d" / "tmp").iterdir()) == []

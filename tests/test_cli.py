"""The command line as users run it: --version, config errors without tracebacks, serve and SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from proxy import __version__
from tests.clients import clean_env, run
from tests.conftest import Upstream
from tests.servers import reserve_port


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
    assert err.strip() == (
        "shadowpi: config error: server.prot: unknown key (known: host, port, data_dir, workers, header_timeout,"
        " max_connections, max_connections_per_client, advertise_url)"
    )


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
    """`shadowpi serve` with flags logs "serving" only once the socket is bound (the very next request is
    answered, no retrying), serves pages from the upstream, then exits 0 on SIGTERM."""
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
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                assert resp.status == 200
            async with session.get(f"http://127.0.0.1:{port}/simple/tinylib/") as resp:
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


# --- start-up mistakes end in one line (issue 10, items 9 and 22) --------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "shadowpi: config error: auth.htpasswd: cannot read {path}: No such file or directory"),
        ("alice:$apr1$abcdefgh$0123456789abcdefghijkl\n",
         "shadowpi: config error: {path}:1: user 'alice' uses a weak password scheme ($apr1$ MD5);"
         " recreate it with `htpasswd -B`"),
    ],
)
@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_bad_htpasswd_exits_2_at_once(tmp_path: Path, content: str | None, message: str, workers: str):
    """A missing htpasswd file or a non-bcrypt entry: exit 2 with one line, before anything listens (it used to
    print the error and hang forever without listening)."""
    htpasswd = tmp_path / "htpasswd"
    if content is not None:
        htpasswd.write_text(content)
    code, out, err = await shadowpi("serve", "--data-dir", str(tmp_path / "d"), "--port", str(reserve_port()),
                                    "--htpasswd", str(htpasswd), "--workers", workers, "--log-level", "WARNING")
    assert (code, out, err) == (2, "", message.format(path=htpasswd) + "\n")


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_busy_port_is_one_line_and_no_serving_claim(tmp_path: Path, workers: str):
    """A port another program listens on: one line naming the address, exit 1, and never "serving"."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = await shadowpi("serve", "--data-dir", str(tmp_path / "d"), "--port", str(port),
                                        "--workers", workers, "--log-level", "WARNING")
    assert (code, out) == (1, "")
    assert err == (f"shadowpi: cannot listen on 127.0.0.1:{port}: the address is already in use"
                   " (another shadowpi? choose another --port)\n")


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_damaged_database_is_one_line_and_exits(tmp_path: Path, workers: str):
    """A start-up failure past validation (here a database file that is not SQLite) ends the process with one
    line and exit 1: no traceback, and never a live process that does not listen."""
    data = tmp_path / "d"
    data.mkdir()
    (data / "shadowpi.sqlite3").write_bytes(b"not a database " * 1000)
    code, out, err = await shadowpi("serve", "--data-dir", str(data), "--port", str(reserve_port()),
                                    "--workers", workers, "--log-level", "WARNING", "--offline")
    assert (code, out) == (1, "")
    assert err == "shadowpi: cannot run: DatabaseError: file is not a database (--log-level DEBUG shows where)\n"


# --- which data dir (issue 10, item 26) ---------------------------------------------------------------------


async def test_every_command_names_its_data_dir_and_the_default_does_not_depend_on_the_directory(tmp_path: Path):
    """`token create` in one directory and `token list` in another use the same default data dir (per user,
    absolute), and both say which on stderr."""
    home, here, elsewhere = tmp_path / "home", tmp_path / "here", tmp_path / "elsewhere"
    for folder in (home, here, elsewhere):
        folder.mkdir()
    env = {**clean_env(), "HOME": str(home)}
    env.pop("XDG_DATA_HOME", None)
    env.pop("SHADOWPI_SERVER_DATA_DIR", None)
    expected = f"shadowpi: data dir {home}/.local/share/shadowpi (default: ~/.local/share/shadowpi)\n"
    created = await run(sys.executable, "-m", "proxy", "token", "create", "--user", "ci", env=env, cwd=here)
    assert (created.returncode, created.stderr) == (0, expected)
    listed = await run(sys.executable, "-m", "proxy", "token", "list", env=env, cwd=elsewhere)
    assert (listed.returncode, listed.stderr) == (0, expected)
    assert " ci " in listed.stdout
    assert not (here / "shadowpi-data").exists() and not (elsewhere / "shadowpi-data").exists()


async def test_shadowpi_token_in_the_environment_is_not_a_setting(tmp_path: Path):
    """SHADOWPI_TOKEN (exported for twine, as the README says) does not stop any command; a misspelt setting
    is a warning, not an error."""
    env = {**clean_env(), "SHADOWPI_TOKEN": "spi_x", "SHADOWPI_UPSTREAM_PAGETTL": "5"}
    result = await run(sys.executable, "-m", "proxy", "token", "list", "--data-dir", str(tmp_path / "d"), env=env)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "shadowpi: warning: SHADOWPI_UPSTREAM_PAGETTL is not a setting and is ignored;"
        " did you mean SHADOWPI_UPSTREAM_PAGE_TTL?",
        f"shadowpi: data dir {tmp_path / 'd'} (--data-dir)",
    ]

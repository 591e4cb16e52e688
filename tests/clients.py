"""Run real pip and uv as async subprocesses with an environment isolated from this machine's config."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from tests import leaks

DEFAULT_TIMEOUT = 120.0
_LOCAL = "127.0.0.1,localhost,::1"


class RunResult(NamedTuple):
    """A finished subprocess; unpacks as (returncode, stdout, stderr)."""

    returncode: int
    stdout: str
    stderr: str


def clean_env(*, outlives_test: bool = False) -> dict[str, str]:
    """os.environ without PIP_*/UV_* variables, with every pip/uv config file and cache switched off.

    Proxies are bypassed for loopback, since tests only ever talk to servers on 127.0.0.1.
    """
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PIP_", "UV_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
        PIP_NO_INPUT="1",
        UV_NO_CACHE="1",
        NO_PROXY=_LOCAL,
        no_proxy=_LOCAL,
    )
    # A process left running after its test is found and blamed (tests/leaks.py).
    env.update(leaks.tag(outlives_test=outlives_test))
    return env


def uv_command() -> list[str]:
    """argv prefix for the uv shipped in this interpreter's environment."""
    found = shutil.which("uv", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "uv"]


async def run(
    *argv: str,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - on expiry the child must be killed, not orphaned
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> RunResult:
    """Run argv without blocking the event loop (in-process servers keep serving); kill it on timeout.

    Raises TimeoutError naming the command when it outlives `timeout` seconds.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**env, **leaks.tag()} if env is not None else clean_env(),
        cwd=cwd,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TimeoutError(f"{argv!r} did not finish within {timeout} s") from None
    assert proc.returncode is not None
    return RunResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def run_pip(
    *args: str,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - on expiry the child must be killed, not orphaned
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> RunResult:
    """`python -m pip <args>` with clean_env() unless env is given."""
    return await run(sys.executable, "-m", "pip", *args, timeout=timeout, env=env, cwd=cwd)


async def run_uv(
    *args: str,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - on expiry the child must be killed, not orphaned
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> RunResult:
    """`uv --no-config <args>` with clean_env() unless env is given."""
    return await run(*uv_command(), "--no-config", *args, timeout=timeout, env=env, cwd=cwd)

"""A fuzz target that is a real `shadowpi serve` process (the production server path: run_app, access log, JSON
logs), for bench/fuzz.py, the attack runs and the findings that only the real server shows."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from tests.clients import clean_env
from tests.fuzzkit.harness import HOST, LoopThread, Surface, prepare_credentials
from tests.servers import reserve_port

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy


def _toml(raw: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, values in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]  # JSON scalars are TOML too
    return "\n".join(lines) + "\n"


def problem_lines(lines: list[str]) -> list[str]:
    """The JSON log lines that report a problem: ERROR and above, or a traceback."""
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # not one of our JSON lines: something printed straight to the stream
            if line.strip():
                found.append(f"non-JSON line: {line.rstrip()}")
            continue
        if entry.get("level") in {"ERROR", "CRITICAL"} or "exc" in entry or "Traceback" in str(entry.get("message")):
            found.append(f"{entry.get('level')} {entry.get('logger')}: {entry.get('message')}\n{entry.get('exc', '')}")
    return found


class ServeTarget:
    """`python -m proxy serve` on a free port with this surface's configuration; its log goes to a file."""

    def __init__(
        self, surface: Surface, root: Path, upstream_url: str, *, extra: tuple[str, ...] = (),
        nofile: int | None = None, outlives_test: bool = False,
    ) -> None:
        self.surface = surface
        self.host = HOST
        self.port = reserve_port()  # not bind(0)-and-close: another server may be handed it meanwhile (item 30)
        self._outlives_test = outlives_test  # started by a module-scoped fixture: see tests/leaks.py
        self.data_dir = root / surface.name / "data"
        self._root = root / surface.name
        self._upstream_url = upstream_url
        self._extra = extra
        self._nofile = nofile  # RLIMIT_NOFILE (soft and hard) for the server, like a host with a low fd limit
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[str] | None = None
        self._partial = ""
        self.exit_code: int | None = None  # set by whoever stops it

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, loops: LoopThread, timeout: float = 30.0) -> None:
        prepare_credentials(self.surface, self.data_dir, loops)
        raw = self.surface.config(self.data_dir, self._upstream_url)
        raw["server"]["port"] = self.port
        raw["logging"] = {"format": "json"}
        config = self._root / "shadowpi.toml"
        config.write_text(_toml(raw))
        log_path = self._root / "serve.log"
        with log_path.open("wb") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "proxy", "serve", "--config", str(config), *self._extra],
                stdout=out, stderr=subprocess.STDOUT, env=clean_env(outlives_test=self._outlives_test),
                start_new_session=True,
                preexec_fn=self._limit_files if self._nofile is not None else None,
            )
        self._log = log_path.open(encoding="utf-8", errors="replace")
        self._wait_healthy(timeout)

    def _limit_files(self) -> None:
        assert self._nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self._nofile, self._nofile))

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:  # polling another process until its socket is bound
            try:
                with _DIRECT.open(f"http://{self.host}:{self.port}/health", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline or (self._proc is not None and self._proc.poll() is not None):
                raise RuntimeError(f"shadowpi serve did not start: {self.take_log()}")
            time.sleep(0.05)

    def settle(self, timeout: float = 60.0) -> None:
        """Poll (another process) until no spool is left and no download is in flight, or the deadline passes."""
        deadline = time.monotonic() + timeout
        tmp = self.data_dir / "tmp"
        while time.monotonic() < deadline:
            if not (tmp.exists() and any(tmp.iterdir())) and self._downloads_in_flight() == 0:
                return
            time.sleep(0.02)

    def _downloads_in_flight(self) -> int:
        request = urllib.request.Request(f"http://{self.host}:{self.port}/ready")
        request.add_header("Authorization", "Basic YWxpY2U6cHc=")  # alice:pw, in case /ready needs credentials
        try:
            with _DIRECT.open(request, timeout=10) as resp:
                return int(json.loads(resp.read()).get("downloads_in_flight", 0))
        except urllib.error.HTTPError as exc:
            return int(json.loads(exc.read() or b"{}").get("downloads_in_flight", 0))
        except (urllib.error.URLError, OSError, ValueError):
            return 0

    def take_log(self) -> list[str]:
        if self._log is None:
            return []
        text = self._partial + self._log.read()
        complete, _, self._partial = text.rpartition("\n")  # a line still being written waits for the next call
        return problem_lines(complete.splitlines())

    def stop(self, grace: float = 40.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
        if self._proc is None:
            return 0
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGTERM)
        try:
            code = self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            code = self._proc.wait()
        if self._log is not None:
            self._log.close()
        return code

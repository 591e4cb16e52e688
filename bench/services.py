"""The processes a benchmark run starts (nginx upstream, nginx proxy_cache, shadowpi) and what /proc says about them.

Every process is started in its own session (process group) and registered with a `Supervisor`, whose `close()`
signals each group (SIGTERM, then SIGKILL after a grace period). `close()` runs from `finally`, so Ctrl-C or an
exception anywhere still stops nginx's master and workers and shadowpi.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
CLK_TCK = os.sysconf("SC_CLK_TCK")
# urllib would otherwise honour http_proxy: every request here goes straight to 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def find_tool(name: str) -> str | None:
    return shutil.which(name, path=SBIN_PATH)


def ensure_tools(log: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Paths of nginx and wrk, installing them from Debian (apt-get) when one is missing."""
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if nginx and wrk:
        return nginx, wrk
    if os.geteuid() != 0 or not find_tool("apt-get"):
        sys.exit("bench: nginx and wrk are needed: apt-get install -y nginx-light wrk (as root)")
    if log:
        log("installing nginx-light and wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env)  # noqa: S607 - apt-get from PATH, as documented
    result = subprocess.run(["apt-get", "install", "-y", "nginx-light", "wrk"], check=False, env=env)  # noqa: S607
    if result.returncode != 0:  # newer Debian releases dropped nginx-light: plain nginx has what we need
        subprocess.run(["apt-get", "install", "-y", "nginx", "wrk"], check=True, env=env)  # noqa: S607
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if not (nginx and wrk):
        sys.exit("bench: apt-get finished but nginx or wrk is still missing")
    return nginx, wrk


def free_port() -> int:
    """A loopback port for a server started next, reserved against every other bind(0) on the host meanwhile.

    A port that is merely closed may be handed to any test or bench server of another run before ours binds it,
    and then our probes talk to a stranger (issue 10, item 30). Leaving the port's accepted side in TIME_WAIT
    keeps the kernel's ephemeral-port search off it for a minute, while nginx and shadowpi, which bind with
    SO_REUSEADDR, can still take it. (The same trick as tests/servers.py::reserve_port.)
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = listener.getsockname()
        with socket.create_connection(address) as client:
            accepted, _ = listener.accept()
            accepted.close()  # this side closes first, so it is the one left in TIME_WAIT
            client.recv(1)
        port: int = address[1]
        return port


@dataclass(slots=True)
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervisor:
    """Owns every long-running process of a run; `close()` stops them all."""

    services: list[Service] = field(default_factory=list)

    def start(self, name: str, argv: list[str], log_path: Path, *, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Service:
        with log_path.open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=cwd, env=env, start_new_session=True)
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def close(self) -> None:
        """Stop every group, newest first. A second Ctrl-C cannot cut this short."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for service in reversed(self.services):
                _stop_group(service.process)
            self.services.clear()
        finally:
            signal.signal(signal.SIGINT, previous)


def _stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    pgid = process.pid  # start_new_session: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    # Workers may outlive their master for a moment; nothing of the group may survive the run.
    deadline = time.monotonic() + grace
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_ready(service: Service, url: str, timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200; fail with the service's log when it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}")
        try:
            with _DIRECT.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{service.name} did not answer {url} within {timeout:g}s:\n{service.log_tail()}")


# ---- /proc ------------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on; comm may contain spaces


def descendants(pid: int) -> list[int]:
    """All processes below `pid` (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found


def process_tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def nginx_workers(master: int) -> list[int]:
    workers = []
    for child in descendants(master):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"nginx: worker process"):
                workers.append(child)
    return workers


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU time of these processes (utime and stime, fields 14 and 15 of /proc/<pid>/stat)."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def scheduling(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds, times scheduled) summed over every thread of these processes, from
    /proc/<pid>/task/<tid>/schedstat (run time ns, run-queue wait ns, timeslices). "Times scheduled" counts
    wake-ups: each thread hand-off on a request's path is one more, and on a busy machine each waits for a CPU."""
    cpu_ns = slices = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    run_ns, _wait_ns, count = (int(x) for x in (task / "schedstat").read_text().split())
                    cpu_ns += run_ns
                    slices += count
    return cpu_ns / 1e9, slices


def rss_bytes(pids: list[int], key: str = "VmRSS") -> int:
    """Sum of a /proc/<pid>/status memory field (VmRSS, VmHWM) over these processes, in bytes."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(key + ":"):
                total += int(line.split()[1]) * 1024
    return total


# ---- configuration -----------------------------------------------------------------------------------------


def nginx_temp_paths(nginx: str, prefix: Path) -> str:
    """Temp-path directives for every module this nginx has, so nothing is written under /var/lib/nginx."""
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False).stderr
    temp = prefix / "temp"
    lines = [f"client_body_temp_path {temp / 'body'};", f"proxy_temp_path {temp / 'proxy'};"]
    for module in ("fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{module}_module" not in built:
            lines.append(f"{module}_temp_path {temp / module};")
    return "\n    ".join(lines)


def render_nginx_conf(template: str, prefix: Path, nginx: str, values: dict[str, str]) -> Path:
    """Fill `bench/<template>` (@NAME@ placeholders) and write it as `<prefix>/nginx.conf`."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "temp").mkdir(exist_ok=True)
    user = pwd.getpwuid(os.geteuid()).pw_name
    values = {
        "PREFIX": str(prefix),
        # As root, nginx would switch its workers to `nobody`, which cannot read the cache or the temp dir.
        "USER": f"user {user};" if os.geteuid() == 0 else "",
        "TEMP_PATHS": nginx_temp_paths(nginx, prefix),
        **values,
    }
    text = (BENCH_DIR / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.search(r"@(?!PLACEHOLDER@)[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"{template}: no value for {leftover.group()}")
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def start_nginx(supervisor: Supervisor, name: str, nginx: str, conf: Path, port: int, probe: str) -> Service:
    prefix = conf.parent
    service = supervisor.start(name, [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                               prefix / "stderr.log")
    wait_ready(service, f"http://127.0.0.1:{port}{probe}")
    return service


def start_shadowpi(supervisor: Supervisor, name: str, *, port: int, data_dir: Path, upstream: str,
                   workers: int, log_path: Path, ui: bool = True, offline: bool = False) -> Service:
    argv = [sys.executable, "-m", "proxy", "serve", "--data-dir", str(data_dir), "--upstream", upstream,
            "--port", str(port), "--log-level", os.environ.get("BENCH_SHADOWPI_LOG", "WARNING")]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if offline:
        argv.append("--offline")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["SHADOWPI_UI_ENABLED"] = "true" if ui else "false"
    service = supervisor.start(name, argv, log_path, cwd=REPO, env=env)
    wait_ready(service, f"http://127.0.0.1:{port}/health")
    return service


def start_floor(supervisor: Supervisor, *, port: int, upstream: str, log_path: Path) -> Service:
    """bench/floor.py: a bare aiohttp proxy, shadowpi's stack without shadowpi's work (the aiohttp floor)."""
    argv = [sys.executable, str(BENCH_DIR / "floor.py"), "--port", str(port), "--upstream", upstream]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    service = supervisor.start("aiohttp floor", argv, log_path, cwd=REPO, env=env)
    wait_ready(service, f"http://127.0.0.1:{port}/health")
    return service


def start_verified_floor(supervisor: Supervisor, *, port: int, upstream: str, data_dir: Path,
                         log_path: Path) -> Service:
    """bench/verified_floor.py: the aiohttp floor plus the work of shadowpi's guarantees for files, nothing else."""
    argv = [sys.executable, "-m", "bench.verified_floor", "--port", str(port), "--upstream", upstream,
            "--data-dir", str(data_dir)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    service = supervisor.start("verified floor", argv, log_path, cwd=REPO, env=env)
    wait_ready(service, f"http://127.0.0.1:{port}/health")
    return service

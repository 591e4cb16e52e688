"""What users feel (issue 11): installs of 30 projects by name with --no-deps, and what one request costs the server.

Besides wall time, every install row records the server's CPU time and how many times its threads were
scheduled (wake-ups, from /proc/<pid>/task/*/schedstat). A request whose path hands work between threads
(an executor, a database thread, the event loop) is scheduled several times; on a busy machine every one of
those waits for a CPU, so wake-ups per request predict how much slower a server gets under contention.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time
from urllib.parse import urljoin, urlsplit

from bench import corpus
from bench.loadgen import JSON_ACCEPT, PIP_HEADERS, get
from bench.scenarios import Context, Metrics, Target, _check_installed, _expect, clean_env
from bench.services import scheduling

KEEPALIVE_REQUESTS = 300  # per request kind, on one connection, after a warm-up round
FRESH_CONNECTIONS = 50  # idle single requests, each on a new connection


def _measured(target: Target, argv: list[str], what: str) -> tuple[float, float, int]:
    """(wall seconds, server CPU seconds, server wake-ups) of one client command."""
    pids = target.pids()
    cpu0, woke0 = scheduling(pids)
    start = time.perf_counter()
    result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.perf_counter() - start
    cpu1, woke1 = scheduling(pids)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed, cpu1 - cpu0, woke1 - woke0


def _pip(ctx: Context, target: Target, verb: str, label: str) -> tuple[float, float, int]:
    dest = ctx.work / f"{target.name}-nodeps-pip-{verb}-{label}"
    where = ["--target", str(dest), "--no-compile"] if verb == "install" else ["--dest", str(dest)]
    argv = [sys.executable, "-m", "pip", verb, "--isolated", "--disable-pip-version-check", "--no-input",
            "--no-cache-dir", "--no-deps", "--quiet", "--index-url", target.index_url, *where, *corpus.NODEPS_PIP]
    measured = _measured(target, argv, f"pip {verb} --no-deps via {target.name} ({label})")
    if verb == "install":
        _check_installed(dest, corpus.NODEPS_PIP, f"pip --no-deps via {target.name}")
    elif len(list(dest.glob("*.whl"))) != len(corpus.NODEPS_PIP):
        raise RuntimeError(f"pip download via {target.name}: {len(list(dest.glob('*.whl')))} wheels")
    return measured


def _uv(ctx: Context, target: Target, uv: str, label: str) -> tuple[float, float, int]:
    venv = ctx.work / f"{target.name}-nodeps-uv-{label}"
    quiet = ["--no-config", "--no-cache", "--quiet"]
    subprocess.run([uv, "venv", *quiet, "--python", sys.executable, str(venv)], env=clean_env(), check=True,
                   capture_output=True, timeout=120)
    argv = [uv, "pip", "install", *quiet, "--no-deps", "--python", str(venv / "bin" / "python"), "--index-url",
            target.index_url, *corpus.NODEPS_UV]
    measured = _measured(target, argv, f"uv pip install --no-deps via {target.name} ({label})")
    sites = list(venv.glob("lib/python*/site-packages"))
    _check_installed(sites[0], corpus.NODEPS_UV, f"uv --no-deps via {target.name}")
    return measured


def _rows(prefix: str, measured: tuple[float, float, int], requests: int) -> Metrics:
    elapsed, cpu, woke = measured
    return {f"{prefix}_s": elapsed, f"{prefix}_cpu_ms": cpu * 1000, f"{prefix}_wakeups_per_req": woke / requests}


def nodeps_installs(ctx: Context, target: Target) -> Metrics:
    """pip install cold/warm, pip download warm, uv pip install cold/warm: 30 projects by name, --no-deps."""
    requests = 3 * len(corpus.NODEPS_PIP)  # a page, a .metadata and a wheel per project
    out = _rows("nodeps.pip_install_cold", _pip(ctx, target, "install", "cold"), requests)
    out |= _rows("nodeps.pip_install_warm", _pip(ctx, target, "install", "warm"), requests)
    out |= _rows("nodeps.pip_download_warm", _pip(ctx, target, "download", "warm"), requests)
    if ctx.uv is not None:
        out |= _rows("nodeps.uv_install_cold", _uv(ctx, target, ctx.uv, "cold"), requests)
        out |= _rows("nodeps.uv_install_warm", _uv(ctx, target, ctx.uv, "warm"), requests)
    return out


def _warm_paths(target: Target) -> dict[str, list[str]]:
    """Paths of a page, a wheel and its .metadata for each no-deps project (all cached by the installs)."""
    paths: dict[str, list[str]] = {"page": [], "metadata": [], "wheel": []}
    for project in corpus.NODEPS_PIP:
        url = f"{target.index_url}{project}/"
        page = _expect(get(url, JSON_ACCEPT, keep_body=True), f"{target.name} {url}")
        wheel = urlsplit(urljoin(url, json.loads(page.body or b"{}")["files"][-1]["url"])).path
        paths["page"].append(urlsplit(url).path)
        paths["wheel"].append(wheel)
        paths["metadata"].append(wheel + ".metadata")
    return paths


def _keepalive_cost(target: Target, paths: list[str]) -> tuple[float, float, float]:
    """(p50 ms, CPU µs, wake-ups) per request, sequential on one keep-alive connection."""
    host = urlsplit(target.index_url)
    conn = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=30)
    try:
        for path in paths:  # warm-up: every path once
            conn.request("GET", path, headers=PIP_HEADERS)
            conn.getresponse().read()
        latencies = []
        cpu0, woke0 = scheduling(target.pids())
        for i in range(KEEPALIVE_REQUESTS):
            start = time.perf_counter()
            conn.request("GET", paths[i % len(paths)], headers=PIP_HEADERS)
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"{target.name}: {paths[i % len(paths)]} answered {response.status}")
        cpu1, woke1 = scheduling(target.pids())
    finally:
        conn.close()
    n = KEEPALIVE_REQUESTS
    return statistics.median(latencies) * 1000, (cpu1 - cpu0) / n * 1e6, (woke1 - woke0) / n


def request_costs(ctx: Context, target: Target) -> Metrics:
    """An idle single page request on a fresh connection, and per-request latency, CPU and wake-ups when warm."""
    paths = _warm_paths(target)
    fresh = [get(f"{target.index_url}{corpus.NODEPS_PIP[0]}/", PIP_HEADERS).total for _ in range(FRESH_CONNECTIONS)]
    out: Metrics = {"cost.idle_page_ms": statistics.median(fresh) * 1000}
    for kind, kind_paths in paths.items():
        p50, cpu_us, woke = _keepalive_cost(target, kind_paths)
        out |= {f"cost.{kind}_p50_ms": p50, f"cost.{kind}_cpu_us": cpu_us, f"cost.{kind}_wakeups": woke}
    return out


# Run after the other scenarios: request_costs reads what nodeps_installs cached.
SCENARIOS = [
    ("installs, 30 projects --no-deps", nodeps_installs),
    ("request costs", request_costs),
]

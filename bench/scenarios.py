"""The measured scenarios. Each takes the run's context and one target (shadowpi or the nginx reference) and
returns {metric key: value}; `bench/report.py` knows each key's label, unit and which direction is better."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from bench import corpus
from bench.corpus import Project, Sizes
from bench.loadgen import JSON_ACCEPT, PIP_HEADERS, Response, download_for, get, run_wrk, together
from bench.services import cpu_seconds, rss_bytes

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    quick: bool
    runs: int
    workers: int
    sizes: Sizes
    wrk_seconds: float
    download_seconds: float
    herd_clients: int = 32
    wrk_connections: int = 32
    wrk_threads: int = 2
    slow_rate: str = "25m"
    only: tuple[str, ...] = ()  # scenario titles containing any of these (empty: every scenario)

    def runs_scenario(self, title: str) -> bool:
        return not self.only or any(word in title for word in self.only)


@dataclass(frozen=True, slots=True)
class Target:
    """A server under test: where its index is, and which processes do its work."""

    name: str  # "shadowpi" or "nginx"
    index_url: str  # http://127.0.0.1:<port>/simple/
    slow_index_url: str  # the same index, but files come from the rate-limited upstream location
    pids: Callable[[], list[int]]


@dataclass(frozen=True, slots=True)
class LogEntry:
    via: str  # "nginx", "shadowpi" or "other"
    method: str
    path: str
    status: int
    size: int


class UpstreamLog:
    """The upstream nginx's access log (format `bench` in nginx-upstream.conf.in), read from an offset."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def since(self, offset: int, settle: float = 0.2) -> list[LogEntry]:
        time.sleep(settle)  # nginx logs a request when it completes; let the last ones land
        with self.path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode("utf-8", "replace").splitlines()
        entries = []
        for line in lines:
            via, agent, method, path, status, size = line.split("|")
            who = "nginx" if via == "nginx" else "shadowpi" if agent.startswith("shadowpi/") else "other"
            entries.append(LogEntry(who, method, path, int(status), int(size)))
        return entries


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    projects: dict[str, Project]
    upstream_log: UpstreamLog
    wrk: str
    uv: str | None
    work: Path  # scratch space of this run (install targets, venvs)
    log: Callable[[str], None]
    # A second shadowpi with [ui] enabled = false, started only when NO_UI_TITLE runs: the same page's throughput
    # without the web interface, in the same run (issue 15: pages must not slow the simple API).
    no_ui: Target | None = None
    upstream_url: str = ""  # the upstream nginx itself (http://127.0.0.1:<port>): its own time to first byte


Metrics = dict[str, float]
Scenario = Callable[[Context, Target], Metrics]


def page_url(target: Target, project: str, *, slow: bool = False) -> str:
    return f"{target.slow_index_url if slow else target.index_url}{project}/"


def file_urls(target: Target, project: str, *, slow: bool = False) -> dict[str, str]:
    """filename -> URL on the target, from the target's own JSON page. Absolute links to another host (an
    upstream's own URLs) are rewritten to the target's host, as a client of that proxy would see them."""
    url = page_url(target, project, slow=slow)
    response = get(url, JSON_ACCEPT, keep_body=True)
    if response.status != 200 or response.body is None:
        raise RuntimeError(f"{target.name}: {url} answered {response.status}")
    host = urlsplit(url)
    urls = {}
    for item in json.loads(response.body)["files"]:
        link = urlsplit(urljoin(url, item["url"]))
        urls[item["filename"]] = urlunsplit((host.scheme, host.netloc, link.path, link.query, ""))
    return urls


def _expect(response: Response, what: str, status: int = 200) -> Response:
    if response.status != status:
        raise RuntimeError(f"{what}: HTTP {response.status}")
    return response


def _upstream_requests(ctx: Context, target: Target, offset: int, suffix: str = "") -> list[LogEntry]:
    return [e for e in ctx.upstream_log.since(offset) if e.via == target.name and e.path.endswith(suffix)]


# ---- pages ----------------------------------------------------------------------------------------------


def _warm_page(ctx: Context, target: Target, project: str, prefix: str) -> Metrics:
    url = page_url(target, project)
    for _ in range(2):  # the first request fills the cache, the second proves it answers
        warm = _expect(get(url, PIP_HEADERS), f"{target.name} {url}")
    pids = target.pids()
    before = cpu_seconds(pids)
    s = ctx.settings
    result = run_wrk(ctx.wrk, url, connections=s.wrk_connections, threads=s.wrk_threads, seconds=s.wrk_seconds,
                     headers=PIP_HEADERS)
    cpu = cpu_seconds(pids) - before
    if result.bad:
        ctx.log(f"warning: {target.name} {url}: {result.bad} failed requests under wrk")
    return {
        f"{prefix}.rps": result.rps,
        f"{prefix}.p50_ms": result.p50_ms,
        f"{prefix}.p99_ms": result.p99_ms,
        f"{prefix}.cpu_per_1k": cpu / result.requests * 1000 if result.requests else float("nan"),
        f"{prefix}.bytes": warm.size,
    }


def warm_small_page(ctx: Context, target: Target) -> Metrics:
    return _warm_page(ctx, target, corpus.SMALL, "page5")


def warm_small_page_no_ui(ctx: Context, target: Target) -> Metrics:
    """The warm 5-file page from a shadowpi without the web interface (nothing to measure on nginx)."""
    if target.name != "shadowpi" or ctx.no_ui is None:
        return {}
    measured = _warm_page(ctx, ctx.no_ui, corpus.SMALL, "page5_noui")
    return {k: v for k, v in measured.items() if not k.endswith(".bytes")}


def warm_many_page(ctx: Context, target: Target) -> Metrics:
    return _warm_page(ctx, target, corpus.MANY, "page5000")


def cold_pages(ctx: Context, target: Target) -> Metrics:
    offset = ctx.upstream_log.mark()
    times = []
    for project in corpus.COLD:
        url = page_url(target, project)
        times.append(_expect(get(url, PIP_HEADERS), f"{target.name} {url}").total)
    upstream = _upstream_requests(ctx, target, offset)
    return {"cold_page.p50_ms": statistics.median(times) * 1e3,
            "cold_page.upstream": len(upstream) / len(corpus.COLD)}


# ---- downloads ------------------------------------------------------------------------------------------


def _one_file(ctx: Context, target: Target, project: str, *, slow: bool = False) -> tuple[str, corpus.DistEntry]:
    entry = ctx.projects[project].files[0]
    return file_urls(target, project, slow=slow)[entry.filename], entry


def cold_download(ctx: Context, target: Target) -> Metrics:
    url, entry = _one_file(ctx, target, corpus.BIG_COLD)
    response = _expect(get(url, hash_body=True), f"{target.name} {url}")
    if response.sha256 != entry.sha256:
        raise RuntimeError(f"{target.name}: {entry.filename} arrived with the wrong sha256")
    metrics = {"cold_dl.ttfb_ms": response.ttfb * 1e3, "cold_dl.total_s": response.total}
    if ctx.upstream_url:  # the target's first byte over upstream's own (issue 11: at most 2 ms over)
        direct = _expect(get(f"{ctx.upstream_url}/files/{corpus.BIG_COLD}/{entry.filename}"), "upstream")
        metrics["cold_dl.upstream_ttfb_ms"] = direct.ttfb * 1e3
        metrics["cold_dl.ttfb_over_upstream_ms"] = (response.ttfb - direct.ttfb) * 1e3
    return metrics


def warm_download(ctx: Context, target: Target) -> Metrics:
    """Runs after cold_download: the same file, now cached."""
    url, entry = _one_file(ctx, target, corpus.BIG_COLD)
    seconds = ctx.settings.download_seconds
    return {
        "warm_dl_1.gbps": download_for(url, 1, seconds, entry.size) / 1e9,
        "warm_dl_8.gbps": download_for(url, 8, seconds, entry.size) / 1e9,
    }


def _herd(ctx: Context, target: Target, *, slow: bool) -> Metrics:
    url, entry = _one_file(ctx, target, corpus.HERD_SLOW if slow else corpus.HERD_FAST, slow=slow)
    offset = ctx.upstream_log.mark()

    def client(_index: int) -> Response | None:
        try:
            return get(url, hash_body=True)
        except (OSError, ValueError):
            return None

    responses = together(ctx.settings.herd_clients, client)
    gets = [e for e in _upstream_requests(ctx, target, offset, entry.filename) if e.method == "GET"]
    done = [r for r in responses if r is not None]
    ok = sum(1 for r in done if r.status == 200 and r.size == entry.size and r.sha256 == entry.sha256)
    prefix = "herd_slow" if slow else "herd_fast"
    return {
        f"{prefix}.upstream_gets": len(gets),
        f"{prefix}.ok": ok,
        f"{prefix}.ttfb_p50_ms": statistics.median(r.ttfb for r in done) * 1e3 if done else float("nan"),
        f"{prefix}.total_p50_s": statistics.median(r.total for r in done) if done else float("nan"),
    }


def herd_fast(ctx: Context, target: Target) -> Metrics:
    return _herd(ctx, target, slow=False)


def herd_slow(ctx: Context, target: Target) -> Metrics:
    return _herd(ctx, target, slow=True)


def huge_download(ctx: Context, target: Target) -> Metrics:
    """A cold download of the biggest file while /proc/<pid>/status VmRSS of the server is sampled."""
    url, entry = _one_file(ctx, target, corpus.HUGE)
    pids = target.pids()
    baseline = rss_bytes(pids)
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], rss_bytes(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        response = _expect(get(url), f"{target.name} {url}")
    finally:
        stop.set()
        sampler.join()
    if response.size != entry.size:
        raise RuntimeError(f"{target.name}: {entry.filename}: {response.size} of {entry.size} bytes")
    return {"huge.peak_rss_mib": peak[0] / MIB, "huge.rss_growth_mib": (peak[0] - baseline) / MIB,
            "huge.total_s": response.total}


# ---- installers -----------------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """The environment without PIP_*/UV_* settings or proxies; pip reads no config file."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_")) and not k.lower().endswith("_proxy")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    return env


def _timed(argv: list[str], what: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def _check_installed(site: Path, names: tuple[str, ...], what: str) -> None:
    found = {p.name.split("-")[0] for p in site.glob("*.dist-info")}
    missing = {corpus.wheel_name(n) for n in names} - found
    if missing:
        raise RuntimeError(f"{what}: not installed: {', '.join(sorted(missing))}")


def _pip(ctx: Context, target: Target, label: str) -> float:
    dest = ctx.work / f"{target.name}-pip-{label}"
    argv = [sys.executable, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--no-input",
            "--no-cache-dir", "--no-compile", "--quiet", "--index-url", target.index_url, "--target", str(dest),
            corpus.PIPSET[0]]
    elapsed = _timed(argv, f"pip install via {target.name} ({label})")
    _check_installed(dest, corpus.PIPSET, f"pip via {target.name}")
    return elapsed


def pip_install(ctx: Context, target: Target) -> Metrics:
    return {"pip.cold_s": _pip(ctx, target, "cold"), "pip.warm_s": _pip(ctx, target, "warm")}


def _uv(ctx: Context, target: Target, uv: str, label: str) -> float:
    venv = ctx.work / f"{target.name}-uv-{label}"
    quiet = ["--no-config", "--no-cache", "--quiet"]
    subprocess.run([uv, "venv", *quiet, "--python", sys.executable, str(venv)], env=clean_env(), check=True,
                   capture_output=True, timeout=120)
    argv = [uv, "pip", "install", *quiet, "--python", str(venv / "bin" / "python"), "--index-url",
            target.index_url, corpus.UVSET[0]]
    elapsed = _timed(argv, f"uv pip install via {target.name} ({label})")
    sites = list(venv.glob("lib/python*/site-packages"))
    _check_installed(sites[0], corpus.UVSET, f"uv via {target.name}")
    return elapsed


def uv_install(ctx: Context, target: Target) -> Metrics:
    if ctx.uv is None:
        return {}
    return {"uv.cold_s": _uv(ctx, target, ctx.uv, "cold"), "uv.warm_s": _uv(ctx, target, ctx.uv, "warm")}


# In run order: cold_download must precede warm_download (it fills the cache that one reads).
NO_UI_TITLE = "warm 5-file page, web interface off"
SCENARIOS: list[tuple[str, Scenario]] = [
    ("warm 5-file page", warm_small_page),
    (NO_UI_TITLE, warm_small_page_no_ui),
    ("warm 5,000-file page", warm_many_page),
    ("cold pages", cold_pages),
    ("cold download", cold_download),
    ("warm downloads", warm_download),
    ("herd, fast upstream", herd_fast),
    ("herd, slow upstream", herd_slow),
    ("big cold download (RSS)", huge_download),
    ("pip install", pip_install),
    ("uv pip install", uv_install),
]


# Where the aiohttp floor (bench/floor.py) is measured too. It keeps pages but no files (every .metadata and wheel
# is streamed from the upstream again) and has no single flight, so herds, warm downloads and the warm file costs
# mean nothing there, nor does the count of upstream requests per cold page.
FLOOR_TITLES = frozenset({
    "warm 5-file page", "warm 5,000-file page", "cold pages", "cold download", "big cold download (RSS)",
    "pip install", "uv pip install", "installs, 30 projects --no-deps", "request costs",
})
_NOT_ON_THE_FLOOR = ("cold_page.upstream", "cost.metadata_", "cost.wheel_")
# Where the verified floor (bench/verified_floor.py) is measured too: where the guarantees' work happens. Its warm
# pages are the floor's (a dict), so the wrk scenarios would measure the floor twice. It caches files, so its warm
# file costs count; the upstream log does not tell its requests from other clients', so its count per page is not
# kept.
VERIFIED_TITLES = FLOOR_TITLES - {"warm 5-file page", "warm 5,000-file page"}


def measured_on(target: str, title: str) -> bool:
    """Whether the scenario `title` runs on `target` (shadowpi and nginx: every one)."""
    if target == "aiohttp":
        return title in FLOOR_TITLES
    if target == "verified":
        return title in VERIFIED_TITLES
    return True


def kept_metrics(target: str, measured: Metrics) -> Metrics:
    """What is recorded of a target's scenario: the floor's measures that mean something there."""
    if target == "aiohttp":
        return {key: value for key, value in measured.items() if not key.startswith(_NOT_ON_THE_FLOOR)}
    if target == "verified":
        return {key: value for key, value in measured.items() if key != "cold_page.upstream"}
    return measured

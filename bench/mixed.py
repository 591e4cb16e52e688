"""The stall benchmark's run (see bench/stall.py): services, priming, the mixed load, and its statistics."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from bench import corpus
from bench.cli import CACHE, log
from bench.services import Service, Supervisor, ensure_tools, free_port, render_nginx_conf, start_nginx, wait_ready
from bench.stall import JSON, PER_PROJECT, Client, Request, choice, multipart, paced, sample_latencies, token_for

STALL = Path(__file__).resolve().parent / "stall.py"
Sample = tuple[str, float, float, int]  # kind, start offset (s), latency (s), status (0: error)
KINDS = ("page: private", "page: upstream, cached", "file: private", "file: upstream, cached", "upload",
         "fill: upstream miss", "health")


def run(*, private: int, seconds: float, server_root: Path, max_size: int) -> dict[str, object]:
    """Start the upstream and a shadowpi with `private` private files, load it for `seconds`, summarize."""
    nginx, _wrk = ensure_tools(log)
    projects = corpus.load_projects(CACHE, corpus.Sizes(10 * corpus.MIB, 20 * corpus.MIB), log)
    tmp = Path(tempfile.mkdtemp(prefix="shadowpi-stall-"))
    supervisor = Supervisor()
    try:
        www = tmp / "www"
        corpus.write_www(www, projects)
        up_port, port = free_port(), free_port()
        conf = render_nginx_conf("nginx-upstream.conf.in", tmp / "upstream", nginx, {
            "PORT": str(up_port), "WWW": str(www), "ACCESS_LOG": str(tmp / "access.log"), "SLOW_RATE": "25m",
        })
        start_nginx(supervisor, "upstream nginx", nginx, conf, up_port, "/simple/")
        data = tmp / "data"
        log(f"populating {private:,} private files with {server_root}'s proxy")
        subprocess.run([sys.executable, str(STALL), "populate", str(data), str(private)], cwd=server_root, check=True)
        token = token_for(server_root, data)
        _start(supervisor, server_root, port, data, up_port, max_size, tmp / "shadowpi.log")
        log("priming: cached upstream pages and files, private file URLs")
        targets = _prime(port, private)
        log(f"mixed load for {seconds:g} s")
        errors: dict[str, str] = {}
        samples = _load(port, token, targets, seconds, errors)
    finally:
        supervisor.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"private_files": private, "seconds": seconds, "server_root": str(server_root),
            "max_size": max_size, "kinds": summarize(samples), "first_errors": errors}


def _start(supervisor: Supervisor, root: Path, port: int, data: Path, up_port: int, max_size: int,
           log_path: Path) -> Service:
    argv = [sys.executable, "-m", "proxy", "serve", "--data-dir", str(data), "--port", str(port),
            "--upstream", f"http://127.0.0.1:{up_port}/simple/", "--log-level", "WARNING"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["SHADOWPI_CACHE_MAX_SIZE"] = str(max_size)
    service = supervisor.start("shadowpi", argv, log_path, cwd=root, env=env)
    wait_ready(service, f"http://127.0.0.1:{port}/health")
    return service


def _files_of(client: Client, page: str) -> list[str]:
    status, body = client.send(("GET", page, None, JSON))
    if status != 200:
        raise RuntimeError(f"{page}: {status}")
    return [urlsplit(urljoin(f"http://127.0.0.1{page}", f["url"])).path for f in json.loads(body)["files"]]


def _prime(port: int, private: int) -> dict[str, list[str]]:
    """Request paths by kind; upstream pages and some upstream files are in the cache afterwards."""
    client, rng = Client(port), random.Random(1)  # noqa: S311 - a repeatable sample, not a secret
    upstream_pages = [f"/simple/{name}/" for name in (*corpus.PIPSET, corpus.SMALL)]
    upstream_files = [path for page in upstream_pages for path in _files_of(client, page)]
    for path in upstream_files:
        status, _ = client.send(("GET", path, None, {}))
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
    private_pages = [f"/simple/acme-{i:05d}/" for i in range(max(1, private // PER_PROJECT))]
    private_files = [path for page in rng.sample(private_pages, min(200, len(private_pages)))
                     for path in _files_of(client, page)]
    return {"private pages": private_pages, "upstream pages": upstream_pages, "private files": private_files,
            "upstream files": upstream_files, "misses": _files_of(client, f"/simple/{corpus.MANY}/")}


def _upload(token: str) -> Request:
    """A new wheel of a new private project, as twine sends it."""
    i = next(_UPLOADS)
    filename, data, _meta = corpus.build_wheel(f"bench-upload-{i:05d}", "1.0", "py3-none-any", [])
    fields = {":action": "file_upload", "protocol_version": "1", "name": f"bench-upload-{i:05d}", "version": "1.0",
              "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
              "sha256_digest": hashlib.sha256(data).hexdigest()}
    body, content_type = multipart(fields, filename, data)
    auth = base64.b64encode(f"__token__:{token}".encode()).decode()
    return "POST", "/", body, {"Content-Type": content_type, "Authorization": f"Basic {auth}"}


_UPLOADS = iter(range(10**9))


def _load(port: int, token: str, targets: dict[str, list[str]], seconds: float,
          errors: dict[str, str]) -> list[Sample]:
    rng = random.Random(2)  # noqa: S311 - a repeatable load, not a secret
    misses = iter(targets["misses"])

    def get(kind: str, accept: dict[str, str] | None = None) -> Request:
        return "GET", choice(rng, targets[kind]), None, accept or {}

    makers = {
        "page: private": lambda _i: get("private pages", JSON),
        "page: upstream, cached": lambda _i: get("upstream pages", JSON),
        "file: private": lambda _i: get("private files"),
        "file: upstream, cached": lambda _i: get("upstream files"),
        "upload": paced(lambda _i: _upload(token), 1.0),
        "fill: upstream miss": paced(lambda _i: ("GET", next(misses), None, {}), 0.5),
        "health": paced(lambda _i: ("GET", "/health", None, {}), 0.05),
    }
    samples: list[Sample] = []
    stop, started = threading.Event(), time.perf_counter()
    threads = [threading.Thread(target=sample_latencies, args=(stop, port, kind, make, samples, started, errors),
                                daemon=True)
               for kind, make in makers.items()]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:  # each finishes the request it is in, however long the server holds it
        thread.join()
    return samples


def summarize(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Per kind: requests, errors (non-2xx or failed), p50, p99 and max latency in ms."""
    result = {}
    for kind in KINDS:
        latencies = sorted(s[2] for s in samples if s[0] == kind)
        if not latencies:
            continue
        errors = sum(1 for s in samples if s[0] == kind and not 200 <= s[3] < 300)
        result[kind] = {"requests": len(latencies), "errors": errors,
                        "p50_ms": 1000 * latencies[len(latencies) // 2],
                        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                        "max_ms": 1000 * latencies[-1]}
    return result


def table(result: dict[str, object]) -> str:
    kinds = result["kinds"]
    assert isinstance(kinds, dict)
    lines = [f"{result['private_files']:,} private files, {result['seconds']:g} s of mixed load, "
             f"max_size={result['max_size']}, server: {result['server_root']}",
             f"{'request kind':<24} {'requests':>8} {'errors':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}"]
    for kind, row in kinds.items():
        lines.append(f"{kind:<24} {row['requests']:>8} {row['errors']:>6} {row['p50_ms']:>9.1f} "
                     f"{row['p99_ms']:>9.1f} {row['max_ms']:>9.1f}")
    longest = max((row["max_ms"] for row in kinds.values()), default=0.0)
    lines.append(f"longest stall (slowest single request): {longest:,.0f} ms")
    errors = result.get("first_errors")
    if isinstance(errors, dict):
        lines += [f"first error, {kind}: {text}" for kind, text in errors.items()]
    return "\n".join(lines)

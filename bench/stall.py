"""Stall benchmark: shadowpi with many private files under mixed load, reporting the longest stall and the p99
latency of each kind of request (issue 10, item 32: background work must never block the request path).

    .venv/bin/python bench/stall.py                       # 10,000 private files, 90 s of load
    .venv/bin/python bench/stall.py --quick               # 2,000 private files, 20 s
    .venv/bin/python bench/stall.py --server-root DIR     # the shadowpi of another checkout (before/after)

The data dir is filled before the server starts (private files, their blobs and metadata blobs, as uploads
leave them), by the server's own code (`populate`, run with --server-root's `proxy`), so any schema works.
Then, at the same time for --seconds: page hits (private and cached upstream pages), file hits (private and
cached upstream files), uploads (a new wheel every second), cache fills (a new upstream file every half
second, each one pokes the cache janitor) and a /health probe every 50 ms. The janitor runs as configured
(periodic sweeps, plus sweeps after fills).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
Request = tuple[str, str, bytes | None, dict[str, str]]  # method, path, body, headers
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
PER_PROJECT = 5  # private files per private project


def main() -> int:
    if sys.argv[1:2] == ["populate"]:  # run by the parent with cwd = the server's checkout
        sys.path[0] = str(Path.cwd())
        asyncio.run(populate(Path(sys.argv[2]), int(sys.argv[3])))
        return 0
    sys.path[0] = str(REPO)
    from bench import mixed

    parser = argparse.ArgumentParser(prog="bench/stall.py", description=__doc__.splitlines()[0])
    parser.add_argument("--private", type=int, help="private files before the load starts (default 10,000)")
    parser.add_argument("--seconds", type=float, help="seconds of mixed load (default 90)")
    parser.add_argument("--quick", action="store_true", help="2,000 private files, 20 s of load")
    parser.add_argument("--server-root", type=Path, default=REPO, help="checkout whose `proxy` runs (default: this)")
    parser.add_argument("--max-size", type=int, default=0, help="[cache] max_size for the server (default 0)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    private = args.private or (2000 if args.quick else 10_000)
    seconds = args.seconds or (20.0 if args.quick else 90.0)
    result = mixed.run(private=private, seconds=seconds, server_root=args.server_root.resolve(),
                       max_size=args.max_size)
    print(mixed.table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


# --- populate: runs in a subprocess with the server checkout's `proxy` first on sys.path ---


async def populate(data_dir: Path, count: int) -> None:
    """`count` private files in `count / PER_PROJECT` projects, as uploads leave them: a blob per file (recorded
    in `blobs`) and a metadata blob (not recorded, as uploads do), with the schema of the server's own code."""
    db_filename, files, blobs = await _store_blobs(data_dir, count)
    with sqlite3.connect(data_dir / db_filename) as conn:  # one transaction: uploads one by one take minutes
        conn.executemany(
            "INSERT INTO private_files (filename, project, version, sha256, size, metadata_sha256, upload_time,"
            " uploaded_by) VALUES (?, ?, ?, ?, ?, ?, '2024-01-01T00:00:00.000000Z', 'bench')",
            [(f[0], f[1], f[2], f[3], f[4], f[5]) for f in files],
        )
        conn.executemany("INSERT OR IGNORE INTO private_projects (name, created_at) VALUES (?, 0)",
                         [(f[1],) for f in files])
        conn.executemany("INSERT INTO blobs (sha256, size, created_at, last_access) VALUES (?, ?, ?, ?)", blobs)


Stored = tuple[str, list[tuple[object, ...]], list[tuple[str, int, float, float]]]


async def _store_blobs(data_dir: Path, count: int) -> Stored:
    """Create the schema the server's own code expects and store the files' blobs through its own blob store;
    returns the database's filename in the data dir, the private_files rows and the blobs rows."""
    try:
        from proxy.backends import open_backends
        from proxy.backends.sqlite import DB_FILENAME
        from proxy.config_load import build_config
    except ImportError:  # a checkout from before issue 12 (proxy/db/, proxy/storage.py)
        from proxy.db import DB_FILENAME, Database  # type: ignore[import-not-found, no-redef]
        from proxy.storage import BlobStore  # type: ignore[import-not-found]

        await (await Database.open(data_dir / DB_FILENAME)).close()
        store = BlobStore(data_dir)
        await store.open()
        return (str(DB_FILENAME), *await _put_all(store, count))
    async with open_backends(build_config({"server": {"data_dir": str(data_dir)}}), migrate=True) as backends:
        return (str(DB_FILENAME), *await _put_all(backends.blobs, count))


async def _put_all(store: Any, count: int) -> tuple[list[tuple[object, ...]], list[tuple[str, int, float, float]]]:
    files: list[tuple[object, ...]] = []
    blobs: list[tuple[str, int, float, float]] = []
    for start in range(0, count, 64):
        batch = [_private_file(i) for i in range(start, min(start + 64, count))]
        stored = await asyncio.gather(*(store.put_bytes(data) for _row, data, _meta in batch),
                                      *(store.put_bytes(meta) for _row, _data, meta in batch))
        for (row, data, _meta), blob, meta_blob in zip(batch, stored[: len(batch)], stored[len(batch):], strict=True):
            files.append((*row, blob.sha256, len(data), meta_blob.sha256))
            blobs.append((blob.sha256, len(data), time.time(), time.time()))
    return files, blobs


def _private_file(i: int) -> tuple[tuple[str, str, str], bytes, bytes]:
    project, version = f"acme-{i // PER_PROJECT:05d}", f"1.{i % PER_PROJECT}"
    filename = f"acme_{i // PER_PROJECT:05d}-{version}-py3-none-any.whl"
    data = f"bench private file {i}\n".encode() * 40
    meta = f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode()
    return (filename, project, version), data, meta


# --- a keep-alive client per load thread ---


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; reconnects after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> tuple[int, bytes]:
        method, path, body, headers = request
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    """twine's upload form (fields, then the file part) as a multipart/form-data body and its content type."""
    boundary = hashlib.sha256(content).hexdigest()[:32]
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def token_for(server_root: Path, data_dir: Path) -> str:
    """A fresh upload token, made by the server's own CLI (its last output line)."""
    out = subprocess.run([sys.executable, "-m", "proxy", "token", "create", "--user", "bench", "--data-dir",
                          str(data_dir)], cwd=server_root, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1].strip()


def paced(make: Callable[[int], Request | None], every: float) -> Callable[[int], Request | None]:
    """`make`, but at most one request per `every` seconds (the caller sleeps the rest)."""
    def next_request(i: int) -> Request | None:
        time.sleep(every)
        return make(i)
    return next_request


def choice(rng: random.Random, items: list[str]) -> str:
    return items[rng.randrange(len(items))]


def sample_latencies(stop: threading.Event, port: int, kind: str, make: Callable[[int], Request | None],
                     out: list[tuple[str, float, float, int]], started: float, errors: dict[str, str]) -> None:
    """Send `make(i)` requests until `stop`; record (kind, start offset, seconds, status: 0 for an error), and
    the first failure of the kind in `errors`."""
    client = Client(port)
    i = 0
    while not stop.is_set():
        request = make(i)
        i += 1
        if request is None:
            continue
        begin = time.perf_counter()
        try:
            status, body = client.send(request)
        except (OSError, http.client.HTTPException) as exc:
            status, body = 0, repr(exc).encode()
        out.append((kind, begin - started, time.perf_counter() - begin, status))
        if not 200 <= status < 300:
            errors.setdefault(kind, f"{status} {body[:300].decode(errors='replace')}")


if __name__ == "__main__":
    sys.exit(main())

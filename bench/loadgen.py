"""Load generation: a lean HTTP/1.1 GET client for downloads and single requests, and a wrk driver for page load.

The client reads bodies with `recv_into` into one reused buffer and never stores them unless asked, so one
Python thread can take several GB/s and the numbers measure the server, not the client. Threads (not asyncio)
run concurrent downloads: blocking socket calls and sha256 of large chunks both release the GIL.
"""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
BUFFER = 1024 * 1024
ALLOWED_HOST = "127.0.0.1"  # the benchmark never talks to anything else
PIP_HEADERS = {
    "Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
    "Accept-Encoding": "gzip, deflate",
}
JSON_ACCEPT = {"Accept": "application/vnd.pypi.simple.v1+json"}


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    size: int  # body bytes as sent (still compressed if the server compressed them)
    ttfb: float  # seconds from connect to the first body byte (to the end of the headers for an empty body)
    total: float  # seconds from connect to the last byte
    sha256: str | None = None
    body: bytes | None = None


@dataclass(slots=True)
class _Body:
    start: float
    digest: hashlib._Hash | None
    keep: bool
    first: float | None = None
    size: int = 0
    parts: list[bytes] = field(default_factory=list)

    def feed(self, data: memoryview) -> None:
        if not data:
            return
        if self.first is None:
            self.first = time.perf_counter()
        self.size += len(data)
        if self.digest is not None:
            self.digest.update(data)
        if self.keep:
            self.parts.append(bytes(data))


class _Reader:
    """Buffered reads for the status line, headers and chunk framing; raw `recv_into` for the body."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection early")
        self.pending += data

    def line(self) -> bytes:
        while (end := self.pending.find(b"\r\n")) < 0:
            self._more()
        line = bytes(self.pending[:end])
        del self.pending[: end + 2]
        return line

    def exact(self, size: int, body: _Body) -> None:
        while size:
            if not self.pending:
                self._more()
            take = min(size, len(self.pending))
            body.feed(memoryview(self.pending)[:take])
            del self.pending[:take]
            size -= take

    def stream(self, size: int | None, body: _Body) -> None:
        """`size` bytes (None: until the server closes) without copying them anywhere."""
        if self.pending:
            take = len(self.pending) if size is None else min(size, len(self.pending))
            body.feed(memoryview(self.pending)[:take])
            del self.pending[:take]
            size = None if size is None else size - take
        buffer = bytearray(BUFFER)
        view = memoryview(buffer)
        while size is None or size > 0:
            received = self.sock.recv_into(view, BUFFER if size is None else min(BUFFER, size))
            if received == 0:
                if size is None:
                    return
                raise ConnectionError(f"connection closed with {size} body bytes missing")
            body.feed(view[:received])
            if size is not None:
                size -= received


def get(url: str, headers: Mapping[str, str] | None = None, *, hash_body: bool = False, keep_body: bool = False,
        timeout: float = 600.0) -> Response:
    """GET `url` on a fresh connection. Raises ConnectionError when the body is cut short."""
    parts = urlsplit(url)
    if parts.hostname != ALLOWED_HOST or parts.port is None:
        raise ValueError(f"refusing {url}: the benchmark only talks to {ALLOWED_HOST}:<port>")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close", "User-Agent: shadowpi-bench"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    start = time.perf_counter()
    with socket.create_connection((ALLOWED_HOST, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        reader = _Reader(sock)
        status, response_headers = _read_head(reader)
        body = _Body(start, hashlib.sha256() if hash_body else None, keep_body)
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            _read_chunked(reader, body)
        elif "content-length" in response_headers:
            reader.stream(int(response_headers["content-length"]), body)
        else:
            reader.stream(None, body)
    end = time.perf_counter()
    return Response(
        status=status,
        headers=response_headers,
        size=body.size,
        ttfb=(body.first or end) - start,
        total=end - start,
        sha256=body.digest.hexdigest() if body.digest is not None else None,
        body=b"".join(body.parts) if keep_body else None,
    )


def _read_head(reader: _Reader) -> tuple[int, dict[str, str]]:
    status_line = reader.line().decode("latin-1")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while line := reader.line():
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _read_chunked(reader: _Reader, body: _Body) -> None:
    while True:
        size = int(reader.line().split(b";")[0], 16)
        if size == 0:
            while reader.line():  # trailers
                pass
            return
        reader.exact(size, body)
        reader.line()


def together(count: int, task: Callable[[int], T]) -> list[T]:
    """Run task(0..count-1) in `count` threads released at the same instant; results in order."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return task(index)

    pool = ThreadPoolExecutor(max_workers=count)
    try:
        futures = [pool.submit(run, index) for index in range(count)]
        return [future.result() for future in futures]
    finally:
        # No waiting on Ctrl-C: the servers are stopped next, which ends any download still running.
        pool.shutdown(wait=False, cancel_futures=True)


def download_for(
    url: str, clients: int, seconds: float, expected_size: int, fetch: Callable[[str], Response] | None = None
) -> float:
    """Aggregate bytes/second of `clients` threads downloading `url` back to back for about `seconds`, each
    download with `fetch` (default: one GET)."""
    start = time.perf_counter()
    fetch = fetch or get

    def loop(_index: int) -> int:
        received = 0
        while True:
            response = fetch(url)
            if response.status != 200 or response.size != expected_size:
                raise RuntimeError(f"{url}: status {response.status}, {response.size} of {expected_size} bytes")
            received += response.size
            if time.perf_counter() - start >= seconds:
                return received

    total = sum(together(clients, loop))
    return total / (time.perf_counter() - start)


# ---- wrk ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-2xx/3xx responses plus socket errors


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(wrk: str, url: str, *, connections: int, threads: int, seconds: float,
            headers: Mapping[str, str]) -> WrkResult:
    if urlsplit(url).hostname != ALLOWED_HOST:
        raise ValueError(f"refusing {url}: the benchmark only talks to {ALLOWED_HOST}")
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    result = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60)
    return parse_wrk(result.stdout)


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    done = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)")
    bad = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=_ms(done.group(2) + done.group(3)) / 1e3,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        bad=bad + (int(non2xx.group(1)) if non2xx else 0),
    )

"""A raw HTTP/1.1 exchange: the request goes out byte for byte as built, the answer is parsed by http.client.

aiohttp's client normalises what a fuzzer wants to break (header names, request lines, Content-Length), so
requests are written to a plain socket. Responses are parsed with the standard library's HTTPResponse, which
handles Content-Length, chunked bodies and HEAD.
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass

# Fuzz tags: what a strategy did to a request, for reports and for matching known findings.
HALF_CLOSE = "wire:half-close"  # the client shuts its sending side after the request (announced body > sent body)


@dataclass(frozen=True)
class RawRequest:
    """One request, exactly as it goes on the wire. repr() is valid Python: paste it into a regression test."""

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    version: bytes = b"HTTP/1.1"
    tags: frozenset[str] = frozenset()
    line: bytes | None = None  # a whole request line of its own (garbage), instead of method/target/version

    def encode(self) -> bytes:
        line = self.line if self.line is not None else b" ".join((self.method, self.target, self.version))
        head = b"".join(name + b": " + value + b"\r\n" for name, value in self.headers)
        return line + b"\r\n" + head + b"\r\n" + self.body

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (case-insensitive), as sent."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    @property
    def path(self) -> str:
        """The target's path (no query), decoded leniently, for reports and rules."""
        return self.target.split(b"?", 1)[0].decode("latin-1")

    def short(self) -> str:
        """One line for reports: method, target (truncated), body size and tags."""
        target = self.target if len(self.target) <= 120 else self.target[:117] + b"..."
        tags = ",".join(sorted(self.tags))
        return f"{self.method.decode('latin-1')} {target.decode('latin-1')!r} body={len(self.body)}B [{tags}]"


@dataclass(frozen=True)
class RawResponse:
    """What came back. status None: the server closed the connection without answering."""

    status: int | None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    error: str = ""  # why no (complete) response was read, when status is None or the body is cut

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def short(self) -> str:
        if self.status is None:
            return f"no response ({self.error})"
        cut = f", body cut: {self.error}" if self.error else ""
        return f"{self.status} {self.reason!r} body={len(self.body)}B{cut}"


def exchange(
    host: str, port: int, request: RawRequest, *, timeout: float = 30.0, source: str | None = None
) -> RawResponse:
    """Send `request` on a new connection and read one response (or learn that none came).

    `source`: the local address to send from (another loopback address, 127.0.0.2, looks like another client).
    """
    source_address = (source, 0) if source is not None else None
    with socket.create_connection((host, port), timeout=timeout, source_address=source_address) as sock:
        send_error = ""
        try:
            sock.sendall(request.encode())
            if HALF_CLOSE in request.tags:
                sock.shutdown(socket.SHUT_WR)
        except OSError as exc:  # the server may answer (413, 400) and close before the body is all sent
            send_error = f"send: {type(exc).__name__}"
        return _read_response(sock, request.method.decode("latin-1"), send_error)


def _read_response(sock: socket.socket, method: str, send_error: str) -> RawResponse:
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
    except (http.client.HTTPException, OSError) as exc:
        return RawResponse(None, error=f"{send_error} {type(exc).__name__}: {exc}".strip())
    headers = tuple(response.getheaders())
    try:
        body, error = response.read(), ""
    except http.client.IncompleteRead as exc:
        body, error = exc.partial, f"IncompleteRead after {len(exc.partial)} bytes"
    except (http.client.HTTPException, OSError) as exc:
        body, error = b"", f"{type(exc).__name__}: {exc}"
    return RawResponse(response.status, response.reason, headers, body, error)

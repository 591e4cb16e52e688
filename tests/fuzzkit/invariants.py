"""What must hold after every fuzz example, whatever the request was.

1. No 5xx except the documented ones. proxy/web/edge.py maps exactly these server-side faults to 5xx, each
   with the cause in the reason phrase: UpstreamUnavailable and IntegrityError -> 502, UpstreamTimeout -> 504;
   a full disk -> 507 (issue 10 item 19). /ready answers 503 when not ready: that is its contract. A 500 is never
   documented: ConfigError cannot arise from a request, and anything unmapped is a bug. A documented 5xx with
   the stock reason phrase ("Bad Gateway") carries no cause, so it counts as undocumented too.
2. A well-formed request gets an answer; a plain request real clients send gets the answer it must get.
3. Nothing in the captured log at ERROR or with a traceback.
4. /health still answers 200 (within a generous deadline here; bench/fuzz.py measures the 100 ms target).
5. Nothing stored from a rejected request (status >= 300): no new blob, no change to the private files (rows,
   yanks, deletions); and no spool left in tmp/ once the server has finished its work.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Protocol

from proxy.backends.sqlite import DB_FILENAME
from tests.fuzzkit.harness import Surface
from tests.fuzzkit.wire import HALF_CLOSE, RawRequest, RawResponse, exchange

DOCUMENTED_5XX = frozenset({502, 504, 507})
ATTACKER_ADDRESS = "127.0.0.2"  # requests with bad credentials come from here: rate limits must not hit the rest
_TOKEN = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_ANSWERABLE_FRAMINGS = {"framing:exact", "framing:chunked", "framing:none", "framing:short"}


class Target(Protocol):
    """A running shadowpi under fuzz (in-process for tests, a `shadowpi serve` process in bench/fuzz.py)."""

    surface: Surface
    host: str
    port: int
    data_dir: Path

    def settle(self, timeout: float = 60.0) -> None:
        """Return once the server has finished all work the last request started."""

    def take_log(self) -> list[str]:
        """Problem lines (ERROR, tracebacks) logged since the last call."""


@dataclass(frozen=True)
class Stored:
    blobs: frozenset[str]
    private: frozenset[tuple[str, str, str | None]]  # (filename, sha256, yanked)
    deleted: frozenset[str]


@dataclass
class Outcome:
    surface: str
    request: RawRequest
    response: RawResponse
    problems: list[str] = field(default_factory=list)
    health_seconds: float | None = None
    known: str | None = None  # the known finding (issue item) that explains the problems


class Violation(AssertionError):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(report(outcome))
        self.outcome = outcome


def stored(data_dir: Path) -> Stored:
    blobs = frozenset(p.name for p in (data_dir / "blobs").rglob("*") if p.is_file())
    db = sqlite3.connect(f"file:{data_dir / DB_FILENAME}?mode=ro", uri=True)
    try:
        private = frozenset(db.execute("SELECT filename, sha256, yanked FROM private_files").fetchall())
        deleted = frozenset(row[0] for row in db.execute("SELECT filename FROM deleted_files"))
    finally:
        db.close()
    return Stored(blobs, private, deleted)


def spools(data_dir: Path) -> list[str]:
    tmp = data_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def answerable(request: RawRequest) -> bool:
    """A syntactically valid HTTP/1.1 request, fully sent: the server owes it an answer."""
    if request.line is not None or HALF_CLOSE in request.tags or request.version != b"HTTP/1.1":
        return False
    if not _TOKEN.fullmatch(request.method) or not request.target.startswith(b"/"):
        return False
    if any(b < 0x21 or b > 0x7E for b in request.target):
        return False
    for name, value in request.headers:
        if not _TOKEN.fullmatch(name) or any(b in value for b in b"\r\n\x00"):
            return False
    return bool(_ANSWERABLE_FRAMINGS & request.tags)


def expected_statuses(request: RawRequest, surface: Surface) -> frozenset[int]:
    """What a plain request must get (empty: no expectation), given its credentials and the surface."""
    expect = frozenset(int(t.removeprefix("expect:")) for t in request.tags if t.startswith("expect:"))
    if not expect or "plain" not in request.tags or "framing:exact" not in request.tags:
        return frozenset()
    if any(_CONTROL.search(value) for _name, value in request.headers):
        return frozenset()  # an illegal header value: HTTP's own 400 comes first
    auth = next(t.removeprefix("auth:") for t in request.tags if t.startswith("auth:"))
    write = "write" in request.tags
    if auth in {"valid", "route"} or request.path == "/health" or not (write or surface.read_auth):
        return expect
    refused = frozenset({403} if write else {401})
    if auth == "bad":
        refused |= {429}  # a per-client limit on failed logins (issue 10 item 4) may answer first
    if request.path in {"/", "/ready", "/metrics"}:
        return expect | refused  # open today; issue 10 item 20 puts them behind [auth] read
    return refused


def status_problems(request: RawRequest, response: RawResponse, surface: Surface) -> list[str]:
    status = response.status
    if status is None:
        return [f"no answer to a well-formed request ({response.error})"] if answerable(request) else []
    problems = []
    if status >= 500:
        documented = status in DOCUMENTED_5XX and response.reason != HTTPStatus(status).phrase
        if not (documented or (status == 503 and request.path == "/ready")):
            problems.append(f"undocumented {status} {response.reason!r}")
    expected = expected_statuses(request, surface)
    if expected and status not in expected:
        problems.append(f"expected {sorted(expected)}, got {status} {response.reason!r}")
    return problems


def storage_problems(before: Stored, after: Stored, left: list[str], response: RawResponse) -> list[str]:
    """Spools must be gone; a refused request (3xx-5xx) changes nothing.

    Without an answer the client went away: a download's fill may still complete and commit a verified blob (the
    cache is shared), and a management call may have been done, so only the spools are checked then.
    """
    problems = [f"spool(s) left in tmp/: {left}"] if left else []
    if response.status is not None and response.status >= 300:
        if after.private != before.private or after.deleted != before.deleted:
            problems.append("a rejected request changed the private files")
        if new := after.blobs - before.blobs:
            problems.append(f"a rejected request stored blob(s) {sorted(new)}")
    return problems


def health(target: Target, deadline: float) -> tuple[float, str | None]:
    """Seconds /health took, and a problem if it did not answer 200 within the deadline."""
    started = time.monotonic()
    request = RawRequest(b"GET", b"/health", ((b"Host", b"shadowpi.test"),))
    try:
        response = exchange(target.host, target.port, request, timeout=deadline)
    except OSError as exc:
        return time.monotonic() - started, f"/health: {type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    if response.status != 200 or b'"ok"' not in response.body:
        return seconds, f"/health answered {response.short()}"
    return seconds, None


def run_example(target: Target, request: RawRequest, *, health_deadline: float = 10.0,
                answer_timeout: float = 30.0) -> Outcome:
    """Send one request and check every invariant; the Outcome lists the problems (empty: all held)."""
    target.take_log()
    before = stored(target.data_dir)
    source = ATTACKER_ADDRESS if "auth:bad" in request.tags else None
    response = exchange(target.host, target.port, request, timeout=answer_timeout, source=source)
    target.settle()
    outcome = Outcome(target.surface.name, request, response)
    outcome.problems += status_problems(request, response, target.surface)
    outcome.problems += [f"log: {line}" for line in target.take_log()]
    outcome.problems += storage_problems(before, stored(target.data_dir), spools(target.data_dir), response)
    outcome.health_seconds, problem = health(target, health_deadline)
    if problem is not None:
        outcome.problems.append(problem)
    return outcome


def report(outcome: Outcome) -> str:
    response = outcome.response
    lines = [
        f"[{outcome.surface}] {outcome.request.short()}",
        f"  -> {response.short()}",
        *(f"  problem: {p}" for p in outcome.problems),
    ]
    if response.body:
        lines.append(f"  body: {response.body[:300]!r}")
    return "\n".join(lines)

"""Findings the fuzzer already made that are not fixed on this branch, and exactly which problems each explains.

While a finding is open, the fuzz run tolerates the problems it explains (and only those), so the run stays green
and keeps looking for new ones. Each finding has a regression test with its input in tests/test_fuzz_findings.py,
marked xfail(strict=True): once the fix lands that test passes, turns red, and the lead removes both the marker
and the entry here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tests.fuzzkit.invariants import Outcome


@dataclass(frozen=True)
class KnownFinding:
    key: str
    owner: str  # "issue 10 item N (branch h10-…)", or "unowned" (reported to the lead)
    explains: Callable[[Outcome, str], bool]  # (outcome, one of its problems) -> this finding is the cause


_SERVER_ERROR = "log: ERROR aiohttp.server: Error handling request"
_WARNING_LINE = re.compile(r"\S+\.py:\d+: \w+: ")  # how warnings.showwarning starts its first line


def _client_failure_logged(_outcome: Outcome, problem: str) -> bool:
    # aiohttp's RequestHandler logs what a client did wrong at ERROR, with a traceback, through "aiohttp.server":
    # every request its parser refuses with 400 (only a bad method on a connection's first request is DEBUG),
    # and a write to a connection the client already closed inside aiohttp itself (the default
    # `Expect: 100-continue` handler), with no shadowpi frame in the traceback.
    if not problem.startswith(_SERVER_ERROR):
        return False
    return "aiohttp.http_exceptions." in problem or ("ConnectionResetError" in problem and "/proxy/" not in problem)


def _download_disconnect_logged(_outcome: Outcome, problem: str) -> bool:
    # A client that goes away while a download from upstream streams to it: an ERROR with a traceback.
    return problem.startswith(_SERVER_ERROR) and "ConnectionResetError" in problem and "proxy/web/files.py" in problem


def _warning_line(_outcome: Outcome, problem: str) -> bool:
    # A Python warning (aiohttp's BadContentDispositionHeader for a malformed part header) goes to stderr as two
    # raw lines, outside logging: with --log-format json, not every line is JSON any more.
    line = problem.removeprefix("log: non-JSON line: ")
    return line != problem and (_WARNING_LINE.match(line) is not None or line.lstrip().startswith("warnings.warn("))


UPLOAD_PATHS = frozenset({"/", "/legacy", "/legacy/", "/simple/"})


def _is_upload(outcome: Outcome) -> bool:
    return outcome.request.method == b"POST" and outcome.request.path in UPLOAD_PATHS


def _upload_crash(outcome: Outcome, problem: str) -> bool:
    # A multipart body aiohttp cannot parse (no or wrong boundary, truncated, NUL in a part header, the client
    # gone mid-body) escapes the upload handler: 500 and a traceback.
    if not _is_upload(outcome):
        return False
    crashed_in_upload = problem.startswith("log: ERROR aiohttp.server: Error handling request") and (
        "proxy/web/upload.py" in problem
    )
    return problem.startswith("undocumented 500 ") or crashed_in_upload


def _big_field_refused(outcome: Outcome, problem: str) -> bool:
    # aiohttp's 1 MiB per-part limit answers 413 for a text field shadowpi's own 4 MiB field limit allows.
    return _is_upload(outcome) and "form:huge-field" in outcome.request.tags and problem.endswith(
        "got 413 'Request Entity Too Large'")


def _unsafe_member_accepted(outcome: Outcome, problem: str) -> bool:
    # An sdist is read only up to its PKG-INFO: members after it are never path-checked.
    return (_is_upload(outcome) and "archive:unsafe-member" in outcome.request.tags
            and problem == "expected [400], got 200 'OK'" and b".tar.gz" in outcome.response.body)


KNOWN: tuple[KnownFinding, ...] = (
    KnownFinding("malformed-multipart-500", "issue 10 item 10 (branch h10-uploads)", _upload_crash),
    KnownFinding("sdist-unsafe-member-accepted", "issue 10 item 12 (branch h10-uploads)", _unsafe_member_accepted),
    KnownFinding("big-text-field-413", "issue 10 item 11 (branch h10-uploads)", _big_field_refused),
    KnownFinding("download-disconnect-error", "issue 10 item 23 (branch h10-upstream)", _download_disconnect_logged),
    KnownFinding("client-failure-logged-as-error", "unowned", _client_failure_logged),
    KnownFinding("warning-lines-in-json-log", "unowned", _warning_line),
)


def triage(outcome: Outcome, known: tuple[KnownFinding, ...] = KNOWN) -> list[str]:
    """The problems no known finding explains; sets outcome.known to the findings that explained the rest."""
    unexplained, explained = [], []
    for problem in outcome.problems:
        finding = next((f for f in known if f.explains(outcome, problem)), None)
        if finding is None:
            unexplained.append(problem)
        elif finding.key not in explained:
            explained.append(finding.key)
    outcome.known = ",".join(explained) or None
    return unexplained

"""What the fuzzer found, as fixed regression inputs (shrunk by hand to their essence) under the same invariants.

Each finding that is not fixed on this branch is xfail(strict=True), naming its owner: when the fix lands the
test passes, turns red, and the lead removes the marker (and the finding's entry in tests/fuzzkit/known.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.artifacts import Artifact
from tests.fuzzkit.harness import SURFACES, InProcessTarget, LoopThread, fuzz_servers, sample_dists, start_upstream
from tests.fuzzkit.invariants import report, run_example
from tests.fuzzkit.multipart import (
    ARTIFACTS,
    BOUNDARY,
    UNSAFE_ARTIFACTS,
    UNSAFE_MEMBERS,
    envelope,
    field_part,
    file_part,
    twine_parts,
)
from tests.fuzzkit.serve import ServeTarget
from tests.fuzzkit.wire import HALF_CLOSE, RawRequest

WHEEL = ARTIFACTS[0]
FIELDS, FILE = twine_parts(WHEEL)
FORM = envelope([*FIELDS, FILE])
ALICE = (b"Authorization", b"Basic YWxpY2U6cHc=")  # alice:pw, the htpasswd user of every fuzz surface
MULTIPART = b"multipart/form-data; boundary=" + BOUNDARY
TINYLIB_2 = sample_dists().tinylib_2


def item(number: int, branch: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"issue 10 item {number} (branch {branch})")


UNOWNED = pytest.mark.xfail(strict=True, reason="unowned finding, reported to the lead (see tests/fuzzkit/known.py)")


def upload(body: bytes, content_type: bytes = MULTIPART, *, announce_extra: int = 0, tags: tuple[str, ...] = ()
           ) -> RawRequest:
    """A POST / as twine sends it (alice's credentials), with this body; `announce_extra` bytes never come."""
    headers = ((b"Host", b"shadowpi.test"), ALICE, (b"Content-Type", content_type),
               (b"Content-Length", str(len(body) + announce_extra).encode()))
    extra = (HALF_CLOSE,) if announce_extra else ()
    return RawRequest(b"POST", b"/", headers, body,
                      tags=frozenset({"auth:valid", "framing:exact", "write", *tags, *extra}))


def twine_upload(artifact: Artifact) -> RawRequest:
    """A plain, correct twine upload of `artifact`: only the archive's contents can be wrong."""
    fields, file = twine_parts(artifact)
    return upload(envelope([*fields, file]), tags=("plain", "expect:400"))


def with_file(filename: bytes) -> bytes:
    return envelope([*FIELDS, file_part(filename, WHEEL.data, content_type=b"application/octet-stream")])


FINDINGS = [
    pytest.param(upload(FORM, b"multipart/form-data"), id="multipart-without-boundary"),
    pytest.param(upload(FORM, b"multipart/form-data; boundary=other"), id="multipart-wrong-boundary"),
    pytest.param(upload(FORM[: len(FORM) // 2]), id="multipart-truncated"),
    pytest.param(upload(envelope([*FIELDS, FILE], close=False)), id="multipart-unterminated"),
    pytest.param(upload(b"\x00garbage"), id="multipart-garbage"),
    pytest.param(upload(with_file(WHEEL.filename.encode() + b"\x00")), id="nul-in-filename"),
    pytest.param(upload(with_file(b"a\nb.whl")), id="newline-in-filename"),
    pytest.param(upload(FORM, announce_extra=10), id="client-gone-mid-upload"),
    pytest.param(upload(envelope([*FIELDS, field_part(b"description", b"d" * 1_500_000), FILE]),
                        tags=("plain", "expect:200")), id="1.5MB-description"),
    # Every member of wheels and sdists is path-checked (issue 10, item 12).
    *(pytest.param(twine_upload(artifact), id=f"{kind}-member-{member}",
)
      for artifact, member in zip(UNSAFE_ARTIFACTS, [*UNSAFE_MEMBERS, *UNSAFE_MEMBERS, "link"], strict=True)
      for kind in ["sdist" if artifact.filename.endswith(".tar.gz") else "wheel"]),
    pytest.param(RawRequest(b"GET", f"/files/tinylib/{TINYLIB_2.sha256}/{TINYLIB_2.filename}".encode(),
                            ((b"Host", b"shadowpi.test"), (b"Content-Length", b"10")), tags=frozenset({HALF_CLOSE})),
                 id="client-gone-mid-download"),
]
# How the server logs is decided where `shadowpi serve` sets it up (cli.py, logs.py): these run against it.
SERVE_FINDINGS = [
    pytest.param(RawRequest(b"GET", b"/health", ((b"Host", b"shadowpi.test"),), version=b"HTTP/9.9"),
                 id="bad-http-version-logs-traceback"),
    pytest.param(RawRequest(b"GET", b"/health", ((b"Host", b"shadowpi.test"), (b"X-A", b"a\x00b"))),
                 id="nul-in-header-logs-traceback"),
    pytest.param(upload(envelope([*FIELDS, file_part(b"", WHEEL.data, encoding="unquoted")])),
                 id="part-header-warning-breaks-json-log"),
]


@pytest.fixture(scope="module")
def fresh_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, InProcessTarget]]:
    """Servers of this module alone: nothing cached yet when a finding needs a cold download."""
    with fuzz_servers(Path(tmp_path_factory.mktemp("findings")), SURFACES[:1]) as targets:
        yield targets


@pytest.mark.parametrize("request_", FINDINGS)
def test_finding(fresh_servers: dict[str, InProcessTarget], request_: RawRequest):
    """The request breaks no invariant: no undocumented 5xx, no ERROR or traceback logged, /health answers,
    nothing stored, and a plain request gets the answer it must get."""
    outcome = run_example(fresh_servers["anonymous"], request_)
    assert outcome.problems == [], report(outcome)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeTarget]:
    """A real `shadowpi serve --log-format json` (anonymous surface) in front of the fake upstream."""
    loops = LoopThread()
    try:
        _fake, upstream, url = loops.run(start_upstream(sample_dists()))
        target = ServeTarget(SURFACES[0], Path(tmp_path_factory.mktemp("served")), url, outlives_test=True)
        target.start(loops)
        try:
            yield target
        finally:
            assert target.stop() == 0
            loops.run(upstream.cleanup())
    finally:
        loops.close()


@pytest.mark.parametrize("request_", SERVE_FINDINGS)
def test_finding_on_serve(served: ServeTarget, request_: RawRequest):
    """`shadowpi serve` logs nothing at ERROR and no traceback for what a client did wrong, and with
    --log-format json every line it writes is JSON; the request breaks no other invariant either."""
    outcome = run_example(served, request_)
    assert outcome.response.status == 400
    assert outcome.problems == [], report(outcome)

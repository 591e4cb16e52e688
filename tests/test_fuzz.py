"""Fuzzing the whole HTTP surface with Hypothesis: every route and method the app registers, on two surfaces
(anonymous reads, and `[auth] read = true`), with the invariants of tests/fuzzkit/invariants.py after every example.

The CI profile is derandomized and bounded (about 30 s); FUZZ_PROFILE=long runs ten times as many random
examples, and bench/fuzz.py runs for minutes against `shadowpi serve`, measuring /health latency.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given

from tests.fuzzkit.harness import SURFACES, InProcessTarget, fuzz_servers
from tests.fuzzkit.invariants import Violation, run_example
from tests.fuzzkit.known import triage
from tests.fuzzkit.multipart import Budget
from tests.fuzzkit.plan import GROUPS, group_requests, live_routes, profile_settings
from tests.fuzzkit.routes import ROUTES
from tests.fuzzkit.wire import RawRequest


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, InProcessTarget]]:
    """The fake upstream and one shadowpi per surface, shared by this module's tests (state carries over)."""
    with fuzz_servers(Path(tmp_path_factory.mktemp("fuzz"))) as targets:
        yield targets


def test_every_route_has_a_strategy(servers: dict[str, InProcessTarget]):
    """Every (method, path pattern) the app registers has a request strategy, and no strategy names a route the
    app no longer has: a new endpoint cannot escape the fuzzer."""
    for target in servers.values():
        live = live_routes(target.app)
        assert sorted(live - set(ROUTES)) == [], "add a strategy to ROUTES in tests/fuzzkit/routes.py"
        assert sorted(set(ROUTES) - live) == [], "ROUTES names routes the app no longer has"


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("surface", [s.name for s in SURFACES])
def test_fuzz(servers: dict[str, InProcessTarget], surface: str, group: str):
    """Whatever a client sends to this group of routes: no undocumented 5xx, no ERROR or traceback in the log,
    /health answers, nothing stored from a rejected request, and plain requests get the answer they must get."""
    target = servers[surface]

    @profile_settings(group)
    @given(request=group_requests(group, live_routes(target.app), Budget()))
    def example(request: RawRequest) -> None:
        outcome = run_example(target, request)
        outcome.problems = triage(outcome)
        if outcome.problems:
            raise Violation(outcome)

    example()

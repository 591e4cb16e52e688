"""How a fuzz run is laid out: the app's live routes in groups, a strategy per group, and the Hypothesis profiles."""

from __future__ import annotations

import os

from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.fuzzkit.multipart import Budget
from tests.fuzzkit.routes import ROUTES, malformed_requests, route_requests, unrouted_requests
from tests.fuzzkit.ui_routes import is_ui_route
from tests.fuzzkit.wire import RawRequest

RouteKey = tuple[str, str]
# Examples per group and surface in the CI profile: about 30 s for the whole suite on an idle 2-core machine.
CI_EXAMPLES = {"pages": 70, "files": 70, "uploads": 110, "management": 45, "ops": 35, "ui": 60, "http": 60}
GROUPS = tuple(CI_EXAMPLES)

_COMMON = {
    "database": None,  # nothing written to .hypothesis/; reproducers are printed instead
    "deadline": None,  # a request's time depends on the machine's load: /health has its own deadline
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
}
# CI: the same examples in every run (derandomize), so a red run is reproducible and a green one means something.
settings.register_profile("shadowpi-ci", derandomize=True, print_blob=False, **_COMMON)  # type: ignore[arg-type]
# Long: new random examples every run, ten times as many (bench/fuzz.py goes further with --examples/--seconds).
settings.register_profile("shadowpi-long", derandomize=False, print_blob=True, **_COMMON)  # type: ignore[arg-type]
PROFILE = os.environ.get("FUZZ_PROFILE", "ci")
SCALE = 10 if PROFILE == "long" else 1


def profile_settings(group: str) -> settings:
    """The settings for one group's test: FUZZ_PROFILE=long for a longer, randomized run."""
    return settings(settings.get_profile(f"shadowpi-{PROFILE}"), max_examples=CI_EXAMPLES[group] * SCALE)


def live_routes(app: web.Application) -> set[RouteKey]:
    """(method, path pattern) of every route the app registers."""
    return {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource is not None}


def group_of(key: RouteKey) -> str:
    method, path = key
    if is_ui_route(key):
        return "ui"
    if path.startswith("/files/"):
        return "files"
    if path.startswith("/api/"):
        return "management"
    if method == "POST":
        return "uploads"
    return "pages" if path.startswith("/simple") else "ops"


def group_requests(group: str, routes: set[RouteKey], budget: Budget) -> st.SearchStrategy[RawRequest]:
    """Requests for one group: its live routes (KeyError for a route without a strategy), or raw HTTP."""
    if group == "http":
        return st.one_of(unrouted_requests(), malformed_requests())
    keys = sorted(k for k in routes if group_of(k) == group)
    if missing := [k for k in keys if k not in ROUTES]:
        raise LookupError(f"no fuzz strategy for {missing}: add one to ROUTES in tests/fuzzkit/routes.py")
    return st.sampled_from(keys).flatmap(lambda key: route_requests(key, budget))

"""The backend contract suite's one fixture: `backends`, parametrized over every implementation pair.

Every test in tests/backends/ runs once per entry of KINDS. Adding a backend is one more entry: a function that
returns the `[database]`/`[storage]` URLs (and any other `[storage]` keys) of a fresh, empty instance (it may ask
for other fixtures, such as `postgres_db` and `s3_bucket`, through `request`). PostgreSQL and S3 run on the real
engines the suite starts (tests/engines/): those tests carry the `engines` mark. A test that needs a second
process on the same backends opens one with `backends.reopen()`: another set of connections, feed and store on
the same URLs, exactly as another worker or command would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from proxy.backends import Backends, open_backends
from proxy.config import Config
from proxy.config_load import build_config
from tests.engines.seaweed import S3Bucket

Urls = dict[str, Any]  # {"database": URL, "storage": URL, and optionally other [storage] keys}


def _sqlite_local(_request: pytest.FixtureRequest, root: Path) -> Urls:
    # Explicit URLs outside the data dir, so the suite also checks that nothing assumes the default places.
    return {"database": f"sqlite://{root / 'meta' / 'shadowpi.sqlite3'}", "storage": f"file://{root / 'store'}"}


def _sqlite_s3(request: pytest.FixtureRequest, root: Path) -> Urls:
    # A fresh SeaweedFS bucket; the AWS environment (endpoint, credentials) is set by the s3_bucket fixture.
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return {"database": f"sqlite://{root / 'meta' / 'shadowpi.sqlite3'}", "storage": bucket.url}


def _sqlite_s3_cached(request: pytest.FixtureRequest, root: Path) -> Urls:
    # The same, behind a local read cache big enough for every blob the tests write.
    return {**_sqlite_s3(request, root), "local_cache": 64 * 2**20}


def _postgresql_local(request: pytest.FixtureRequest, root: Path) -> Urls:
    server = request.getfixturevalue("postgres_server")  # the session's PostgreSQL: a fresh database of its own
    database = server.create_database()
    request.addfinalizer(lambda: server.drop_database(database.name))
    return {"database": database.url, "storage": f"file://{root / 'store'}"}


def _postgresql_s3(request: pytest.FixtureRequest, root: Path) -> Urls:
    # The cluster's pair: replicas share both (fills are coordinated through the database).
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return {**_postgresql_local(request, root), "storage": bucket.url}


KINDS: dict[str, Callable[[pytest.FixtureRequest, Path], Urls]] = {
    "sqlite+local": _sqlite_local,
    "postgresql+local": _postgresql_local,
    "sqlite+s3": _sqlite_s3,
    "sqlite+s3+cache": _sqlite_s3_cached,
    "postgresql+s3": _postgresql_s3,
}
MARKS = {kind: [pytest.mark.engines] for kind in KINDS if kind != "sqlite+local"}
# Kinds that differ from another only in where blobs are stored run only the test modules about blobs, spools and
# fills (the metadata modules would test the same store again, at a minute of bucket set-ups); PostgreSQL + S3
# differs from both halves only in its fill coordinator (the cluster's, postgres/fills.py).
STORAGE_MODULES = {"test_blobs", "test_fills", "test_spools", "test_remote_blobs"}
ONLY = {"sqlite+s3": STORAGE_MODULES, "sqlite+s3+cache": STORAGE_MODULES, "postgresql+s3": {"test_fills"}}
# Modules about object stores' own promises: only the kinds with an object store run them.
REMOTE_MODULES = {"test_remote_blobs"}
REMOTE = {"sqlite+s3", "sqlite+s3+cache", "postgresql+s3"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backends" in metafunc.fixturenames:
        module = metafunc.module.__name__.rpartition(".")[2]
        kinds = [kind for kind in KINDS if (kind not in ONLY or module in ONLY[kind])
                 and (module not in REMOTE_MODULES or kind in REMOTE)]
        params = [pytest.param(kind, marks=MARKS.get(kind, [])) for kind in kinds]
        metafunc.parametrize("backends", params, indirect=True, ids=kinds)


@dataclass(frozen=True, slots=True)
class BackendsUnderTest(Backends):
    """Opened backends, plus the configuration they were opened from and a way to get empty ones of the kind."""

    config: Config
    kind: str
    empty: Callable[[], Config]

    def reopen(self, *, migrate: bool = False, check_schema: bool = True) -> AbstractAsyncContextManager[Backends]:
        """The same backends opened again: stands for another process (a worker, a command)."""
        return open_backends(self.config, migrate=migrate, check_schema=check_schema)


def _config(request: pytest.FixtureRequest, kind: str, root: Path) -> Config:
    urls = KINDS[kind](request, root)
    storage = {"url": urls.pop("storage"), **{key: value for key, value in urls.items() if key != "database"}}
    return build_config({
        "server": {"data_dir": str(root / "data")},
        "database": {"url": urls["database"]},
        "storage": storage,
    })


@pytest.fixture
async def backends(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BackendsUnderTest]:
    """Fresh, migrated backends of one kind (see KINDS, parametrized by pytest_generate_tests); closed after the
    test. `.empty()` configures another,
    empty (never migrated) instance of the same kind."""
    async with _opened(request, request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
async def postgresql_backends(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BackendsUnderTest]:
    """`backends` of the kind "postgresql+local" only, for the PostgreSQL backend's own tests."""
    async with _opened(request, "postgresql+local", tmp_path) as opened:
        yield opened


@pytest.fixture
def cluster_config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """The configuration of a "postgresql+s3" cluster's fresh database and bucket (nothing opened yet)."""
    return _config(request, "postgresql+s3", tmp_path)


@asynccontextmanager
async def _opened(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> AsyncIterator[BackendsUnderTest]:
    roots = iter(range(1, 100))
    config = _config(request, kind, tmp_path)
    async with open_backends(config, migrate=True) as opened:
        yield BackendsUnderTest(
            **{f.name: getattr(opened, f.name) for f in fields(opened)}, config=config, kind=kind,
            empty=lambda: _config(request, kind, tmp_path / f"empty-{next(roots)}"),
        )


@pytest.fixture
async def peer(backends: BackendsUnderTest) -> AsyncIterator[Backends]:
    """Another process on the same backends as `backends` (backends.reopen())."""
    async with backends.reopen() as peer:
        yield peer

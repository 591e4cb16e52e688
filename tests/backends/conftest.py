"""The backend contract suite's one fixture: `backends`, parametrized over every implementation pair.

Every test in tests/backends/ runs once per entry of KINDS. Adding a backend is one more entry: a function that
returns the `[database]`/`[storage]` URLs (and any other `[storage]` keys) of a fresh, empty instance (it may ask
for other fixtures, such as `postgres_db` and `s3_bucket`, through `request`). A test that needs a second
process on the same backends opens one with `backends.reopen()`: another set of connections, feed and store on
the same URLs, exactly as another worker or command would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from proxy.backends import Backends, open_backends
from proxy.config import Config, build_config
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


KINDS: dict[str, Callable[[pytest.FixtureRequest, Path], Urls]] = {
    "sqlite+local": _sqlite_local,
    "sqlite+s3": _sqlite_s3,
    "sqlite+s3+cache": _sqlite_s3_cached,
}
# Kinds that differ from the first only in where blobs are stored run only the test modules about blobs, spools and
# fills (the metadata modules would test the same SQLite store again, at a minute of bucket set-ups).
STORAGE_ONLY = {"sqlite+s3", "sqlite+s3+cache"}
STORAGE_MODULES = {"test_blobs", "test_fills", "test_spools"}
# Kinds with an object store, the only ones that run the modules about object stores' own promises.
REMOTE = {"sqlite+s3", "sqlite+s3+cache"}
REMOTE_MODULES = {"test_remote_blobs"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backends" in metafunc.fixturenames:
        module = metafunc.module.__name__.rpartition(".")[2]
        if module in REMOTE_MODULES:
            kinds = [kind for kind in KINDS if kind in REMOTE]
        else:
            kinds = [kind for kind in KINDS if kind not in STORAGE_ONLY or module in STORAGE_MODULES]
        metafunc.parametrize("backends", kinds, indirect=True)


@dataclass(frozen=True, slots=True)
class BackendsUnderTest(Backends):
    """Opened backends, plus the configuration they were opened from."""

    config: Config

    def reopen(self, *, migrate: bool = False) -> AbstractAsyncContextManager[Backends]:
        """The same backends opened again: stands for another process (a worker, a command)."""
        return open_backends(self.config, migrate=migrate)


@pytest.fixture
async def backends(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BackendsUnderTest]:
    """Fresh, migrated backends of one kind (see KINDS, parametrized by pytest_generate_tests); closed after the
    test."""
    urls = KINDS[request.param](request, tmp_path)
    storage = {"url": urls.pop("storage"), **{key: value for key, value in urls.items() if key != "database"}}
    config = build_config({
        "server": {"data_dir": str(tmp_path / "data")},
        "database": {"url": urls["database"]},
        "storage": storage,
    })
    async with open_backends(config, migrate=True) as opened:
        yield BackendsUnderTest(**{f.name: getattr(opened, f.name) for f in fields(opened)}, config=config)


@pytest.fixture
async def peer(backends: BackendsUnderTest) -> AsyncIterator[Backends]:
    """Another process on the same backends as `backends` (backends.reopen())."""
    async with backends.reopen() as peer:
        yield peer

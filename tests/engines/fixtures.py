"""pytest fixtures for the real engines: one PostgreSQL cluster and one SeaweedFS per test session (started
the first time a test asks), a fresh database and a fresh bucket per test.

Both are plain network services on 127.0.0.1, so several shadowpi processes in one test (the replicas of a
cluster) share them: hand each the same `postgres_db.url`, `s3_bucket.url` and `s3_bucket.env`.

An engine that cannot start fails every test that needs it, with one message saying what to install; it is
not skipped. A skip would let a machine without PostgreSQL report a green run that never exercised the
PostgreSQL backend, which is exactly what CI must not do. Deselect them knowingly with `-m "not engines"`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.engines.common import EngineUnavailable
from tests.engines.postgres import Database, PostgresServer
from tests.engines.seaweed import FOREIGN_AWS_VARS, S3Bucket, SeaweedServer

T = TypeVar("T")


def _start(engine: str, start: Callable[[], T]) -> T:
    try:
        return start()
    except EngineUnavailable as exc:
        pytest.fail(f"{engine} cannot run here: {exc}\n(deselect these tests with -m 'not engines')", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the whole session, stopped and deleted at its end."""
    server = _start("PostgreSQL", PostgresServer.start)
    yield server
    server.stop()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[Database]:
    """An empty database of this test's own; `.url` is `postgresql://shadowpi:PASSWORD@127.0.0.1:PORT/NAME`."""
    database = postgres_server.create_database()
    yield database
    postgres_server.drop_database(database.name)


@pytest.fixture(scope="session")
def seaweed_server() -> Iterator[SeaweedServer]:
    """A throwaway SeaweedFS (S3 gateway with one signed identity) for the session, killed and deleted at its end."""
    server = _start("SeaweedFS", SeaweedServer.start)
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(seaweed_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """An empty bucket of this test's own, and this process's AWS environment pointing at it.

    `.url` is `s3://BUCKET/shadowpi`; `.env` holds AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3
    and AWS_REGION (set in os.environ for the test, and to pass to subprocesses). Variables that would point a
    client elsewhere (AWS_PROFILE, AWS_SESSION_TOKEN, ...) are removed for the test.
    """
    bucket = seaweed_server.create_bucket()
    for name in FOREIGN_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in bucket.env.items():
        monkeypatch.setenv(name, value)
    yield bucket
    seaweed_server.delete_bucket(bucket.name)

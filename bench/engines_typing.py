"""How each candidate library fares under `mypy --strict`: a typical snippet per library, checked in a temp dir.

aiobotocore and asyncpg ship no type information; their rows use the stubs from the `test` extra
(types-aiobotocore[s3], asyncpg-stubs). obstore, psycopg and psycopg-pool ship their own (py.typed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TYPING_SNIPPETS = {
    "aiobotocore": '''
from aiobotocore.session import get_session
from types_aiobotocore_s3 import S3Client

async def fetch(bucket: str, key: str) -> bytes:
    async with get_session().create_client("s3") as s3:
        client: S3Client = s3
        response = await client.get_object(Bucket=bucket, Key=key, Range="bytes=0-9")
        data: bytes = await response["Body"].read()
        await client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        return data
''',
    "obstore": '''
import obstore
from obstore.store import S3Store

async def fetch(bucket: str, key: str) -> bytes:
    store = S3Store(bucket, client_options={"allow_http": True})
    result = await obstore.get_async(store, key, options={"range": (0, 10)})
    data = bytes(await result.bytes_async())
    await obstore.put_async(store, key, data, mode="create")
    return data
''',
    "asyncpg": '''
import asyncpg

async def count(url: str) -> int:
    pool = await asyncpg.create_pool(url)
    async with pool.acquire() as conn:
        value: int = await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname = $1", "x")
        await conn.add_listener("ch", lambda c, pid, channel, payload: None)
    await pool.close()
    return value
''',
    "psycopg": '''
import psycopg
from psycopg_pool import AsyncConnectionPool

async def count(url: str) -> int:
    async with AsyncConnectionPool(url, open=False) as pool, pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", ("x",))
        row = await cursor.fetchone()
        async for notify in conn.notifies(timeout=0.1):
            print(notify.payload)
        return 0 if row is None else int(row[0])
''',
}


def typing_check() -> dict[str, str]:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        return {}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in TYPING_SNIPPETS.items():
            path = Path(tmp, f"snippet_{name}.py")
            path.write_text(code)
            result = subprocess.run([mypy, "--strict", "--no-incremental", str(path)], capture_output=True,
                                    text=True, check=False, cwd=tmp)
            lines = [line.replace(str(path), "snippet") for line in result.stdout.splitlines() if ": error:" in line]
            out[name] = "clean" if result.returncode == 0 else f"{len(lines)} errors: " + " | ".join(lines[:3])
    return out

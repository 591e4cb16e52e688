"""What each S3 client candidate does against SeaweedFS beyond bulk transfers (run by bench/engines_s3.py):
presigned GET, ranged GET, HEAD, list by prefix, conditional create, delete, and credentials from ~/.aws.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from bench.engines_s3 import boto_client, obstore_store


def _env(name: str) -> str:
    return os.environ[name]


# ---- features ----------------------------------------------------------------------------------------------


async def features(client: str) -> dict[str, str]:
    """Presigned GET, ranged GET, HEAD, list by prefix, conditional create, delete: what each call returned."""
    import aiohttp

    bucket = _env("BENCH_BUCKET")
    ops = _BotoOps(bucket) if client == "aiobotocore" else _ObsOps(bucket)
    out: dict[str, str] = {}
    async with ops, aiohttp.ClientSession() as http:
        await ops.put("f/one", b"0123456789")
        await ops.put("g/other", b"x")
        async with http.get(await ops.presign("f/one")) as response:
            out["presigned GET"] = f"{response.status} {await response.read()!r}"
        out["ranged GET 2-5"] = repr(await ops.range("f/one", 2, 6))
        out["HEAD"] = await ops.head("f/one")
        out["list prefix f/"] = repr(await ops.list("f/"))
        out["create if absent (new key)"] = await ops.create("f/two", b"first")
        out["create if absent (existing)"] = await ops.create("f/two", b"second")
        await ops.delete("f/one")
        out["HEAD after delete"] = await ops.head("f/one")
    return out


class _BotoOps:
    def __init__(self, bucket: str) -> None:
        self.bucket, self.context = bucket, boto_client()

    async def __aenter__(self) -> _BotoOps:
        self.s3 = await self.context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.context.__aexit__(*exc)

    async def put(self, key: str, data: bytes) -> None:
        await self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    async def presign(self, key: str) -> str:
        url: str = await self.s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                        ExpiresIn=60)
        return url

    async def range(self, key: str, start: int, end: int) -> bytes:
        response = await self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        data: bytes = await response["Body"].read()
        return data

    async def head(self, key: str) -> str:
        from botocore.exceptions import ClientError

        try:
            meta = await self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            return f"ClientError {exc.response['Error']['Code']}"
        return f"size={meta['ContentLength']} etag={meta['ETag']}"

    async def list(self, prefix: str) -> list[str]:
        response = await self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]

    async def create(self, key: str, data: bytes) -> str:
        from botocore.exceptions import ClientError

        try:
            await self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            return f"ClientError {exc.response['Error']['Code']} (HTTP {status})"
        return "created"

    async def delete(self, key: str) -> None:
        await self.s3.delete_object(Bucket=self.bucket, Key=key)


class _ObsOps:
    def __init__(self, bucket: str) -> None:
        import obstore

        self.obstore, self.store = obstore, obstore_store(bucket)

    async def __aenter__(self) -> _ObsOps:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def put(self, key: str, data: bytes) -> None:
        await self.obstore.put_async(self.store, key, data)

    async def presign(self, key: str) -> str:
        url: str = await self.obstore.sign_async(self.store, "GET", key, datetime.timedelta(seconds=60))
        return url

    async def range(self, key: str, start: int, end: int) -> bytes:
        return bytes(await self.obstore.get_range_async(self.store, key, start=start, end=end))

    async def head(self, key: str) -> str:
        try:
            meta = await self.obstore.head_async(self.store, key)
        except FileNotFoundError as exc:
            return f"{type(exc).__name__}"
        return f"size={meta['size']} etag={meta['e_tag']}"

    async def list(self, prefix: str) -> list[str]:
        return [meta["path"] for batch in self.obstore.list(self.store, prefix=prefix) for meta in batch]

    async def create(self, key: str, data: bytes) -> str:
        from obstore.exceptions import AlreadyExistsError

        try:
            await self.obstore.put_async(self.store, key, data, mode="create")
        except AlreadyExistsError as exc:
            return f"{type(exc).__name__} (HTTP 412)"
        return "created"

    async def delete(self, key: str) -> None:
        await self.obstore.delete_async(self.store, key)


# ---- credentials from ~/.aws -------------------------------------------------------------------------------


async def from_aws_files(client: str) -> str:
    """Called with HOME holding ~/.aws/credentials + config and no AWS_ACCESS_KEY_ID: can the client list?

    object_store's own chain (env, web identity, ECS, EC2 metadata) never reads ~/.aws; without credentials it
    asks the EC2 metadata endpoint, which the parent points at a closed 127.0.0.1 port so nothing leaves the
    machine. `obstore+botocore` passes a credential provider that reads the standard chain through botocore.
    """
    bucket = _env("BENCH_BUCKET")
    try:
        if client == "aiobotocore":
            async with boto_client() as s3:
                await s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
        else:
            import obstore

            extra = {"credential_provider": _botocore_credentials} if client == "obstore+botocore" else {}
            await obstore.head_async(obstore_store(bucket, **extra), "missing-key")
    except FileNotFoundError:
        return "yes"  # authenticated: a 404 for the missing key, not a 403
    except Exception as exc:
        return f"no: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return "yes"


def _botocore_credentials() -> dict[str, Any]:
    """An obstore credential provider backed by botocore's chain (env, ~/.aws/credentials, SSO, process, ...)."""
    import botocore.session

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("botocore found no credentials")
    frozen = credentials.get_frozen_credentials()
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=15)
    return {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key, "token": frozen.token,
            "expires_at": expires}

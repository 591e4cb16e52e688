"""What is in a test bucket, seen with an S3 client of the test's own (not the store under test)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config

from proxy.backends.urls import S3URL, parse_storage_url


@dataclass
class Bucket:
    """A bucket and prefix (from a storage URL), with an S3 client on the same endpoint and credentials."""

    bucket: str
    prefix: str
    client: Any

    async def keys(self) -> list[str]:
        """Every object key under the prefix."""
        answer = await self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    async def pending_uploads(self) -> list[dict[str, Any]]:
        """Multipart uploads started and neither completed nor aborted, under the prefix."""
        answer = await self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
        return list(answer.get("Uploads", []))

    async def parts(self, upload: dict[str, Any]) -> int:
        answer = await self.client.list_parts(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        return len(answer.get("Parts", []))


@contextlib.asynccontextmanager
async def bucket_of(storage_url: str) -> AsyncIterator[Bucket | None]:
    """The bucket behind an s3:// storage URL (None for other storage), with the AWS settings of the environment."""
    url = parse_storage_url("storage.url", storage_url)
    if not isinstance(url, S3URL):
        yield None
        return
    config = Config(s3={"addressing_style": "path"}, signature_version="s3v4")
    async with get_session().create_client("s3", config=config) as client:
        yield Bucket(url.bucket, url.prefix, client)

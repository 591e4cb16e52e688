"""Uploading a verified spool as an object: create-only, bounded memory, and nothing left behind on failure.

- Create-only (`If-None-Match: *`): a 412 means an object with that key exists already, and since keys are the
  sha256 of the bytes, it holds these very bytes: that is success. Two replicas committing the same blob at once
  both succeed and leave one object.
- Small spools go up in one PUT; larger ones in parts of PART_SIZE (more for files beyond 10,000 parts), at most
  PARALLEL_PARTS at a time, each read from the spool file only when its turn comes: memory stays at about
  PART_SIZE x PARALLEL_PARTS whatever the size of the file.
- A multipart upload is invisible until it is completed. Any failure (an error, a cancellation) aborts it, so no
  parts are left behind; a process killed mid-upload leaves a pending upload that nobody can see, which
  `abort_stale_uploads` removes later.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from proxy.backends.s3.client import code_of, storage_errors
from proxy.backends.spool import Spool

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

__all__ = ["PARALLEL_PARTS", "PART_SIZE", "abort_stale_uploads", "upload_spool"]

log = logging.getLogger(__name__)

PART_SIZE = 8 * 2**20  # S3 wants at least 5 MiB per part (all but the last)
PARALLEL_PARTS = 2  # parts in flight per upload (the gateway, not the client, limits an upload's speed)
MAX_PARTS = 10_000  # S3's limit
CONTENT_TYPE = "application/octet-stream"


def part_size(size: int) -> int:
    """PART_SIZE, or more for a file that would need more than MAX_PARTS parts."""
    return max(PART_SIZE, -(-size // MAX_PARTS))


async def upload_spool(client: S3Client, bucket: str, key: str, spool: Spool) -> None:
    """Create the object `key` from the spool's bytes, unless it exists already. Raises StorageUnavailable."""
    size = part_size(spool.size)
    if spool.size <= size:
        data = await spool.read(0, spool.size)
        with storage_errors(f"storing {key}"):
            try:
                await client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*", ContentType=CONTENT_TYPE)
            except ClientError as exc:
                if code_of(exc) != "PreconditionFailed":
                    raise
        return
    with storage_errors(f"starting the upload of {key}"):
        upload = await client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=CONTENT_TYPE)
    upload_id = upload["UploadId"]
    try:
        parts = await _upload_parts(client, bucket, key, upload_id, spool, size)
        with storage_errors(f"completing the upload of {key}"):
            try:
                await client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
                )
            except ClientError as exc:
                if code_of(exc) != "PreconditionFailed":
                    raise
                await _abort(client, bucket, key, upload_id)  # the object exists; a refused completion stays pending
    except BaseException:
        await asyncio.shield(_abort(client, bucket, key, upload_id))
        raise


async def _upload_parts(
    client: S3Client, bucket: str, key: str, upload_id: str, spool: Spool, size: int
) -> list[CompletedPartTypeDef]:
    """Every part, PARALLEL_PARTS at a time; the first failure cancels the others and is raised."""
    count = -(-spool.size // size)
    numbers = iter(range(1, count + 1))
    etags: dict[int, str] = {}

    async def worker() -> None:
        for number in numbers:  # shared: each part is taken by exactly one worker
            data = await spool.read((number - 1) * size, size)
            with storage_errors(f"storing part {number} of {key}"):
                answer = await client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )
            etags[number] = answer["ETag"]

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(PARALLEL_PARTS, count)):
                group.create_task(worker())
    except BaseExceptionGroup as failed:  # the first failure is the one to report (it cancelled the others)
        raise failed.exceptions[0] from None
    return [{"PartNumber": n, "ETag": etags[n]} for n in range(1, count + 1)]


async def _abort(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # the original failure is the one to report; a stale-upload sweep retries this
        log.warning("could not abort the upload of %s (%s): %s", key, upload_id, exc)


async def abort_stale_uploads(client: S3Client, bucket: str, prefix: str, older_than: float) -> int:
    """Abort the multipart uploads under `prefix` started more than `older_than` seconds ago (by a process that
    died mid-upload: a live one finishes or aborts its own long before). Returns how many."""
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=older_than)
    aborted = 0
    with storage_errors("listing pending uploads"):
        paginator = client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload.get("Initiated", cutoff) < cutoff and "Key" in upload and "UploadId" in upload:
                    await _abort(client, bucket, upload["Key"], upload["UploadId"])
                    aborted += 1
    return aborted

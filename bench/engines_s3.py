"""S3 client candidates for bench/engines.py: aiobotocore and obstore, each run in a fresh child process.

`python -m bench.engines_s3 CLIENT OPERATION` reads the endpoint and credentials from the standard AWS variables
and BENCH_BUCKET / BENCH_KEY / BENCH_FILE, does one thing, and prints one JSON line. A fresh process per
measurement keeps one client's memory out of the other's numbers. Both clients get the same part size and
concurrency, the settings a backend would use.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

MIB = 2**20
PART = 16 * MIB  # multipart part size, both clients
CONCURRENCY = 4  # parts in flight, both clients: at most PART * CONCURRENCY bytes buffered
READ_CHUNK = MIB  # download chunk the client hands to the sink


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _env(name: str) -> str:
    return os.environ[name]


# ---- aiobotocore -------------------------------------------------------------------------------------------


def boto_client(**extra: Any) -> Any:
    from aiobotocore.session import get_session
    from botocore.config import Config

    # Endpoint, region and credentials come from the standard chain (env vars, ~/.aws/*); path-style is ours.
    config = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                    max_pool_connections=CONCURRENCY * 2)
    return get_session().create_client("s3", config=config, **extra)


async def boto_upload(client: Any, bucket: str, key: str, path: Path) -> int:
    """Multipart upload from a file: a part is read (in a thread) only when one of CONCURRENCY slots is free."""
    upload = await client.create_multipart_upload(Bucket=bucket, Key=key)
    slots = asyncio.Semaphore(CONCURRENCY)
    loop = asyncio.get_running_loop()

    async def send(number: int, data: bytes) -> dict[str, Any]:
        try:
            part = await client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                            PartNumber=number, Body=data)
            return {"PartNumber": number, "ETag": part["ETag"]}
        finally:
            slots.release()

    tasks, sent = [], 0
    with path.open("rb") as source:  # opening is instant; every read runs in a thread
        for number in range(1, 10_001):
            await slots.acquire()
            data = await loop.run_in_executor(None, source.read, PART)
            if not data:
                slots.release()
                break
            sent += len(data)
            tasks.append(asyncio.create_task(send(number, data)))
    parts = await asyncio.gather(*tasks)
    await client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                           MultipartUpload={"Parts": parts})
    return sent


async def boto_download(client: Any, bucket: str, key: str) -> int:
    response = await client.get_object(Bucket=bucket, Key=key)
    total = 0
    async for chunk in response["Body"].iter_chunks(READ_CHUNK):
        total += len(chunk)
    return total


# ---- obstore -----------------------------------------------------------------------------------------------


def obstore_store(bucket: str, **extra: Any) -> Any:
    from obstore.store import S3Store

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3", os.environ.get("AWS_ENDPOINT_URL", ""))
    # object_store reads AWS_* itself, but refuses http:// endpoints unless told (AWS_ALLOW_HTTP or this option).
    return S3Store(bucket, client_options={"allow_http": endpoint.startswith("http://")}, **extra)


async def obs_upload(store: Any, key: str, path: Path) -> int:
    import obstore

    result = await obstore.put_async(store, key, path, chunk_size=PART, max_concurrency=CONCURRENCY)
    head = await obstore.head_async(store, key)
    assert head["e_tag"] == result["e_tag"]
    return int(head["size"])


async def obs_download(store: Any, key: str) -> int:
    import obstore

    result = await obstore.get_async(store, key)
    total = 0
    async for chunk in result.stream(min_chunk_size=READ_CHUNK):
        total += len(chunk)
    return total


# ---- reference: a presigned GET through shadowpi's own HTTP client -----------------------------------------


async def presigned_aiohttp_download(bucket: str, key: str) -> int:
    """The object through a plain aiohttp session with a 4 MiB read buffer (aiobotocore's session keeps aiohttp's
    64 KiB default): what a backend that only signs with the library and streams itself would get."""
    import aiohttp

    async with boto_client() as s3:
        url = await s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)
    total = 0
    async with aiohttp.ClientSession(read_bufsize=4 * MIB) as http, http.get(url) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(READ_CHUNK):
            total += len(chunk)
    return total


# ---- one measured transfer ---------------------------------------------------------------------------------


async def transfer(client: str, operation: str) -> dict[str, Any]:
    bucket, key, path = _env("BENCH_BUCKET"), _env("BENCH_KEY"), Path(os.environ.get("BENCH_FILE", "/dev/null"))
    if client == "aiohttp-presigned":
        return await _measure(lambda: presigned_aiohttp_download(bucket, key))
    if client == "aiobotocore":
        async with boto_client() as s3:
            return await _measure(lambda: boto_upload(s3, bucket, key, path) if operation == "upload"
                                  else boto_download(s3, bucket, key))
    store = obstore_store(bucket)
    return await _measure(lambda: obs_upload(store, key, path) if operation == "upload" else obs_download(store, key))


async def _measure(run: Callable[[], Awaitable[int]]) -> dict[str, Any]:
    rss_before, cpu_before = _status_kib("VmRSS") * 1024, _cpu()
    started = time.perf_counter()
    nbytes = await run()
    seconds = time.perf_counter() - started
    return {"bytes": nbytes, "seconds": seconds, "rss_before": rss_before, "rss_peak": _status_kib("VmHWM") * 1024,
            "cpu_seconds": _cpu() - cpu_before}


def main() -> None:
    from bench import engines_s3_features  # it imports this module's client factories

    client, what = sys.argv[1], sys.argv[2]
    result: object
    if what in ("upload", "download"):
        result = asyncio.run(transfer(client, what))
    elif what == "features":
        result = asyncio.run(engines_s3_features.features(client))
    elif what.startswith("aws-files"):
        result = asyncio.run(engines_s3_features.from_aws_files(client + what.removeprefix("aws-files")))
    elif what == "import-rss":
        __import__("aiobotocore.session" if client == "aiobotocore" else "obstore.store")
        result = _status_kib("VmRSS") * 1024
    else:
        raise SystemExit(f"unknown operation {what}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

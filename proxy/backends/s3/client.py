"""The S3 client (aiobotocore), configured the way every AWS tool is, and what its errors mean to a blob store.

Credentials, endpoint, region and profile come from botocore's standard chain (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, ~/.aws/credentials and
~/.aws/config, container and instance roles); `[storage] endpoint_url` and `[storage] region` override it. Requests
are signed with SigV4 (botocore would presign with SigV2 otherwise, which AWS refuses in newer regions). Any endpoint
that is not AWS itself is addressed path-style (http://host/bucket/key): MinIO, SeaweedFS, Ceph and Garage take it,
and a bucket subdomain of a private host name rarely resolves. aiobotocore was chosen by measurement
(bench/engines.py): the whole AWS credential chain, full multipart control, and aiohttp underneath like the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ProfileNotFound,
)
from yarl import URL

from proxy.errors import ConfigError, StorageUnavailable

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = ["S3Options", "code_of", "is_missing", "open_client", "storage_errors"]

CONNECT_TIMEOUT = 10.0  # seconds to connect to the endpoint (and to wait for a pooled connection)
READ_TIMEOUT = 60.0  # seconds of silence tolerated while reading an answer
ATTEMPTS = 3  # per request, with botocore's standard back-off (throttling, 5xx, resets before the answer)


@dataclass(frozen=True, slots=True)
class S3Options:
    """What [storage] adds to the standard AWS settings for the S3 store."""

    endpoint_url: str | None = None
    region: str | None = None
    redirect_ttl: float | None = None  # seconds presigned URLs live; None: no redirects
    connections: int = 1000  # pooled connections: every streamed download holds one


def _config(options: S3Options, style: str) -> AioConfig:
    return AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": style},
        max_pool_connections=options.connections,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
        # Integrity is the content address: every blob was verified against its sha256 before it was committed.
        # S3's own checksums would only cost CPU on every part (and not every S3-compatible store has them).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def _is_aws(endpoint: str) -> bool:
    host = URL(endpoint).host or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


@contextlib.asynccontextmanager
async def open_client(options: S3Options, key: str = "storage.url") -> AsyncIterator[S3Client]:
    """An S3 client for the store's lifetime. Raises ConfigError for a profile that does not exist."""
    session = get_session()
    kwargs = {"endpoint_url": options.endpoint_url, "region_name": options.region}
    try:
        async with contextlib.AsyncExitStack() as stack:
            client: S3Client = await stack.enter_async_context(
                session.create_client("s3", **kwargs, config=_config(options, "path"))  # type: ignore[call-overload]
            )
            if _is_aws(client.meta.endpoint_url):  # AWS itself: bucket subdomains (path style is deprecated there)
                await stack.aclose()
                client = await stack.enter_async_context(
                    session.create_client("s3", **kwargs, config=_config(options, "virtual"))  # type: ignore[call-overload]
                )
            yield client
    except ProfileNotFound as exc:
        raise ConfigError(f"{key}: {exc}") from None


def code_of(exc: ClientError) -> str:
    """The S3 error code ("NoSuchKey", "PreconditionFailed", ...), or the HTTP status for a bodiless answer."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code or str(status or "")


def is_missing(exc: ClientError) -> bool:
    """A key that does not exist (GET: NoSuchKey; HEAD: a bare 404). A missing bucket is not a missing key."""
    return code_of(exc) in {"NoSuchKey", "NotFound", "404"}


@contextlib.contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """S3 and network failures while doing `what` become StorageUnavailable (an OSError: a 503 for a client)."""
    try:
        yield
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message") or ""
        raise StorageUnavailable(f"object storage: {what} failed: {code_of(exc)} {message}".rstrip()) from exc
    except NoCredentialsError as exc:
        raise StorageUnavailable(f"object storage: {what} failed: no AWS credentials found") from exc
    except (TimeoutError, BotoCoreError, aiohttp.ClientError) as exc:
        raise StorageUnavailable(f"object storage: {what} failed: {type(exc).__name__}: {exc}") from exc

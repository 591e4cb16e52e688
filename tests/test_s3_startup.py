"""Start-up on S3 storage: what keeps shadowpi from starting is said in one line naming the key (a missing bucket,
refused or absent credentials, an endpoint nobody answers), never echoing a secret, and never creating a bucket."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from proxy.backends import open_backends
from proxy.config_load import build_config
from proxy.errors import ConfigError
from tests.clients import clean_env, run
from tests.engines.seaweed import S3Bucket, SeaweedServer
from tests.servers import reserve_port

pytestmark = pytest.mark.engines

SECRET = "wrong-secret-never-shown"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing bucket", r"^storage\.url: bucket no-such-bucket-[0-9a-f]+ does not exist$"),
        ("wrong secret",
         r"^storage\.url: access to bucket test-[0-9a-f]+ denied \((SignatureDoesNotMatch|403)\): check the AWS "
         r"credentials$"),
        ("no credentials", r"^storage\.url: no AWS credentials found"),
        ("unreachable", r"^storage\.url: cannot reach bucket test-[0-9a-f]+ at http://127\.0\.0\.1:\d+: "),
    ],
)
async def test_start_up_refuses_storage_it_cannot_use(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str, expected: str
):
    """open_backends fails with one ConfigError line saying what is wrong with storage.url, without the secret."""
    url, storage = s3_bucket.url, {}
    if case == "missing bucket":
        url = f"s3://no-such-bucket-{s3_bucket.name.rpartition('-')[2]}/shadowpi"
    elif case == "wrong secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    elif case == "no credentials":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name)
        # Nothing else to find them in: no files, and never the instance metadata service (not a local address).
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    else:
        storage = {"endpoint_url": f"http://127.0.0.1:{reserve_port()}"}
    config = build_config({"server": {"data_dir": str(tmp_path / "data")}, "storage": {"url": url, **storage}})
    with pytest.raises(ConfigError, match=expected) as refused:
        async with open_backends(config, migrate=True):
            pass
    message = str(refused.value)
    assert "\n" not in message
    assert SECRET not in message
    assert s3_bucket.env["AWS_SECRET_ACCESS_KEY"] not in message


async def test_serve_stops_on_a_missing_bucket_and_creates_none(
    s3_bucket: S3Bucket, seaweed_server: SeaweedServer, tmp_path: Path
):
    """`shadowpi serve --storage s3://<missing>/...` exits 2 (a configuration error) with the one line, and the
    bucket still does not exist afterwards."""
    from botocore.exceptions import ClientError

    missing = f"no-such-bucket-{s3_bucket.name.rpartition('-')[2]}"
    result = await run(sys.executable, "-m", "proxy", "serve", "--data-dir", str(tmp_path / "data"), "--port",
                       str(reserve_port()), "--storage", f"s3://{missing}/shadowpi", env=clean_env(), timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"storage.url: bucket {missing} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ClientError):
        seaweed_server.admin_client().head_bucket(Bucket=missing)

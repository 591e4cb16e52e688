"""Uploads racing each other for one release slot, in one app and in two apps sharing a data dir (as worker
processes do): exactly one wins, whatever the interleaving; and blobs nobody refers to any more are forgotten."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sqlite3
import tarfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.backends.sqlite import DB_FILENAME
from tests.artifacts import Artifact, build_sdist, build_wheel
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import TOKEN_AUTH, add_token, blob_files, spool_files, twine_form
from tests.stores import data_dir_meta

AUTH = {"Authorization": aiohttp.encode_basic_auth(*TOKEN_AUTH)}
ONE_SDIST = "Only one sdist may be uploaded per release."


def as_zip_sdist(artifact: Artifact) -> Artifact:
    """The same release as a .zip sdist (PKG-INFO under the same top directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(artifact.data), mode="r:gz") as tar, zipfile.ZipFile(buf, "w") as zf:
        for member in tar:
            extracted = tar.extractfile(member)
            if extracted is not None:
                zf.writestr(member.name, extracted.read())
    return Artifact(artifact.filename.replace(".tar.gz", ".zip"), buf.getvalue(), artifact.metadata)


def respelled_wheel(version: str) -> Artifact:
    """A wheel of `version` written with a trailing .0: a different filename for the same release and tags."""
    wheel = build_wheel("hello-world", version, module_source="OTHER = True\n")
    return dataclasses.replace(wheel, filename=wheel.filename.replace(f"-{version}-", f"-{version}.0-"))


@dataclasses.dataclass
class GatedUpload:
    """An upload whose body stops just before its last bytes until `gate` opens, so racing uploads reach the
    server's checks together instead of one after the other."""

    client: TestClient
    artifact: Artifact
    gate: asyncio.Event
    sent: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def _body(self, data: bytes) -> AsyncIterator[bytes]:
        yield data[:-64]
        self.sent.set()  # aiohttp asks for the next chunk once the first is written
        await self.gate.wait()
        yield data[-64:]

    async def run(self) -> tuple[int, str]:
        writer = twine_form(self.artifact, version=self.artifact.version)
        data = await writer.as_bytes()
        headers = {**AUTH, "Content-Type": writer.content_type}
        async with self.client.post("/", data=self._body(data), headers=headers) as resp:
            await resp.read()
            return resp.status, resp.reason or ""


async def race(first: tuple[TestClient, Artifact], second: tuple[TestClient, Artifact]) -> list[tuple[int, str]]:
    gate = asyncio.Event()
    uploads = [GatedUpload(client, artifact, gate) for client, artifact in (first, second)]
    tasks = [asyncio.create_task(upload.run()) for upload in uploads]
    for upload in uploads:
        await upload.sent.wait()
    gate.set()
    return list(await asyncio.gather(*tasks))


async def page_files(client: TestClient) -> list[str]:
    page = await (await client.get("/simple/hello-world/", headers=JSON)).json(content_type=None)
    return sorted(f["filename"] for f in page["files"])


PAIRS = [
    pytest.param(lambda v: (build_sdist("hello-world", v), as_zip_sdist(build_sdist("hello-world", v))),
                 ONE_SDIST, id="tar.gz-and-zip-sdists"),
    pytest.param(lambda v: (build_wheel("hello-world", v), respelled_wheel(v)),
                 "File already exists", id="wheels-with-equal-tags"),
]


@pytest.mark.parametrize(("pair", "refusal"), PAIRS)
@pytest.mark.parametrize("apps", [1, 2], ids=["one-app", "two-apps-one-data-dir"])
async def test_racing_uploads_for_one_slot(make_proxy: ProxyFactory, pair, refusal: str, apps: int):
    """Two uploads racing for one release slot: one is published, the other refused with PyPI's message, and
    only the winner's bytes stay. The check and the insert are one transaction, so this holds across processes."""
    await add_token(make_proxy.data_dir, "ci")
    clients = [await make_proxy() for _ in range(apps)]
    for version in ("1.0", "2.0", "3.0"):  # a few rounds: a racy implementation loses at least one
        a, b = pair(version)
        results = await race((clients[0], a), (clients[-1], b))
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 400], results
        loser = next(reason for status, reason in results if status == 400)
        assert loser.startswith(refusal)
        winner = a if results[0][0] == 200 else b
        listed = [f for f in await page_files(clients[0]) if f"-{version}" in f]
        assert listed == [winner.filename]
        assert (a.sha256 in blob_files(make_proxy.data_dir)) == (winner is a)
        assert (b.sha256 in blob_files(make_proxy.data_dir)) == (winner is b)
    assert spool_files(make_proxy.data_dir) == []


async def blob_rows(data_dir: Path) -> set[str]:
    async with data_dir_meta(data_dir) as meta:
        return set(await meta.bundle_blob_times())


async def test_a_replaced_upload_forgets_its_blob(make_proxy: ProxyFactory):
    """With allow_overwrite, re-uploading a filename with other bytes deletes the old blob AND forgets its row
    (the row made every process believe the file was still there)."""
    await add_token(make_proxy.data_dir, "ci")
    client = await make_proxy(upload={"allow_overwrite": True})
    old = build_wheel("hello-world", "1.0")
    new = build_wheel("hello-world", "1.0", module_source="NEW = True\n")
    for artifact in (old, new):
        resp = await client.post("/", data=twine_form(artifact), headers=AUTH)
        assert resp.status == 200, resp.reason
    assert old.sha256 not in blob_files(make_proxy.data_dir)
    assert await blob_rows(make_proxy.data_dir) == {new.sha256}


async def test_token_use_leaves_no_write_lock_behind(make_proxy: ProxyFactory):
    """A token used again within a minute changes no row, but its UPDATE opened a write transaction: it must end,
    or every other writer on the data dir (other workers, commands, upload transactions) waits and then fails."""
    await add_token(make_proxy.data_dir, "ci")
    make_proxy.background = False  # the janitor's first sweep writes too: its lock is not the one looked for
    client = await make_proxy()
    for _ in range(2):  # the second use is throttled: no last_used change
        resp = await client.delete("/api/projects/nothing-here/1.0", headers=AUTH)
        assert resp.status == 404
    conn = sqlite3.connect(make_proxy.data_dir / DB_FILENAME, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # raises "database is locked" while another connection holds the lock
        conn.execute("ROLLBACK")
    finally:
        conn.close()

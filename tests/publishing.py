"""Publishing helpers for HTTP tests: twine's upload form, real credentials, and what landed on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path
from urllib.parse import quote

import aiohttp
import bcrypt
from aiohttp import hdrs
from aiohttp.test_utils import TestClient

from proxy.auth import TOKEN_USER, generate_token, hash_token
from tests.artifacts import Artifact
from tests.stores import data_dir_meta

# One real shadowpi token for the whole session; fixtures store its hash with add_token() before each test.
TOKEN = generate_token()
TOKEN_AUTH = (TOKEN_USER, TOKEN)
PASSWORD_AUTH = ("alice", "pw")
_HEADER_UNSAFE = {chr(c) for c in (*range(0x09), *range(0x0A, 0x20), 0x7F)}  # aiohttp refuses these raw


def twine_fields(artifact: Artifact) -> dict[str, str]:
    """The form fields twine sends for `artifact`, in twine's order (the file part comes after them)."""
    meta = BytesParser(policy=compat32).parsebytes(artifact.metadata or b"")
    wheel = artifact.filename.endswith(".whl")
    parts = artifact.filename.split("-")
    return {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": str(meta.get("Name", "")),
        "version": str(meta.get("Version", "")),
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": (parts[-3] if len(parts) >= 5 else "py3") if wheel else "source",
        "metadata_version": str(meta.get("Metadata-Version", "2.1")),
        "sha256_digest": hashlib.sha256(artifact.data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(artifact.data, digest_size=32).hexdigest(),
    }


def twine_form(artifact: Artifact, *, filename: str | None = None, **overrides: str | None) -> aiohttp.MultipartWriter:
    """twine's multipart body for `artifact`.

    `overrides` replace fields (None removes one; `action` stands for `:action`); `filename` replaces the file
    part's name. Names aiohttp cannot put in a header raw (NUL, control characters) go as RFC 5987 `filename*`.
    """
    fields: dict[str, str | None] = dict(twine_fields(artifact))
    for key, value in overrides.items():
        fields[":action" if key == "action" else key] = value
    name = artifact.filename if filename is None else filename
    form = aiohttp.FormData(quote_fields=False)  # quoting would send "+" (local versions) as "%2B"
    for key, value in fields.items():
        if value is not None:
            form.add_field(key, value)
    unsafe = bool(_HEADER_UNSAFE & set(name))
    form.add_field(
        "content", artifact.data, filename="placeholder" if unsafe else name, content_type="application/octet-stream"
    )
    writer = form()
    if unsafe:
        for part, _encoding, _te in writer:
            if 'filename="placeholder"' in part.headers[hdrs.CONTENT_DISPOSITION]:
                part.headers[hdrs.CONTENT_DISPOSITION] = f"form-data; name=\"content\"; filename*=utf-8''{quote(name)}"
    return writer


async def twine_upload(
    client: TestClient,
    artifact: Artifact,
    *,
    auth: tuple[str, str] | None = TOKEN_AUTH,
    path: str = "/",
    filename: str | None = None,
    headers: Mapping[str, str] | None = None,
    **overrides: str | None,
) -> aiohttp.ClientResponse:
    """POST `artifact` the way `twine upload` does; the response body is already read.

    `auth=None` sends no credentials (or only what `headers` carries, for hand-made Authorization headers).
    """
    sent = {"Authorization": aiohttp.encode_basic_auth(*auth)} if auth is not None else {}
    body = twine_form(artifact, filename=filename, **overrides)
    async with client.post(path, data=body, headers={**sent, **(headers or {})}) as resp:
        await resp.read()
        return resp


# --- credentials ---


async def add_token(data_dir: Path, user: str, token: str = TOKEN) -> int:
    """Store a token's hash in shadowpi's metadata store (created if needed) and return its id."""
    async with data_dir_meta(data_dir) as meta:
        return await meta.add_token(user, hash_token(token))


async def revoke_token(data_dir: Path, token_id: int) -> None:
    async with data_dir_meta(data_dir) as meta:
        assert await meta.revoke_token(token_id)


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with a bcrypt entry per user (cost 4: fast tests)."""
    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}" for u, p in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- what is stored ---


def blob_files(data_dir: Path) -> set[str]:
    """Names (sha256) of every committed blob."""
    return {p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()}


def spool_files(data_dir: Path) -> list[str]:
    """Whatever is left in the spool directory (should be nothing between requests)."""
    tmp = data_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


async def private_filenames(data_dir: Path) -> set[str]:
    """Every private filename, read through a second metadata store (as another process would)."""
    async with data_dir_meta(data_dir) as meta:
        return {f.filename for project in await meta.private_projects() for f in await meta.private_files(project)}


@dataclass(frozen=True)
class Stored:
    """What an upload can leave behind: committed blobs and private_files rows."""

    blobs: frozenset[str]
    files: frozenset[str]


async def stored(data_dir: Path) -> Stored:
    return Stored(frozenset(blob_files(data_dir)), frozenset(await private_filenames(data_dir)))

"""Build real, installable wheels and sdists in memory, byte-for-byte deterministic."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import re
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from functools import cached_property

from packaging.tags import parse_tag
from packaging.utils import (
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest timestamp a zip entry can carry
SDIST_MTIME = 1577836800  # 2020-01-01T00:00:00Z; after 1980 so wheels built from the sdist can zip it
GENERATOR = "shadowpi-tests (tests/artifacts.py)"


@dataclass(frozen=True)
class Artifact:
    """One distribution file: its name, bytes and core metadata (METADATA or PKG-INFO)."""

    filename: str
    data: bytes
    metadata: bytes | None

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def project(self) -> NormalizedName:
        if self.is_wheel:
            return parse_wheel_filename(self.filename)[0]
        return parse_sdist_filename(self.filename)[0]

    @property
    def version(self) -> str:
        if self.is_wheel:
            return str(parse_wheel_filename(self.filename)[1])
        return str(parse_sdist_filename(self.filename)[1])

    @property
    def metadata_sha256(self) -> str | None:
        """sha256 of the core-metadata bytes (the PEP 658 hash), or None without metadata."""
        return None if self.metadata is None else hashlib.sha256(self.metadata).hexdigest()

    @property
    def requires_python(self) -> str | None:
        return self._metadata_field("Requires-Python")

    @property
    def requires_dist(self) -> tuple[str, ...]:
        if self.metadata is None:
            return ()
        return tuple(BytesParser(policy=compat32).parsebytes(self.metadata).get_all("Requires-Dist") or ())

    def _metadata_field(self, field: str) -> str | None:
        if self.metadata is None:
            return None
        value = BytesParser(policy=compat32).parsebytes(self.metadata).get(field)
        return None if value is None else str(value)


def escape_name(name: str) -> str:
    """The filename form of a project name (wheel spec / PEP 625): normalized, runs of -_. to '_'."""
    return re.sub(r"[-_.]+", "_", name).lower()


def module_name(name: str) -> str:
    """The importable top-level package the artifacts ship: the normalized name with '-' -> '_'."""
    return canonicalize_name(name).replace("-", "_")


def core_metadata(
    name: str, version: str, *, requires_dist: Iterable[str] = (), requires_python: str | None = None,
    description: str | None = None, headers: Iterable[str] = (),
) -> bytes:
    """Metadata-Version 2.1 core metadata (a wheel's METADATA, an sdist's PKG-INFO); `headers` are extra
    "Field: value" lines (Description-Content-Type, Project-URL, ...), `description` the body."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", "Summary: test artifact"]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {req}" for req in requires_dist)
    lines.extend(headers)
    return ("\n".join(lines) + "\n\n" + (description or "")).encode()


def _payload(name: str, version: str, size: int) -> bytes:
    """Seeded pseudo-random bytes: deterministic, and deflate cannot shrink them."""
    return random.Random(f"{name}-{version}-{size}").randbytes(size)  # noqa: S311 - test data, not secrets


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _wheel_file(tag: str) -> bytes:
    # A compressed tag set (py2.py3-none-any) expands to one Tag line per tag.
    tags = sorted(str(t) for t in parse_tag(tag))
    lines = ["Wheel-Version: 1.0", f"Generator: {GENERATOR}", "Root-Is-Purelib: true"]
    lines.extend(f"Tag: {t}" for t in tags)
    return ("\n".join(lines) + "\n").encode()


def build_wheel(
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    module_source: str | None = None,
    payload_size: int = 0,
    description: str | None = None,
    metadata_headers: Sequence[str] = (),
) -> Artifact:
    """A valid, installable wheel; payload_size > 0 adds `<mod>/_payload.bin` of incompressible bytes."""
    ver = str(Version(version))
    mod = module_name(name)
    dist_info = f"{escape_name(name)}-{ver}.dist-info"
    metadata = core_metadata(name, ver, requires_dist=requires_dist, requires_python=requires_python,
                             description=description, headers=metadata_headers)
    source = module_source if module_source is not None else f'__version__ = "{ver}"\n'
    members: list[tuple[str, bytes, int]] = [(f"{mod}/__init__.py", source.encode(), zipfile.ZIP_DEFLATED)]
    if payload_size > 0:
        members.append((f"{mod}/_payload.bin", _payload(name, ver, payload_size), zipfile.ZIP_STORED))
    members.append((f"{dist_info}/METADATA", metadata, zipfile.ZIP_DEFLATED))
    members.append((f"{dist_info}/WHEEL", _wheel_file(tag), zipfile.ZIP_DEFLATED))
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data, _ in members)
    record += f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode(), zipfile.ZIP_DEFLATED))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data, compression in members:
            info = zipfile.ZipInfo(path, date_time=ZIP_EPOCH)
            info.compress_type = compression
            info.create_system = 3  # unix, so external_attr below means file mode
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    return Artifact(f"{escape_name(name)}-{ver}-{tag}.whl", buf.getvalue(), metadata)


def _pyproject(name: str, version: str, mod: str, requires_dist: Sequence[str], requires_python: str | None) -> bytes:
    # json.dumps yields valid TOML basic strings and arrays for these values.
    lines = [
        "[build-system]",
        'requires = ["setuptools>=61"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {json.dumps(name)}",
        f"version = {json.dumps(version)}",
        'description = "test artifact"',
        f"dependencies = {json.dumps(list(requires_dist))}",
    ]
    if requires_python is not None:
        lines.append(f"requires-python = {json.dumps(requires_python)}")
    lines += ["", "[tool.setuptools]", f"packages = [{json.dumps(mod)}]"]
    return ("\n".join(lines) + "\n").encode()


def _tar_entry(path: str, data: bytes | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.mtime = SDIST_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
        info.size = len(data)
    return info


def build_sdist(
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    module_source: str | None = None,
    description: str | None = None,
    metadata_headers: Sequence[str] = (),
) -> Artifact:
    """A PEP 625 `.tar.gz` sdist with PKG-INFO and a setuptools pyproject.toml, buildable by pip."""
    ver = str(Version(version))
    mod = module_name(name)
    base = f"{escape_name(name)}-{ver}"
    pkg_info = core_metadata(name, ver, requires_dist=requires_dist, requires_python=requires_python,
                             description=description, headers=metadata_headers)
    source = module_source if module_source is not None else f'__version__ = "{ver}"\n'
    entries: list[tuple[str, bytes | None]] = [
        (base, None),
        (f"{base}/PKG-INFO", pkg_info),
        (f"{base}/pyproject.toml", _pyproject(name, ver, mod, requires_dist, requires_python)),
        (f"{base}/{mod}", None),
        (f"{base}/{mod}/__init__.py", source.encode()),
    ]
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of names and clocks.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path, data in entries:
            tar.addfile(_tar_entry(path, data), None if data is None else io.BytesIO(data))
    return Artifact(f"{base}.tar.gz", buf.getvalue(), pkg_info)

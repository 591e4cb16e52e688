"""Tests for tests/artifacts.py: built wheels and sdists are valid, deterministic and installable."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.metadata import Metadata
from packaging.tags import Tag
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from tests.artifacts import build_sdist, build_wheel
from tests.clients import clean_env, run, run_pip, run_uv
from tests.conftest import SampleDists


def _zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


@pytest.mark.parametrize(
    ("name", "version", "tag", "filename"),
    [
        ("tinylib", "1.0", "py3-none-any", "tinylib-1.0-py3-none-any.whl"),
        ("Acme.Utils", "1.0", "py3-none-any", "acme_utils-1.0-py3-none-any.whl"),
        ("depends-on_tiny", "2.0.0-RC1", "py2.py3-none-any", "depends_on_tiny-2.0.0rc1-py2.py3-none-any.whl"),
        ("plat", "1", "cp311-cp311-manylinux_2_17_x86_64", "plat-1-cp311-cp311-manylinux_2_17_x86_64.whl"),
    ],
)
def test_wheel_filename_is_escaped_normalized_and_parseable(name: str, version: str, tag: str, filename: str) -> None:
    """Wheel filenames use the escaped lower-case name and normalized version; packaging parses them back."""
    wheel = build_wheel(name, version, tag=tag)
    assert wheel.filename == filename
    parsed_name, parsed_version, _, tags = parse_wheel_filename(wheel.filename)
    assert (parsed_name, parsed_version) == (wheel.project, Version(version))
    assert wheel.version == str(Version(version))
    assert {str(t) for t in tags} <= set(_wheel_field(wheel.data, wheel.filename, "Tag"))


def _wheel_field(data: bytes, filename: str, key: str) -> list[str]:
    name, version = filename.split("-")[:2]
    text = _zip(data).read(f"{name}-{version}.dist-info/WHEEL").decode()
    return [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(f"{key}: ")]


def test_wheel_record_lists_every_member_with_correct_hash_and_size() -> None:
    """RECORD has a urlsafe-b64 sha256 and size for each member, and an empty row for itself."""
    wheel = build_wheel("tinylib", "1.0", payload_size=10_000)
    zf = _zip(wheel.data)
    rows = [line.split(",") for line in zf.read("tinylib-1.0.dist-info/RECORD").decode().splitlines()]
    assert sorted(path for path, _, _ in rows) == sorted(zf.namelist())
    for path, digest, size in rows:
        if path.endswith("/RECORD"):
            assert (digest, size) == ("", "")
            continue
        content = zf.read(path)
        expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(content))


def test_wheel_metadata_is_valid_core_metadata_and_matches_artifact_metadata() -> None:
    """METADATA inside the wheel equals Artifact.metadata and validates as core metadata 2.1."""
    wheel = build_wheel("depends-on-tiny", "1.0", requires_dist=["tinylib>=1"], requires_python=">=3.8")
    assert _zip(wheel.data).read("depends_on_tiny-1.0.dist-info/METADATA") == wheel.metadata
    assert wheel.metadata is not None
    meta = Metadata.from_email(wheel.metadata, validate=True)
    assert (meta.name, meta.version, meta.metadata_version) == ("depends-on-tiny", Version("1.0"), "2.1")
    assert [str(r) for r in meta.requires_dist or []] == ["tinylib>=1"]
    assert str(meta.requires_python) == ">=3.8"
    assert (wheel.requires_python, wheel.requires_dist) == (">=3.8", ("tinylib>=1",))
    assert wheel.metadata_sha256 == hashlib.sha256(wheel.metadata).hexdigest()


def test_wheel_declares_purelib_and_expands_compressed_tags() -> None:
    """WHEEL says Wheel-Version 1.0, Root-Is-Purelib true, and one Tag line per expanded tag."""
    wheel = build_wheel("tinylib", "1.0", tag="py2.py3-none-any")
    assert _wheel_field(wheel.data, wheel.filename, "Wheel-Version") == ["1.0"]
    assert _wheel_field(wheel.data, wheel.filename, "Root-Is-Purelib") == ["true"]
    assert _wheel_field(wheel.data, wheel.filename, "Tag") == ["py2-none-any", "py3-none-any"]
    assert str(Tag("py3", "none", "any")) in _wheel_field(wheel.data, wheel.filename, "Tag")


def test_builds_are_deterministic_and_inputs_change_the_bytes() -> None:
    """Same inputs give identical bytes; a different version, payload or source gives a different hash."""
    assert build_wheel("tinylib", "1.0").data == build_wheel("tinylib", "1.0").data
    assert build_sdist("tinylib", "1.0").data == build_sdist("tinylib", "1.0").data
    hashes = {
        build_wheel("tinylib", "1.0").sha256,
        build_wheel("tinylib", "1.1").sha256,
        build_wheel("tinylib", "1.0", payload_size=10).sha256,
        build_wheel("tinylib", "1.0", module_source="X = 1\n").sha256,
    }
    assert len(hashes) == 4


def test_payload_makes_large_incompressible_deterministic_wheels() -> None:
    """payload_size adds exactly that many bytes that compression cannot shrink, the same every build."""
    wheel = build_wheel("bigpkg", "1.0", payload_size=2 * 2**20)
    payload = _zip(wheel.data).read("bigpkg/_payload.bin")
    assert len(payload) == 2 * 2**20
    assert wheel.size > len(payload)
    assert len(gzip.compress(payload)) > 0.99 * len(payload)
    assert build_wheel("bigpkg", "1.0", payload_size=2 * 2**20).sha256 == wheel.sha256


def test_artifact_properties() -> None:
    """sha256 and size describe the bytes; project is normalized; version comes from the filename."""
    wheel = build_wheel("Tiny_Lib", "01.0")
    assert wheel.sha256 == hashlib.sha256(wheel.data).hexdigest()
    assert wheel.size == len(wheel.data)
    assert (wheel.project, wheel.version, wheel.is_wheel) == ("tiny-lib", "1.0", True)
    sdist = build_sdist("Tiny_Lib", "01.0")
    assert (sdist.project, sdist.version, sdist.is_wheel) == ("tiny-lib", "1.0", False)
    assert build_wheel("x", "1").requires_python is None


def test_sdist_is_pep625_with_pkg_info_pyproject_and_module() -> None:
    """The sdist is `<escaped>-<ver>.tar.gz` holding PKG-INFO, a setuptools pyproject.toml and the package."""
    sdist = build_sdist("Depends.On-Tiny", "1.0", requires_dist=["tinylib>=1"], requires_python=">=3.8")
    assert sdist.filename == "depends_on_tiny-1.0.tar.gz"
    assert parse_sdist_filename(sdist.filename) == ("depends-on-tiny", Version("1.0"))
    with tarfile.open(fileobj=io.BytesIO(sdist.data), mode="r:gz") as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        assert sorted(files) == [
            "depends_on_tiny-1.0/PKG-INFO",
            "depends_on_tiny-1.0/depends_on_tiny/__init__.py",
            "depends_on_tiny-1.0/pyproject.toml",
        ]
        read = {name: tar.extractfile(m).read() for name, m in files.items()}  # type: ignore[union-attr]
        assert {m.mtime for m in files.values()} == {1577836800}
    assert read["depends_on_tiny-1.0/PKG-INFO"] == sdist.metadata
    Metadata.from_email(read["depends_on_tiny-1.0/PKG-INFO"], validate=True)
    pyproject = tomllib.loads(read["depends_on_tiny-1.0/pyproject.toml"].decode())
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert pyproject["project"]["name"] == "Depends.On-Tiny"
    assert pyproject["project"]["dependencies"] == ["tinylib>=1"]
    assert pyproject["project"]["requires-python"] == ">=3.8"
    assert pyproject["tool"]["setuptools"]["packages"] == ["depends_on_tiny"]
    assert read["depends_on_tiny-1.0/depends_on_tiny/__init__.py"] == b'__version__ = "1.0"\n'


def test_sdist_gzip_header_carries_no_timestamp() -> None:
    """The gzip header's MTIME field is zero, so rebuilding later yields the same bytes."""
    data = build_sdist("tinylib", "1.0").data
    assert data[:2] == b"\x1f\x8b"
    assert data[4:8] == b"\x00\x00\x00\x00"


def _write(directory: Path, *artifacts: object) -> None:
    for artifact in artifacts:
        (directory / artifact.filename).write_bytes(artifact.data)  # type: ignore[attr-defined]


async def _import_version(target: Path, module: str) -> str:
    env = clean_env() | {"PYTHONPATH": str(target)}
    code, out, err = await run(sys.executable, "-c", f"import {module}; print({module}.__version__)", env=env)
    assert code == 0, err
    return out.strip()


@pytest.mark.e2e
async def test_pip_installs_built_wheels_from_find_links(tmp_path: Path, dists: SampleDists) -> None:
    """Real pip resolves depends-on-tiny plus the newest tinylib wheel from a directory and they import."""
    links, target = tmp_path / "links", tmp_path / "target"
    links.mkdir()
    _write(links, dists.tinylib_1, dists.tinylib_2, dists.depends_on_tiny)
    code, out, err = await run_pip(
        "install", "--target", str(target), "--no-index", "--find-links", str(links), "depends-on-tiny"
    )
    assert code == 0, out + err
    assert await _import_version(target, "tinylib") == "2.0"
    assert await _import_version(target, "depends_on_tiny") == "1.0"


@pytest.mark.e2e
async def test_uv_installs_a_built_wheel_from_find_links(tmp_path: Path, dists: SampleDists) -> None:
    """Real uv installs a pinned wheel from a directory; the module reports the pinned version."""
    links, target = tmp_path / "links", tmp_path / "target"
    links.mkdir()
    _write(links, dists.tinylib_1, dists.tinylib_2)
    code, out, err = await run_uv(
        "pip", "install", "--python", sys.executable, "--target", str(target),
        "--no-index", "--find-links", str(links), "tinylib==1.0",
    )  # fmt: skip
    assert code == 0, out + err
    assert await _import_version(target, "tinylib") == "1.0"

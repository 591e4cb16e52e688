"""Archive inspection (proxy.archives): core metadata out of real and malicious wheels and sdists."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from packaging.version import Version

from proxy import archives
from proxy.archives import MAX_METADATA_BYTES, DistMetadata, inspect_distribution
from proxy.errors import InvalidUpload
from proxy.simple.names import NormalizedName
from tests.artifacts import Artifact, build_sdist, build_wheel, core_metadata

WHEEL = "acme_utils-1.0-py3-none-any.whl"
SDIST = "acme_utils-1.0.tar.gz"
DIST_INFO = "acme_utils-1.0.dist-info"
META = core_metadata("acme-utils", "1.0", requires_python=">=3.9")
INVALID = "Invalid distribution file. "


def inspect_bytes(tmp_path: Path, filename: str, data: bytes) -> DistMetadata:
    path = tmp_path / "upload.bin"  # stored under another name, as the upload spool does
    path.write_bytes(data)
    return inspect_distribution(path, filename)


def zip_bytes(members: Sequence[tuple[str, bytes]], *, symlinks: frozenset[str] = frozenset()) -> bytes:
    """A zip of (name, data) members; names in `symlinks` get a unix symlink mode."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate names some tests need
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            mode = stat.S_IFLNK | 0o777 if name in symlinks else stat.S_IFREG | 0o644
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def wheel_members(dist_info: str = DIST_INFO, metadata: bytes = META) -> list[tuple[str, bytes]]:
    """A dist-info directory's METADATA, WHEEL and RECORD."""
    return [
        (f"{dist_info}/METADATA", metadata),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\n"),
        (f"{dist_info}/RECORD", b""),
    ]


def tar_gz(*entries: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    """A .tar.gz of (name, data) regular files and prepared TarInfo headers (links, devices)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


# --- real artifacts ---


@pytest.mark.parametrize(
    "artifact",
    [
        build_wheel("Acme_Utils", "1.0", requires_python=">=3.8", requires_dist=["requests>=2", "idna"]),
        build_wheel("acme.utils", "2.0+local.1", tag="cp311-cp311-manylinux_2_17_x86_64"),
        build_wheel("acme-utils", "3.0", payload_size=100_000),
        build_sdist("acme-utils", "1.0", requires_python=">=3.9", requires_dist=["idna"]),
        build_sdist("Acme.Utils", "1.0rc1"),
    ],
    ids=lambda a: a.filename,
)
def test_real_artifact_metadata_is_extracted_byte_exact(tmp_path: Path, artifact: Artifact) -> None:
    """A wheel's METADATA or an sdist's PKG-INFO is returned byte for byte, with its name, version, requires_python."""
    assert artifact.metadata is not None
    assert inspect_bytes(tmp_path, artifact.filename, artifact.data) == DistMetadata(
        name=artifact.project,
        version=Version(artifact.version),
        requires_python=artifact.requires_python,
        metadata=artifact.metadata,
    )


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("acme_utils-1.0.zip", zip_bytes([("acme_utils-1.0/setup.py", b""), ("acme_utils-1.0/PKG-INFO", META)])),
        (WHEEL, zip_bytes(wheel_members(dist_info="Acme_Utils-1.0.dist-info"))),
        (SDIST, tar_gz(("Acme-Utils-1.0/setup.py", b""), ("Acme-Utils-1.0/PKG-INFO", META))),
        (SDIST, tar_gz(("acme_utils-1.0/PKG-INFO", META), ("acme_utils-1.0/sub/PKG-INFO", b"Name: other\n"))),
        (SDIST, tar_gz(("acme_utils-1.0/PKG-INFO", META), ("other-1.0/PKG-INFO", b"Name: other\n"))),
    ],
    ids=["zip-sdist", "unnormalized-dist-info", "legacy-sdist-top-dir", "nested-pkg-info", "expected-top-dir-wins"],
)
def test_accepted_layouts(tmp_path: Path, filename: str, data: bytes) -> None:
    """Zip sdists, one differently spelled dist-info dir or sdist top dir, and extra nested PKG-INFOs are fine."""
    meta = inspect_bytes(tmp_path, filename, data)
    assert (meta.name, meta.version, meta.requires_python, meta.metadata) == (
        "acme-utils",
        Version("1.0"),
        ">=3.9",
        META,
    )


# --- broken and malicious archives ---

BIG = b"Name: acme-utils\nVersion: 1.0\n\n" + b"x" * MAX_METADATA_BYTES
BROKEN: list[tuple[str, str, Callable[[], bytes], str]] = [
    ("wheel-not-zip", WHEEL, lambda: b"not a zip", "File is not a zip file"),
    ("wheel-truncated", WHEEL, lambda: build_wheel("acme-utils", "1.0").data[:500], "File is not a zip file"),
    (
        "wheel-no-metadata",
        WHEEL,
        lambda: zip_bytes([m for m in wheel_members() if not m[0].endswith("METADATA")]),
        f"Wheel '{WHEEL}' does not contain the required METADATA file: {DIST_INFO}/METADATA",
    ),
    (
        "wheel-no-dist-info",
        WHEEL,
        lambda: zip_bytes([("acme_utils/__init__.py", b""), ("METADATA", META)]),
        f"Wheel '{WHEEL}' does not contain the required METADATA file: {DIST_INFO}/METADATA",
    ),
    (
        "wheel-no-record",
        WHEEL,
        lambda: zip_bytes([m for m in wheel_members() if not m[0].endswith("RECORD")]),
        f"Wheel '{WHEEL}' does not contain a RECORD file",
    ),
    (
        "wheel-no-wheel-file",
        WHEEL,
        lambda: zip_bytes([m for m in wheel_members() if not m[0].endswith("/WHEEL")]),
        f"Wheel '{WHEEL}' does not contain a WHEEL file",
    ),
    (
        "wheel-two-dist-info",
        WHEEL,
        lambda: zip_bytes(wheel_members() + wheel_members(dist_info="evil-1.0.dist-info")),
        f"Wheel '{WHEEL}' contains multiple .dist-info directories: {DIST_INFO}, evil-1.0.dist-info",
    ),
    (
        "wheel-two-foreign-dist-info",
        WHEEL,
        lambda: zip_bytes(wheel_members(dist_info="a-1.0.dist-info") + wheel_members(dist_info="b-1.0.dist-info")),
        f"Wheel '{WHEEL}' contains multiple .dist-info directories: a-1.0.dist-info, b-1.0.dist-info",
    ),
    (
        "wheel-dotdot-member",
        WHEEL,
        lambda: zip_bytes([*wheel_members(), ("acme_utils/../../evil.pth", b"")]),
        "Unsafe path in archive: acme_utils/../../evil.pth",
    ),
    (
        "wheel-absolute-member",
        WHEEL,
        lambda: zip_bytes([("/etc/evil.pth", b""), *wheel_members()]),
        "Unsafe path in archive: /etc/evil.pth",
    ),
    (
        "wheel-drive-member",
        WHEEL,
        lambda: zip_bytes([*wheel_members(), ("C:/evil.pth", b"")]),
        "Unsafe path in archive: C:/evil.pth",
    ),
    (
        "wheel-oversize-metadata",
        WHEEL,
        lambda: zip_bytes(wheel_members(metadata=BIG)),
        f"{DIST_INFO}/METADATA is larger than {MAX_METADATA_BYTES} bytes",
    ),
    (
        "wheel-duplicate-metadata",
        WHEEL,
        lambda: zip_bytes([*wheel_members(), (f"{DIST_INFO}/METADATA", b"Name: evil\nVersion: 6.6.6\n")]),
        f"Duplicate file in archive: {DIST_INFO}/METADATA",
    ),
    (
        "wheel-symlink-metadata",
        WHEEL,
        lambda: zip_bytes(wheel_members(metadata=b"../../etc/passwd"), symlinks=frozenset({f"{DIST_INFO}/METADATA"})),
        f"{DIST_INFO}/METADATA is a symbolic link",
    ),
    (
        "wheel-metadata-without-name",
        WHEEL,
        lambda: zip_bytes(wheel_members(metadata=b"Metadata-Version: 2.1\nVersion: 1.0\n\n")),
        "Metadata has no valid Name",
    ),
    (
        "wheel-metadata-bad-name",
        WHEEL,
        lambda: zip_bytes(wheel_members(metadata=b"Name: -acme\nVersion: 1.0\n\n")),
        "Metadata has no valid Name: '-acme'",
    ),
    (
        "wheel-metadata-without-version",
        WHEEL,
        lambda: zip_bytes(wheel_members(metadata=b"Name: acme-utils\n\n")),
        "Metadata has no valid Version",
    ),
    (
        "wheel-metadata-bad-version",
        WHEEL,
        lambda: zip_bytes(wheel_members(metadata=b"Name: acme-utils\nVersion: 1.x\n\n")),
        "Metadata has no valid Version: '1.x'",
    ),
    ("sdist-not-gzip", SDIST, lambda: b"plain text", "not a gzip file"),
    (
        "sdist-truncated-gzip",
        SDIST,
        lambda: build_sdist("acme-utils", "1.0").data[:40],
        "Compressed file ended before the end-of-stream marker was reached",
    ),
    (
        "sdist-no-pkg-info",
        SDIST,
        lambda: tar_gz(("acme_utils-1.0/setup.py", b""), ("acme_utils-1.0/sub/PKG-INFO", META)),
        "PKG-INFO not found in sdist",
    ),
    ("sdist-pkg-info-at-root", SDIST, lambda: tar_gz(("PKG-INFO", META)), "PKG-INFO not found in sdist"),
    (
        "sdist-two-foreign-pkg-info",
        SDIST,
        lambda: tar_gz(("a-1.0/PKG-INFO", META), ("b-1.0/PKG-INFO", META)),
        "Multiple PKG-INFO files in sdist: a-1.0/PKG-INFO, b-1.0/PKG-INFO",
    ),
    (
        "sdist-symlink-pkg-info",
        SDIST,
        lambda: tar_gz(link("acme_utils-1.0/PKG-INFO", "/etc/passwd")),
        "acme_utils-1.0/PKG-INFO is not a regular file",
    ),
    (
        "sdist-hardlink-pkg-info",
        SDIST,
        lambda: tar_gz(
            ("acme_utils-1.0/x", META), link("acme_utils-1.0/PKG-INFO", "acme_utils-1.0/x", tarfile.LNKTYPE)
        ),
        "acme_utils-1.0/PKG-INFO is not a regular file",
    ),
    (
        "sdist-dotdot-member",
        SDIST,
        lambda: tar_gz(("acme_utils-1.0/../../evil", b""), ("acme_utils-1.0/PKG-INFO", META)),
        "Unsafe path in archive: acme_utils-1.0/../../evil",
    ),
    (
        "sdist-absolute-member",
        SDIST,
        lambda: tar_gz(("/tmp/evil", b""), ("acme_utils-1.0/PKG-INFO", META)),
        "Unsafe path in archive: /tmp/evil",
    ),
    (
        "sdist-oversize-pkg-info",
        SDIST,
        lambda: tar_gz(("acme_utils-1.0/PKG-INFO", BIG)),
        f"acme_utils-1.0/PKG-INFO is larger than {MAX_METADATA_BYTES} bytes",
    ),
    (
        "zip-sdist-no-pkg-info",
        "acme_utils-1.0.zip",
        lambda: zip_bytes([("acme_utils-1.0/setup.py", b"")]),
        "PKG-INFO not found in sdist",
    ),
    (
        "zip-sdist-dotdot-member",
        "acme_utils-1.0.zip",
        lambda: zip_bytes([("acme_utils-1.0/PKG-INFO", META), ("..", b"")]),
        "Unsafe path in archive: ..",
    ),
    ("unknown-extension", "acme_utils-1.0.egg", lambda: b"", "Unknown distribution type: acme_utils-1.0.egg"),
]


@pytest.mark.parametrize(
    ("filename", "build", "reason"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_archive_is_rejected(tmp_path: Path, filename: str, build: Callable[[], bytes], reason: str) -> None:
    """Corrupt, incomplete, ambiguous or unsafe archives are refused as "Invalid distribution file. <reason>"."""
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, filename, build())
    assert str(excinfo.value) == INVALID + reason


@pytest.mark.parametrize(
    ("limit", "value"),
    [("MAX_UNPACKED_BYTES", 1000), ("MAX_ARCHIVE_MEMBERS", 3)],
)
def test_sdist_walk_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, value: int) -> None:
    """Looking for PKG-INFO gives up after a bounded number of members or unpacked bytes (gzip bombs)."""
    monkeypatch.setattr(archives, limit, value)
    data = tar_gz(*((f"acme_utils-1.0/f{i}", b"x" * 600) for i in range(5)), ("acme_utils-1.0/PKG-INFO", META))
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, "Acme-Utils-1.0.tar.gz", data)
    assert str(excinfo.value) == INVALID + "Archive is too large when unpacked"


def test_sdist_walk_stops_at_expected_pkg_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The expected <name>-<version>/PKG-INFO is taken as soon as it is seen; later members are not read."""
    monkeypatch.setattr(archives, "MAX_UNPACKED_BYTES", 1000)
    data = tar_gz(("acme_utils-1.0/PKG-INFO", META), *((f"acme_utils-1.0/f{i}", b"x" * 600) for i in range(5)))
    assert inspect_bytes(tmp_path, SDIST, data).name == NormalizedName("acme-utils")


def test_too_many_zip_members_are_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zip with more members than MAX_ARCHIVE_MEMBERS is refused before any member is read."""
    monkeypatch.setattr(archives, "MAX_ARCHIVE_MEMBERS", 3)
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, WHEEL, zip_bytes([*wheel_members(), ("acme_utils/x.py", b"")]))
    assert str(excinfo.value) == INVALID + "Too many files in archive"

"""Archive inspection (proxy.archives): core metadata out of real and malicious wheels and sdists."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from packaging.version import Version

from proxy import archives
from proxy.archives import MAX_METADATA_BYTES, ArchiveLimits, DistMetadata, inspect_distribution
from proxy.errors import InvalidUpload
from tests.artifacts import Artifact, build_sdist, build_wheel, core_metadata

WHEEL = "acme_utils-1.0-py3-none-any.whl"
SDIST = "acme_utils-1.0.tar.gz"
DIST_INFO = "acme_utils-1.0.dist-info"
META = core_metadata("acme-utils", "1.0", requires_python=">=3.9")
INVALID = "Invalid distribution file. "


def inspect_bytes(tmp_path: Path, filename: str, data: bytes, limits: ArchiveLimits | None = None) -> DistMetadata:
    path = tmp_path / "upload.bin"  # stored under another name, as the upload spool does
    path.write_bytes(data)
    return inspect_distribution(path, filename, limits or ArchiveLimits())


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
        lambda: zip_bytes(wheel_members(metadata=b"WHEEL"), symlinks=frozenset({f"{DIST_INFO}/METADATA"})),
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
        lambda: tar_gz(("acme_utils-1.0/setup.cfg", META), link("acme_utils-1.0/PKG-INFO", "setup.cfg")),
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
    ("limits", "reason"),
    [
        (ArchiveLimits(max_unpacked_bytes=1000), "Archive is too large when unpacked (more than 1000 bytes)"),
        (ArchiveLimits(max_members=3), "Too many files in archive (more than 3)"),
    ],
    ids=["unpacked-bytes", "members"],
)
@pytest.mark.parametrize("pkg_info_first", [True, False], ids=["pkg-info-first", "pkg-info-last"])
def test_sdist_walk_is_bounded(tmp_path: Path, limits: ArchiveLimits, reason: str, pkg_info_first: bool) -> None:
    """Walking an sdist gives up after a bounded number of members or unpacked bytes (gzip bombs), wherever
    PKG-INFO is: every member is checked, so the walk never stops early at PKG-INFO."""
    files = [(f"acme_utils-1.0/f{i}", b"x" * 600) for i in range(5)]
    pkg_info = ("acme_utils-1.0/PKG-INFO", META)
    data = tar_gz(pkg_info, *files) if pkg_info_first else tar_gz(*files, pkg_info)
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, "Acme-Utils-1.0.tar.gz", data, limits)
    assert str(excinfo.value) == INVALID + reason


def test_too_many_zip_members_are_rejected(tmp_path: Path) -> None:
    """A zip with more members than the limit is refused before any member is read."""
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, WHEEL, zip_bytes([*wheel_members(), ("acme_utils/x.py", b"")]), ArchiveLimits(3))
    assert str(excinfo.value) == INVALID + "Too many files in archive (more than 3)"


# --- the central directory is bounded before zipfile reads it (issue 10, item 5) ---

_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory entry
_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record
_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator


def raw_zip(names: Sequence[str], *, garbage: bytes = b"", declared: int | None = None, comment: bytes = b"") -> bytes:
    """A zip built by hand: one empty stored file, listed in the central directory once per name.

    `garbage` is appended to the central directory (and counted in its size); `declared` overrides the entry
    count of the end record. This is how a central-directory bomb is made: millions of 46-byte entries.
    """
    local = _LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"
    central = b"".join(
        _CENTRAL.pack(b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name.encode()), 0, 0, 0, 0, 0, 0)
        + name.encode()
        for name in names
    ) + garbage
    count = len(names) if declared is None else declared
    end = _END.pack(b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(central), len(local), len(comment))
    return local + central + end + comment


def as_zip64(data: bytes, *, declared: int | None = None) -> bytes:
    """The same zip with zip64 end records (as zip writers emit for huge archives); `declared` overrides the count."""
    at = data.rfind(b"PK\x05\x06")
    _sig, _disk, _cd_disk, _here, total, size, offset, _comment = _END.unpack_from(data, at)
    count = total if declared is None else declared
    record = _END64.pack(b"PK\x06\x06", _END64.size - 12, 45, 45, 0, 0, count, count, size, offset)
    locator = _LOCATOR.pack(b"PK\x06\x07", 0, at, 1)
    end = _END.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:at] + record + locator + end


TEN = ArchiveLimits(max_members=10)
MEMBERS = [f"acme_utils/f{i}.py" for i in range(11)]
ZIP_BOMBS = [
    # zipfile alone would reach the garbage and fail differently: the count must stop first.
    pytest.param(raw_zip(MEMBERS, garbage=b"\x00" * 4096), id="entries-beyond-the-limit"),
    pytest.param(raw_zip(MEMBERS[:3], declared=0xFFFF), id="declared-count"),
    pytest.param(as_zip64(raw_zip(MEMBERS[:3]), declared=2**40), id="zip64-declared-count"),
    pytest.param(as_zip64(raw_zip(MEMBERS, garbage=b"\x00" * 4096)), id="zip64-entries-beyond-the-limit"),
    pytest.param(raw_zip(MEMBERS[:3], declared=1, garbage=raw_zip(MEMBERS)[31:-22]), id="understated-count"),
]


@pytest.mark.parametrize("data", ZIP_BOMBS)
@pytest.mark.parametrize("filename", [WHEEL, "acme_utils-1.0.zip"])
def test_zip_central_directory_is_bounded_before_it_is_parsed(tmp_path: Path, filename: str, data: bytes) -> None:
    """More entries than allowed, declared or actually listed, is refused from the end records and a bounded walk of
    the central directory, before zipfile builds an entry per member (a 1.85 M entry bomb cost 870 MB and 47 s)."""
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, filename, data, TEN)
    assert str(excinfo.value) == INVALID + "Too many files in archive (more than 10)"


def test_central_directory_bomb_with_default_limits(tmp_path: Path) -> None:
    """A real bomb (200,001 entries of 47 bytes) is refused with the default limit of 100,000 members."""
    names = [f"{i:x}" for i in range(200_001)]
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, WHEEL, raw_zip(names))
    assert str(excinfo.value) == INVALID + "Too many files in archive (more than 100000)"


def test_zip64_wheel_is_accepted(tmp_path: Path) -> None:
    """A wheel written with zip64 end records (huge archives need them) is read like any other."""
    data = as_zip64(zip_bytes(wheel_members()))
    assert inspect_bytes(tmp_path, WHEEL, data, TEN).metadata == META


END_RECORD_CASES = [
    pytest.param(zip_bytes(wheel_members()), id="plain"),
    pytest.param(raw_zip(MEMBERS, comment=b"a comment"), id="comment"),
    pytest.param(raw_zip(MEMBERS[:2], comment=raw_zip(MEMBERS)[-22:]), id="end-record-inside-comment"),
    pytest.param(as_zip64(zip_bytes(wheel_members())), id="zip64"),
    pytest.param(b"junk" + zip_bytes(wheel_members()), id="prefixed"),
    pytest.param(b"not a zip", id="not-a-zip"),
]


@pytest.mark.parametrize("data", END_RECORD_CASES)
def test_end_record_is_the_one_zipfile_uses(tmp_path: Path, data: bytes) -> None:
    """Pins our end-record reader to the stdlib's private _EndRecData: both pick the same record, count and size.

    If a Python release changes how zipfile finds the record, this fails, and the limit check must follow it.
    """
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    with path.open("rb") as f:
        ours = archives.zip_end_record(f)
        f.seek(0)
        theirs = zipfile._EndRecData(f)
        if theirs is None:
            assert ours is None
            return
        assert ours is not None
        expected = [theirs[i] for i in (zipfile._ECD_ENTRIES_TOTAL, zipfile._ECD_SIZE, zipfile._ECD_LOCATION)]
        assert [ours.entries, ours.size, ours.location] == expected
        f.seek(0)
        try:
            start_dir = zipfile.ZipFile(f).start_dir
        except zipfile.BadZipFile:
            return  # zipfile refuses it later anyway
        assert ours.directory_start == start_dir


# --- every member is checked, not only those before PKG-INFO (issue 10, item 12) ---

def pax_named(name: str) -> tarfile.TarInfo:
    """An empty file whose name travels in a PAX record, which may hold characters a tar header cannot (NUL)."""
    info = tarfile.TarInfo("placeholder")
    info.pax_headers = {"path": name}
    return info


def pax_tar_gz(*entries: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    """Like tar_gz, in PAX format, which can carry any name (NUL included)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(
        fileobj=gz, mode="w", format=tarfile.PAX_FORMAT
    ) as tar:
        for entry in entries:
            info = entry if isinstance(entry, tarfile.TarInfo) else tarfile.TarInfo(entry[0])
            if isinstance(entry, tuple):
                info.size = len(entry[1])
            tar.addfile(info, io.BytesIO(entry[1]) if isinstance(entry, tuple) else None)
    return buf.getvalue()


UNSAFE_TAR = [
    ("dotdot-after-pkg-info", [("../../../etc/cron.d/x", b"")], "Unsafe path in archive: ../../../etc/cron.d/x"),
    ("absolute-after-pkg-info", [("/etc/cron.d/x", b"")], "Unsafe path in archive: /etc/cron.d/x"),
    ("backslash", [("acme_utils-1.0\\..\\x", b"")], "Unsafe path in archive: acme_utils-1.0\\..\\x"),
    ("drive", [("C:/x", b"")], "Unsafe path in archive: C:/x"),
    ("nul", [pax_named("acme_utils-1.0/a\x00b")], "Unsafe path in archive: acme_utils-1.0/a?b"),
    ("symlink-up", [link("acme_utils-1.0/l", "../../etc")], "Unsafe link in archive: acme_utils-1.0/l -> ../../etc"),
    ("symlink-absolute", [link("acme_utils-1.0/l", "/etc/passwd")],
     "Unsafe link in archive: acme_utils-1.0/l -> /etc/passwd"),
    ("hardlink-up", [link("acme_utils-1.0/h", "../x", tarfile.LNKTYPE)],
     "Unsafe link in archive: acme_utils-1.0/h -> ../x"),
    ("symlink-chain", [link("acme_utils-1.0/a", ".."), link("acme_utils-1.0/a/b", "..")],
     "Unsafe path in archive: acme_utils-1.0/a/b is inside the symbolic link acme_utils-1.0/a"),
    ("device", [link("acme_utils-1.0/dev", "", tarfile.CHRTYPE)],
     "Unsupported file type in archive: acme_utils-1.0/dev (only files, directories and links)"),
]


@pytest.mark.parametrize(("members", "reason"), [c[1:] for c in UNSAFE_TAR], ids=[c[0] for c in UNSAFE_TAR])
def test_every_sdist_member_is_checked(tmp_path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], reason: str):
    """Members after PKG-INFO are checked too: unsafe paths, links leaving the archive, and devices are refused."""
    data = pax_tar_gz(("acme_utils-1.0/PKG-INFO", META), *members)
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, SDIST, data)
    assert str(excinfo.value) == INVALID + reason


UNSAFE_ZIP = [
    ("backslash", [("acme_utils\\x.py", b"")], set(), "Unsafe path in archive: acme_utils\\x.py"),
    ("nul", [("acme_utils/x.py\x00.txt", b"")], set(), "Unsafe path in archive: acme_utils/x.py?.txt"),  # raw bytes
    ("symlink-up", [("acme_utils/l", b"../../x")], {"acme_utils/l"}, "Unsafe link in archive: acme_utils/l -> ../../x"),
    ("symlink-absolute", [("acme_utils/l", b"/etc")], {"acme_utils/l"}, "Unsafe link in archive: acme_utils/l -> /etc"),
    ("symlink-chain", [("a/l", b".."), ("a/l/m", b"..")], {"a/l", "a/l/m"},
     "Unsafe path in archive: a/l/m is inside the symbolic link a/l"),
]


@pytest.mark.parametrize(
    ("members", "symlinks", "reason"), [c[1:] for c in UNSAFE_ZIP], ids=[c[0] for c in UNSAFE_ZIP]
)
def test_every_wheel_member_is_checked(
    tmp_path: Path, members: list[tuple[str, bytes]], symlinks: set[str], reason: str
) -> None:
    """Wheels (and zip sdists): backslashes, NUL (zipfile would cut the name there) and escaping links are refused."""
    # zipfile cuts names at NUL when writing too: write a stand-in of the same length, then patch the bytes.
    stand_ins = [(name.replace("\x00", "Z"), data) for name, data in members]
    data = zip_bytes([*wheel_members(), *stand_ins], symlinks=frozenset(symlinks))
    for (name, _), (stand_in, _) in zip(members, stand_ins, strict=True):
        data = data.replace(stand_in.encode(), name.encode())
    with pytest.raises(InvalidUpload) as excinfo:
        inspect_bytes(tmp_path, WHEEL, data)
    assert str(excinfo.value) == INVALID + reason


def test_links_inside_the_archive_are_fine(tmp_path: Path) -> None:
    """Symbolic and hard links whose targets stay inside the archive are accepted."""
    data = pax_tar_gz(
        ("acme_utils-1.0/PKG-INFO", META),
        ("acme_utils-1.0/docs/a.txt", b"a"),
        link("acme_utils-1.0/docs/b.txt", "a.txt"),
        link("acme_utils-1.0/c.txt", "docs/../docs/a.txt"),
        link("acme_utils-1.0/d.txt", "acme_utils-1.0/docs/a.txt", tarfile.LNKTYPE),
    )
    assert inspect_bytes(tmp_path, SDIST, data).metadata == META
    wheel = zip_bytes([*wheel_members(), ("acme_utils/a.py", b""), ("acme_utils/b.py", b"a.py")],
                      symlinks=frozenset({"acme_utils/b.py"}))
    assert inspect_bytes(tmp_path, WHEEL, wheel).metadata == META

"""Bound a zip's central directory before `zipfile` reads it: zipfile builds an object per entry first and checks
nothing, so a central-directory bomb (millions of 46-byte entries) costs gigabytes and minutes before any limit.

The end record is read with `struct` the way CPython's zipfile finds it (`zipfile._EndRecData`, private, so not
called here; tests/test_archives.py pins the two together), then the entries are counted by walking their fixed
headers, stopping one past the limit. Blocking file I/O: call it from a worker thread.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["ZipEnd", "count_entries", "zip_end_record"]

# APPNOTE.TXT 4.3.16 (end of central directory), 4.3.14-15 (zip64 record and locator), 4.3.12 (entry header).
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR = struct.Struct("<4sLQL")
_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
_END_SIG, _END64_SIG, _LOCATOR_SIG, _ENTRY_SIG = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x01\x02"
_MAX_COMMENT = 0xFFFF


@dataclass(frozen=True, slots=True)
class ZipEnd:
    """What the end records declare: entry count, central directory size, and where the classic record sits."""

    entries: int
    size: int
    location: int
    zip64: bool

    @property
    def directory_start(self) -> int:
        """Where zipfile starts reading entries: right before the end records (archives may be prefixed)."""
        return self.location - self.size - (_END64.size + _LOCATOR.size if self.zip64 else 0)


def zip_end_record(f: BinaryIO) -> ZipEnd | None:
    """The end record zipfile will use, or None where zipfile says "File is not a zip file".

    Like zipfile: a record at the very end with an empty comment, else the last signature within the final
    64 KiB + 22 bytes (the comment's maximum), then a zip64 record right before its locator, if there is one.
    """
    size = f.seek(0, io.SEEK_END)
    if size < _END.size:
        return None
    f.seek(size - _END.size)
    tail = f.read()
    if tail[:4] == _END_SIG and tail[-2:] == b"\x00\x00":
        start, record = size - _END.size, tail
    else:
        tail_start = max(size - _MAX_COMMENT - 1 - _END.size, 0)
        f.seek(tail_start)
        tail = f.read()
        found = tail.rfind(_END_SIG)
        record = tail[found : found + _END.size]
        if found < 0 or len(record) != _END.size:
            return None
        start = tail_start + found
    entries, directory_size = _END.unpack(record)[4:6]
    return _zip64(f, ZipEnd(entries, directory_size, start, zip64=False))


def _zip64(f: BinaryIO, end: ZipEnd) -> ZipEnd | None:
    at = end.location - _LOCATOR.size
    if at < 0:
        return end
    f.seek(at)
    signature, _disk, _offset, _disks = _LOCATOR.unpack(f.read(_LOCATOR.size))
    if signature != _LOCATOR_SIG:
        return end
    if at - _END64.size < 0:
        return None  # zipfile fails to seek there: "File is not a zip file"
    f.seek(at - _END64.size)
    fields = _END64.unpack(f.read(_END64.size))
    if fields[0] != _END64_SIG:
        return end
    return ZipEnd(entries=fields[7], size=fields[8], location=end.location, zip64=True)


def count_entries(f: BinaryIO, end: ZipEnd, limit: int) -> int:
    """Entries in the central directory, counted as zipfile will read them, but no further than limit + 1.

    Stops early at anything that is not an entry: zipfile reports that corruption itself, at the same place.
    """
    if end.directory_start < 0:
        return 0
    f.seek(end.directory_start)
    walked = count = 0
    while walked < end.size and count <= limit:
        header = f.read(_ENTRY.size)
        if len(header) < _ENTRY.size or header[:4] != _ENTRY_SIG:
            break
        variable = sum(_ENTRY.unpack(header)[12:15])  # name, extra field and comment lengths
        f.seek(variable, io.SEEK_CUR)
        walked += _ENTRY.size + variable
        count += 1
    return count

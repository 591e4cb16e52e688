"""The C allocator's arenas: two for the whole process, as `MALLOC_ARENA_MAX=2` would set them.

glibc gives every thread that allocates an arena of its own, up to eight per core, and memory freed into one arena is
not reused by another. shadowpi's threads (the event loop, the default executor's, the database's, the page
parsers') each held on to theirs: in the benchmark's cold 1 GiB download (after the 5,000-file page) the process
peaked at 89.4 MiB with the default and 76.8 MiB with two arenas, at the same speed. The threads mostly take turns
on the GIL, so two arenas cost no contention worth measuring.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Limit glibc's malloc to `arenas` arenas; call before any thread starts. Leaves the limit alone when the
    environment sets MALLOC_ARENA_MAX (the operator's choice), and does nothing on a C library without mallopt
    (musl, macOS). True when the limit was set here."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_ARENA_MAX, arenas) != 1:  # glibc returns 1 on success
        log.debug("mallopt(M_ARENA_MAX) was refused")
        return False
    return True

"""Archive member names and link targets that could escape the directory an archive is unpacked into (pure).

Nothing here extracts anything, but pip, build front-ends and people do unpack what we serve: an upload whose
members could land outside their directory is refused, whichever member it is.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Iterable

__all__ = ["enclosing_link", "first_inside_link", "link_escapes", "unsafe_path"]

_DRIVE = re.compile(r"[A-Za-z]:")
# NUL is how zipfile silently cuts a name short; other control characters corrupt listings and RECORD files.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _unsafe_text(path: str) -> bool:
    # A backslash is a separator on Windows, and a drive letter makes the path absolute there.
    return not path or path.startswith("/") or "\\" in path or bool(_DRIVE.match(path) or _CONTROL.search(path))


def unsafe_path(name: str) -> bool:
    """Whether a member name is absolute, has a drive letter, a '..' component, a backslash or a control character."""
    return _unsafe_text(name) or ".." in name.split("/")


def link_escapes(name: str, target: str, *, hard: bool = False) -> bool:
    """Whether a link's target leaves the archive's directory.

    Symbolic link targets are relative to the link's own directory, hard link targets (tar) to the archive root.
    """
    if _unsafe_text(target):
        return True
    resolved = posixpath.normpath(posixpath.join("" if hard else posixpath.dirname(name), target))
    return resolved == ".." or resolved.startswith("../")


def enclosing_link(name: str, links: Collection[str]) -> str | None:
    """The symbolic link among `name`'s parent directories, if any.

    Checking each link's target alone is not enough: a member written *through* a link ('a' -> '..', then
    'a/b' -> '..') lands wherever the link points, so no member may live below a link.
    """
    if not links:
        return None
    parts = name.split("/")
    return next((prefix for i in range(1, len(parts)) if (prefix := "/".join(parts[:i])) in links), None)


def first_inside_link(names: Iterable[str], links: Collection[str]) -> tuple[str, str] | None:
    """The first (member, link) pair where the member lives below a symbolic link of the same archive."""
    if not links:
        return None
    for name in names:
        link = enclosing_link(name, links)
        if link is not None:
            return name, link
    return None

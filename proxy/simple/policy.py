"""Shadowing policy (dependency-confusion defence): which names may reach upstream and how pages merge.

The rule: a project that exists privately, or whose name is reserved for private use, hides upstream entirely,
unless the operator explicitly lists it in `merge_upstream`. It is decided before any I/O, because even asking
upstream about a private name leaks it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, replace

from packaging.version import InvalidVersion, Version

from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName


@dataclass(frozen=True, slots=True)
class ShadowPolicy:
    """The operator's choices: names that may merge with upstream, and patterns reserved for private use."""

    merge_upstream: frozenset[NormalizedName] = frozenset()
    private_patterns: tuple[str, ...] = ()

    def is_reserved(self, name: NormalizedName) -> bool:
        """True when the name matches a private pattern (patterns are matched against the normalized name)."""
        return any(fnmatch.fnmatchcase(name, _normalize_pattern(p)) for p in self.private_patterns)


def upstream_allowed(name: NormalizedName, *, has_private: bool, policy: ShadowPolicy) -> bool:
    """May shadowpi ask upstream about, list, or serve upstream files for this project?"""
    if name in policy.merge_upstream:
        return True
    return not has_private and not policy.is_reserved(name)


def resolve_project(private: ProjectPage | None, upstream: ProjectPage | None) -> ProjectPage | None:
    """The page clients see. Private files win filename clashes; callers pass upstream only when allowed."""
    if private is None or upstream is None:
        return private or upstream
    taken = {f.filename for f in private.files}
    files = private.files + tuple(f for f in upstream.files if f.filename not in taken)
    return replace(private, files=files, versions=merge_versions(private.versions, upstream.versions))


def merge_versions(*groups: Iterable[str]) -> tuple[str, ...]:
    """Union of version lists, in PEP 440 order (unparseable legacy versions last, as given)."""
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    valid: list[tuple[Version, str]] = []
    legacy: list[str] = []
    for text in seen:
        try:
            valid.append((Version(text), text))
        except InvalidVersion:
            legacy.append(text)
    return tuple(text for _v, text in sorted(valid)) + tuple(legacy)


def _normalize_pattern(pattern: str) -> str:
    # Normalize like a name but keep the glob characters: "Acme_*" must match "acme-utils".
    out = []
    for char in pattern.lower():
        out.append("-" if char in "-_." else char)
    text = "".join(out)
    while "--" in text:
        text = text.replace("--", "-")
    return text

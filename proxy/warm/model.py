"""The records warm passes between its stages: picks per target, fetch results, the final report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from packaging.utils import NormalizedName
from packaging.version import Version

from proxy.simple.model import DistFile

__all__ = [
    "Candidate", "FetchResult", "HashAlternatives", "Pick", "Resolution", "Status", "TargetPlan", "WarmError",
    "WarmReport", "verify_hashes",
]

# Acceptable digests of a file: it must match every algorithm of at least one alternative.
# `--hash` lines give one single-algorithm alternative each; a lock entry gives one alternative with all its hashes.
HashAlternatives = tuple[Mapping[str, str], ...]
Status = Literal["fetched", "cached", "failed"]


class WarmError(Exception):
    """The index could not answer something warm needs (a page, a metadata file); the message says what."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A release of a project (with extras, when some requirement asks for them) and its file for the target."""

    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName]
    dist: DistFile


@dataclass(frozen=True, slots=True)
class Resolution:
    """The releases a target needs, or why some requirement cannot be met there."""

    candidates: tuple[Candidate, ...] = ()
    no_compatible: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pick:
    """A file a target needs, with the hashes its input demands (empty: the index's own hash only)."""

    project: NormalizedName
    version: str
    dist: DistFile
    hashes: HashAlternatives = ()


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """What one target needs, and why some of it cannot be had."""

    label: str
    picks: tuple[Pick, ...] = ()
    no_compatible: tuple[str, ...] = ()  # "<project> <version> (<reason>)"
    errors: tuple[str, ...] = ()  # unresolvable requirements, lock entries missing from the index


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One download through shadowpi: fetched from upstream now, served from its cache, or failed."""

    filename: str
    status: Status
    size: int = 0
    digests: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def verify_hashes(result: FetchResult, required: HashAlternatives) -> str | None:
    """None when the digests satisfy one alternative (or none are required), else the failure message."""
    if result.status == "failed" or not required:
        return result.error
    for alternative in required:
        if alternative and all(result.digests.get(alg) == value for alg, value in alternative.items()):
            return None
    wanted = " or ".join(", ".join(f"{a}:{v}" for a, v in alt.items()) for alt in required)
    return f"hash mismatch: got sha256:{result.digests.get('sha256', '?')}, expected {wanted}"


@dataclass(frozen=True, slots=True)
class WarmReport:
    """Everything warm did, per target and per file, plus the warnings met on the way."""

    plans: tuple[TargetPlan, ...]
    results: Mapping[str, FetchResult]  # by file URL
    warnings: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()

    def pick_error(self, pick: Pick) -> str | None:
        result = self.results.get(pick.dist.url)
        if result is None:
            return "not downloaded"
        return verify_hashes(result, pick.hashes)

    def failures(self) -> list[tuple[Pick, str]]:
        """Each failed file once (the first pick that failed it), in plan order."""
        seen: dict[str, tuple[Pick, str]] = {}
        for plan in self.plans:
            for pick in plan.picks:
                error = self.pick_error(pick)
                if error is not None:
                    seen.setdefault(pick.dist.url, (pick, error))
        return list(seen.values())

    @property
    def ok(self) -> bool:
        """No failure, no unresolvable requirement and no target without a compatible file."""
        return not self.failures() and not any(p.errors or p.no_compatible for p in self.plans)

"""Turn resolutions and lock files into the files each target needs (pure: pages are passed in)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

from packaging.markers import Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.utils import NormalizedName, canonicalize_name

from proxy.simple.model import DistFile, ProjectPage
from proxy.warm.locks import LockedPackage, LockFile
from proxy.warm.model import HashAlternatives, Pick, Resolution, TargetPlan
from proxy.warm.requirements import RequirementSet
from proxy.warm.select import lock_files_for
from proxy.warm.targets import Target

__all__ = ["merge_plans", "plan_lock", "plan_resolution", "requirement_hashes"]


def requirement_hashes(wanted: RequirementSet) -> dict[NormalizedName, HashAlternatives]:
    """Per project, the `--hash` values of its requirement and constraint lines (each one alternative)."""
    found: dict[NormalizedName, set[str]] = {}
    for entry in (*wanted.requirements, *wanted.constraints):
        found.setdefault(canonicalize_name(entry.requirement.name), set()).update(entry.hashes)
    return {name: tuple({h.split(":", 1)[0]: h.split(":", 1)[1]} for h in sorted(v)) for name, v in found.items()
            if v}


def plan_resolution(target: Target, resolution: Resolution, wanted: RequirementSet) -> TargetPlan:
    """The resolved releases' files for the target, each bound to its requirement's hashes."""
    hashes = requirement_hashes(wanted)
    picks = tuple(Pick(c.name, str(c.version), c.dist, hashes.get(c.name, ())) for c in resolution.candidates)
    return TargetPlan(target.label, picks, resolution.no_compatible, resolution.errors)


def lock_excludes(lock: LockFile, target: Target) -> str | None:
    """Why the whole lock does not apply to the target (its requires-python or environments), else None."""
    if lock.requires_python is not None and not lock.requires_python.contains(target.python_full_version, True):
        return f"{lock.origin} requires Python {lock.requires_python}; the lock does not cover this target"
    if lock.environments and not any(_holds(m, lock, target) for m in lock.environments):
        return f"{lock.origin} lists environments that exclude this target"
    return None


def _holds(marker: Marker, lock: LockFile, target: Target) -> bool:
    # Every extra and group counts as selected: a warm must cover whichever of them an install picks.
    env: dict[str, str | AbstractSet[str]] = dict(target.environment)
    env.update(extras=lock.extras, dependency_groups=lock.groups)
    try:
        return marker.evaluate(env, "lock_file")
    except (UndefinedComparison, UndefinedEnvironmentName, TypeError):  # TypeError: packaging < 25
        return True  # when in doubt, warm it


def _applies(package: LockedPackage, lock: LockFile, target: Target) -> bool:
    if package.requires_python is not None and not package.requires_python.contains(
            target.python_full_version, True):
        return False
    return package.marker is None or _holds(package.marker, lock, target)


def plan_lock(lock: LockFile, target: Target, pages: Mapping[NormalizedName, ProjectPage | None]) -> TargetPlan:
    """For each package of the lock that applies to the target: every compatible wheel it lists, else its sdist.

    Files are found in shadowpi's page by filename; the lock's URLs belong to another index. A package
    missing from `pages` is skipped (its page could not be read); None means the index has no such project.
    """
    if (reason := lock_excludes(lock, target)) is not None:
        return TargetPlan(target.label, errors=(reason,))
    picks: list[Pick] = []
    no_compatible: list[str] = []
    errors: list[str] = []
    for package in (p for p in lock.packages if _applies(p, lock, target)):
        locked = {f.filename: f for f in package.files}
        listed = [DistFile(f.filename, "", f.hashes) for f in package.files]
        chosen = lock_files_for(target, listed)
        if not chosen:
            no_compatible.append(f"{package.name} {package.version or '?'} (no listed file fits; {lock.origin})")
            continue
        if package.name not in pages:
            continue  # the page could not be read; the caller reports why
        page = pages[package.name]
        for wanted in chosen:
            dist = page.file(wanted.filename) if page is not None else None
            if dist is None:
                errors.append(f"{lock.origin}: {wanted.filename} is not on the index under {package.name!r}")
                continue
            alternatives = _lock_hashes(locked[wanted.filename].hashes)
            picks.append(Pick(package.name, package.version or "", dist, alternatives))
    return TargetPlan(target.label, tuple(picks), tuple(no_compatible), tuple(errors))


def _lock_hashes(hashes: Mapping[str, str]) -> HashAlternatives:
    known = {alg: value for alg, value in hashes.items() if alg in hashlib.algorithms_guaranteed}
    return (known,) if known else ()


def merge_plans(label: str, plans: Iterable[TargetPlan]) -> TargetPlan:
    """One plan per target from several inputs. A file picked by two inputs with different hash demands
    stays twice, so that each demand is checked."""
    picks: dict[tuple[str, tuple[tuple[tuple[str, str], ...], ...]], Pick] = {}
    no_compatible: list[str] = []
    errors: list[str] = []
    for plan in plans:
        for pick in plan.picks:
            picks.setdefault((pick.dist.url, tuple(tuple(sorted(a.items())) for a in pick.hashes)), pick)
        no_compatible.extend(plan.no_compatible)
        errors.extend(plan.errors)
    return TargetPlan(label, tuple(picks.values()), tuple(dict.fromkeys(no_compatible)), tuple(dict.fromkeys(errors)))

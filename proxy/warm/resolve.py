"""Resolve requirements to one release per project for a target, with resolvelib (as pip does)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.providers import AbstractProvider
from resolvelib.structs import RequirementInformation

from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.warm.client import IndexClient
from proxy.warm.metadata import Dependencies
from proxy.warm.model import Candidate, Resolution, WarmError
from proxy.warm.requirements import RequirementSet
from proxy.warm.select import releases, why_unusable
from proxy.warm.targets import Target

__all__ = ["LoopSource", "Source", "resolve_target"]

MAX_ROUNDS = 200_000  # pip's bound on resolver rounds
Info = RequirementInformation[Requirement, Candidate]


class Source(Protocol):
    """What the resolver needs from the index, synchronously (it runs in a worker thread)."""

    def page(self, name: NormalizedName) -> ProjectPage | None: ...
    def dependencies(self, name: NormalizedName, dist: DistFile) -> Dependencies: ...
    def prefetch(self, names: Iterable[NormalizedName]) -> None: ...


class LoopSource:
    """The async IndexClient seen from a worker thread: each call waits for a coroutine on the event loop."""

    def __init__(self, client: IndexClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def page(self, name: NormalizedName) -> ProjectPage | None:
        return asyncio.run_coroutine_threadsafe(self._client.page(name), self._loop).result()

    def dependencies(self, name: NormalizedName, dist: DistFile) -> Dependencies:
        return asyncio.run_coroutine_threadsafe(self._client.dependencies(name, dist), self._loop).result()

    def prefetch(self, names: Iterable[NormalizedName]) -> None:
        self._loop.call_soon_threadsafe(self._client.prefetch, list(names))


def _key(req: Requirement) -> tuple[NormalizedName, frozenset[NormalizedName]]:
    return canonicalize_name(req.name), frozenset(canonicalize_name(e) for e in req.extras)


def _identifier(name: NormalizedName, extras: frozenset[NormalizedName]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


def _is_pinned(spec: SpecifierSet) -> bool:
    return any(s.operator in {"==", "==="} and not s.version.endswith(".*") for s in spec)


@dataclass
class _Provider(AbstractProvider[Requirement, Candidate, str]):
    source: Source
    target: Target
    constraints: Mapping[NormalizedName, SpecifierSet]
    hashes: Mapping[NormalizedName, frozenset[str]]
    prereleases: bool
    warnings: list[str] = field(default_factory=list)

    def identify(self, requirement_or_candidate: Requirement | Candidate) -> str:
        if isinstance(requirement_or_candidate, Candidate):
            return _identifier(requirement_or_candidate.name, requirement_or_candidate.extras)
        return _identifier(*_key(requirement_or_candidate))

    def get_preference(self, identifier: str, resolutions: Mapping[str, Candidate],
                       candidates: Mapping[str, Iterator[Candidate]], information: Mapping[str, Iterator[Info]],
                       backtrack_causes: Sequence[Info]) -> tuple[bool, bool, bool, str]:
        infos = list(information[identifier])
        caused = any(self.identify(c.requirement) == identifier for c in backtrack_causes)
        pinned = any(_is_pinned(i.requirement.specifier) for i in infos)
        direct = any(i.parent is None for i in infos)
        return (not caused, not pinned, not direct, identifier)  # smaller first: conflicts, pins, roots

    def find_matches(self, identifier: str, requirements: Mapping[str, Iterator[Requirement]],
                     incompatibilities: Mapping[str, Iterator[Candidate]]) -> list[Candidate]:
        reqs = list(requirements[identifier])
        name, extras = _key(reqs[0])
        spec = self.constraints.get(name, SpecifierSet())
        for req in reqs:
            spec &= req.specifier
        excluded = {c.version for c in incompatibilities[identifier]}
        page = self.source.page(name)
        if page is None:
            return []
        found = releases(self.target, page.files, spec, prereleases=self.prereleases,
                         hashes=self.hashes.get(name, frozenset()))
        return [Candidate(name, r.version, extras, r.best) for r in found if r.version not in excluded]

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: Candidate) -> list[Requirement]:
        deps = self.source.dependencies(candidate.name, candidate.dist)
        if deps.warning:
            self.warnings.append(deps.warning)
        # Extras resolve as their own identifier tied to the very same release of the base project.
        result = [Requirement(f"{candidate.name}=={candidate.version}")] if candidate.extras else []
        for text in deps.requires_dist:
            req = self._parse(text, candidate)
            if req is not None and self.applies(req, candidate.extras):
                result.append(req)
        self.source.prefetch({canonicalize_name(r.name) for r in result})
        return result

    def _parse(self, text: str, candidate: Candidate) -> Requirement | None:
        where = f"{candidate.name} {candidate.version}"
        try:
            req = Requirement(text)
        except InvalidRequirement:
            self.warnings.append(f"{where}: ignored invalid dependency {text!r}")
            return None
        if req.url:
            self.warnings.append(f"{where}: {text!r} is a direct URL reference: not warmed")
            return None
        return req

    def applies(self, req: Requirement, extras: Iterable[str]) -> bool:
        return marker_holds(req, self.target, extras, self.warnings)


def marker_holds(req: Requirement, target: Target, extras: Iterable[str], warnings: list[str]) -> bool:
    """The requirement's marker holds on the target with any of `extras` (or none); an error counts as true."""
    if req.marker is None:
        return True
    try:
        return any(req.marker.evaluate({**target.environment, "extra": e}) for e in (*extras, ""))
    except (UndefinedComparison, UndefinedEnvironmentName) as exc:
        warnings.append(f"{target.label}: cannot evaluate the marker of {req} ({exc}): included")
        return True  # warming too much is cheap; missing a file offline is not


def _by_name(entries: Iterable[tuple[NormalizedName, SpecifierSet]]) -> dict[NormalizedName, SpecifierSet]:
    combined: dict[NormalizedName, SpecifierSet] = {}
    for name, spec in entries:
        combined[name] = combined.get(name, SpecifierSet()) & spec
    return combined


def resolve_target(source: Source, target: Target, wanted: RequirementSet) -> Resolution:
    """Resolve `wanted` for one target (blocking: run it in a worker thread when `source` is a LoopSource)."""
    warnings: list[str] = []
    constraints = _by_name((canonicalize_name(c.requirement.name), c.requirement.specifier)
                           for c in wanted.constraints if marker_holds(c.requirement, target, (), warnings))
    hashes: dict[NormalizedName, frozenset[str]] = {}
    for entry in (*wanted.requirements, *wanted.constraints):
        name = canonicalize_name(entry.requirement.name)
        hashes[name] = hashes.get(name, frozenset()) | entry.hashes
    provider = _Provider(source, target, constraints, hashes, wanted.prereleases, warnings)
    roots = [r.requirement for r in wanted.requirements if provider.applies(r.requirement, ())]
    source.prefetch({canonicalize_name(r.name) for r in roots})
    try:
        result = Resolver(provider, BaseReporter()).resolve(roots, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as exc:
        causes: list[Info] = list(exc.causes)
        no_compatible, errors = _explain(source, target, constraints, causes)
        return Resolution(no_compatible=no_compatible, errors=errors, warnings=tuple(provider.warnings))
    except ResolutionTooDeep as exc:
        return Resolution(errors=(f"gave up after {exc.round_count} resolver rounds",),
                          warnings=tuple(provider.warnings))
    except WarmError as exc:
        return Resolution(errors=(str(exc),), warnings=tuple(provider.warnings))
    chosen = sorted((c for c in result.mapping.values() if not c.extras), key=lambda c: c.name)
    return Resolution(candidates=tuple(chosen), warnings=tuple(provider.warnings))


def _explain(source: Source, target: Target, constraints: Mapping[NormalizedName, SpecifierSet],
             causes: Sequence[Info]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """ResolutionImpossible in a line per project: nothing compatible, no matching version, or a conflict."""
    no_compatible: dict[str, None] = {}
    errors: dict[str, None] = {}
    conflicts: dict[NormalizedName, dict[str, None]] = {}
    for cause in causes:
        req, parent = cause.requirement, cause.parent
        name = canonicalize_name(req.name)
        spec = req.specifier & constraints.get(name, SpecifierSet())
        origin = f"{req} ({f'required by {parent.name} {parent.version}' if parent else 'requested'})"
        page = source.page(name)
        if page is None:
            errors[f"{origin}: no project named {name!r} on the index"] = None
        elif releases(target, page.files, spec):
            conflicts.setdefault(name, {})[origin] = None
        elif (why := why_unusable(target, page.files, spec)) is not None:
            no_compatible[f"{name} {why[0]} ({why[1]})"] = None
        else:
            listed = ", ".join(page.versions[-5:]) or "none"
            errors[f"{origin}: no version matches {spec or 'any'} (latest listed: {listed})"] = None
    for name, origins in conflicts.items():
        errors[f"conflicting requirements on {name}: {'; '.join(origins)}"] = None
    return tuple(no_compatible), tuple(errors)

"""Parse requirement specifiers and pip requirements files (-r/-c includes, --hash, continuations), no I/O."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement

__all__ = ["Requested", "RequirementSet", "RequirementsError", "parse_requirement", "parse_requirements_file"]

Reader = Callable[[str], str]  # path -> text; raises OSError

# pip requires one of these in --hash (and so do we: a weaker digest would not prove anything).
HASH_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}  # name -> hex digits
_COMMENT = re.compile(r"(^|\s+)#.*$")
_FILE_OPTIONS = {"-r": "requirement", "--requirement": "requirement", "-c": "constraint", "--constraint": "constraint"}
# Options that point pip at other indexes: warm always reads shadowpi, so these are ignored, loudly.
_INDEX_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host"}
_EDITABLE = {"-e", "--editable"}
_LOOKS_LIKE_PATH = re.compile(r"^(\.|/|~|[A-Za-z]:\\)|[/\\]|\.(whl|tar\.gz|zip)$")


class RequirementsError(ValueError):
    """A requirements file or specifier that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Requested:
    """One requirement with the hashes its files must match ("sha256:<hex>") and where it came from."""

    requirement: Requirement
    hashes: frozenset[str] = frozenset()
    origin: str = "command line"


@dataclass(frozen=True, slots=True)
class RequirementSet:
    """Requirements and constraints gathered from specifiers and files, with what could not be used."""

    requirements: tuple[Requested, ...] = ()
    constraints: tuple[Requested, ...] = ()
    prereleases: bool = False
    warnings: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()  # editables, URLs and paths: warm cannot fetch them by name

    def __add__(self, other: RequirementSet) -> RequirementSet:
        return RequirementSet(
            self.requirements + other.requirements,
            self.constraints + other.constraints,
            self.prereleases or other.prereleases,
            self.warnings + other.warnings,
            self.unsupported + other.unsupported,
        )


@dataclass
class _Collector:
    read: Reader
    requirements: list[Requested] = field(default_factory=list)
    constraints: list[Requested] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    prereleases: bool = False
    stack: list[str] = field(default_factory=list)  # the include chain, for cycle detection

    def result(self) -> RequirementSet:
        return RequirementSet(tuple(self.requirements), tuple(self.constraints), self.prereleases,
                              tuple(self.warnings), tuple(self.unsupported))


def parse_requirement(text: str, origin: str = "command line", hashes: frozenset[str] = frozenset()) -> Requested:
    """One PEP 508 specifier by name. Raises RequirementsError for invalid text or a direct URL reference."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementsError(f"{origin}: invalid requirement {text!r}: {exc}") from None
    if req.url:
        raise RequirementsError(f"{origin}: {text!r} is a direct URL reference; warm fetches by name only")
    return Requested(req, hashes, origin)


def parse_requirements_file(path: str, read: Reader) -> RequirementSet:
    """Parse a pip requirements file and everything it includes (paths relative to the including file).

    Raises RequirementsError for unreadable files, include cycles, bad options and invalid requirements.
    """
    collector = _Collector(read)
    _parse_file(collector, path, constraint=False)
    return collector.result()


def _parse_file(c: _Collector, path: str, *, constraint: bool) -> None:
    key = posixpath.normpath(path)
    if key in c.stack:
        chain = " -> ".join([*c.stack[c.stack.index(key):], key])
        raise RequirementsError(f"requirements include cycle: {chain}")
    try:
        text = c.read(path)
    except OSError as exc:
        where = f" (included from {c.stack[-1]})" if c.stack else ""
        raise RequirementsError(f"{path}: cannot read requirements file{where}: {exc.strerror or exc}") from None
    c.stack.append(key)
    for lineno, line in _logical_lines(text):
        _parse_line(c, line, f"{path}:{lineno}", path, constraint=constraint)
    c.stack.pop()


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, joined line) with comments removed and backslash continuations joined."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        if joined:
            yield start, joined
    if pending and (joined := " ".join(pending).strip()):
        yield start, joined


def _parse_line(c: _Collector, line: str, origin: str, path: str, *, constraint: bool) -> None:
    if line.startswith("-"):
        _parse_option_line(c, line, origin, path, constraint=constraint)
        return
    spec, options = _split_options(line)
    try:
        tokens = shlex.split(options)
    except ValueError as exc:
        raise RequirementsError(f"{origin}: {exc}") from None
    hashes, ignored = _requirement_options(tokens, origin)
    if ignored:
        c.warnings.append(f"{origin}: ignored per-requirement option(s) {', '.join(ignored)}")
    if _LOOKS_LIKE_PATH.search(spec.split(";")[0].strip()) or "@" in spec.split(";")[0]:
        c.unsupported.append(f"{origin}: {spec} (a URL or path: warm fetches by project name only)")
        return
    (c.constraints if constraint else c.requirements).append(parse_requirement(spec, origin, hashes))


def _split_options(line: str) -> tuple[str, str]:
    """pip's split: the requirement runs up to the first whitespace-separated token starting with '-'."""
    tokens = line.split(" ")
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(tokens[:index]).strip(), " ".join(tokens[index:])
    return line.strip(), ""


def _requirement_options(tokens: Sequence[str], origin: str) -> tuple[frozenset[str], list[str]]:
    hashes: set[str] = set()
    ignored: list[str] = []
    items = iter(tokens)
    for token in items:
        name, eq, value = token.partition("=")
        if name != "--hash":
            ignored.append(name)
            continue
        hashes.add(_parse_hash(value if eq else next(items, ""), origin))
    return frozenset(hashes), ignored


def _parse_hash(value: str, origin: str) -> str:
    alg, sep, digest = value.partition(":")
    digest = digest.lower()
    if not sep or HASH_ALGORITHMS.get(alg) != len(digest) or not re.fullmatch(r"[0-9a-f]+", digest):
        raise RequirementsError(f"{origin}: --hash={value!r}: expected sha256:<hex> (or sha384/sha512)")
    return f"{alg}:{digest}"


def _option_value(token: str, tokens: list[str], origin: str) -> tuple[str, str]:
    """Split '-rfile', '--requirement=file' and '-r file' into (option, value)."""
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        if eq:
            return name, value
    elif len(token) > 2:
        return token[:2], token[2:]
    if not tokens:
        raise RequirementsError(f"{origin}: {token} needs a value")
    return token, tokens.pop(0)


def _parse_option_line(c: _Collector, line: str, origin: str, path: str, *, constraint: bool) -> None:
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise RequirementsError(f"{origin}: {exc}") from None
    token = tokens.pop(0)
    bare = token.split("=", 1)[0] if token.startswith("--") else token[:2]
    if bare == "--pre":
        c.prereleases = True
    elif bare in _FILE_OPTIONS:
        _, value = _option_value(token, tokens, origin)
        nested = posixpath.join(posixpath.dirname(path), value)
        _parse_file(c, nested, constraint=constraint or _FILE_OPTIONS[bare] == "constraint")
    elif bare in _EDITABLE:
        _, value = _option_value(token, tokens, origin)
        c.unsupported.append(f"{origin}: -e {value} (editable installs are built locally, not fetched)")
    elif bare in _INDEX_OPTIONS:
        c.warnings.append(f"{origin}: ignored {bare} (warm always reads shadowpi's index)")
    else:  # --no-binary, --prefer-binary, --use-feature...: pip's install policy, not what to fetch
        c.warnings.append(f"{origin}: ignored option {token.split('=', 1)[0]}")

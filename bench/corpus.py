"""The benchmark's upstream content: generated projects, cached on disk once, and the static PEP 503/691 tree.

Files live in `bench/.cache/<GENERATION>/` and are reused by later runs (the 1 GiB file takes a few seconds to
make). Each project directory has a manifest next to it with every file's size and sha256; a directory whose
manifest is missing or does not match what is on disk is rebuilt. The page tree (`www/`) is written fresh into
the run's temp dir: `www/simple/<project>/index.{json,html}`, `www/files/<project>` (a symlink into the cache)
and `www/slow` (a symlink to `www` itself, so `/slow/...` serves the same tree from a rate-limited location).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

GENERATION = "v1"  # bump when generated content changes, so old caches are not reused
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
UPLOAD_TIME = "2024-01-01T00:00:00.000000Z"
REQUIRES_PYTHON = ">=3.8"
MIB = 1024 * 1024

SMALL = "small"  # the warm 5-file page
COLD = tuple(f"cold-{i:02d}" for i in range(20))  # one cold page each
MANY = "many"  # the 5,000-file page
PIPSET = tuple(f"pipset-{i:02d}" for i in range(30))  # `pip install pipset-00` pulls all 30
UVSET = tuple(f"uvset-{i:02d}" for i in range(30))  # the same tree for uv, so both start cold
# 30 projects without dependencies each, installed by name with --no-deps (issue 11's table); one set per client.
NODEPS_PIP = tuple(f"ndpip-{i:02d}" for i in range(30))
NODEPS_UV = tuple(f"nduv-{i:02d}" for i in range(30))
BIG_COLD, HERD_FAST, HERD_SLOW, HUGE = "big-cold", "herd-fast", "herd-slow", "huge"
MANY_TAGS = (
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp311-cp311-win_amd64",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-win_amd64",
)


@dataclass(frozen=True, slots=True)
class DistEntry:
    """One file of a project, as the index lists it."""

    filename: str
    version: str
    size: int
    sha256: str
    metadata_sha256: str | None  # PEP 658 sibling `<filename>.metadata`, when there is one


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    directory: Path
    files: tuple[DistEntry, ...]

    def file(self, filename: str) -> DistEntry:
        return next(f for f in self.files if f.filename == filename)


@dataclass(frozen=True, slots=True)
class Sizes:
    """Sizes of the big files: `medium` (100 MiB in a full run) and `big` (1 GiB)."""

    medium: int
    big: int


Writer = Callable[[Path], list[DistEntry]]


def wheel_name(project: str) -> str:
    return re.sub(r"[-_.]+", "_", project).lower()


def build_wheel(project: str, version: str, tag: str, requires: Sequence[str]) -> tuple[str, bytes, bytes]:
    """A small, installable wheel: (filename, wheel bytes, METADATA bytes). Deterministic."""
    dist = wheel_name(project)
    info = f"{dist}-{version}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {project}", f"Version: {version}",
             "Summary: generated for the shadowpi benchmark", f"Requires-Python: {REQUIRES_PYTHON}"]
    lines += [f"Requires-Dist: {req}" for req in requires]
    metadata = ("\n".join(lines) + "\n").encode()
    purelib = "true" if tag.endswith("none-any") else "false"
    wheel = f"Wheel-Version: 1.0\nGenerator: shadowpi-bench\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n".encode()
    module = f'"""{project} {version}."""\n\n__version__ = "{version}"\n'.encode()
    members = {f"{dist}/__init__.py": module, f"{info}/METADATA": metadata, f"{info}/WHEEL": wheel}
    record = [f"{path},sha256={_b64_digest(data)},{len(data)}" for path, data in members.items()]
    members[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return f"{dist}-{version}-{tag}.whl", buffer.getvalue(), metadata


def _b64_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheels_writer(project: str, releases: Sequence[tuple[str, str, Sequence[str]]]) -> Writer:
    """Writes one wheel (plus its `.metadata` sibling) per (version, tag, requires) release."""

    def write(directory: Path) -> list[DistEntry]:
        entries = []
        for version, tag, requires in releases:
            filename, data, metadata = build_wheel(project, version, tag, requires)
            (directory / filename).write_bytes(data)
            (directory / f"{filename}.metadata").write_bytes(metadata)
            entries.append(DistEntry(filename, version, len(data), hashlib.sha256(data).hexdigest(),
                                     hashlib.sha256(metadata).hexdigest()))
        return entries

    return write


def random_writer(project: str, size: int) -> Writer:
    """One file of `size` random bytes (an sdist nobody installs: only its bytes and hash matter)."""

    def write(directory: Path) -> list[DistEntry]:
        filename = f"{wheel_name(project)}-1.0.tar.gz"
        digest = hashlib.sha256()
        with (directory / filename).open("wb") as out:
            left = size
            while left:
                chunk = os.urandom(min(left, 8 * MIB))
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        return [DistEntry(filename, "1.0", size, digest.hexdigest(), None)]

    return write


def tree_requires(names: Sequence[str], index: int) -> list[str]:
    """A binary tree of dependencies: package i needs packages 2i+1 and 2i+2."""
    return [names[child] for child in (2 * index + 1, 2 * index + 2) if child < len(names)]


def plan(sizes: Sizes) -> dict[str, tuple[str, Writer]]:
    """project name -> (cache group, writer). Small projects are shared by every mode; big ones per size."""
    any_tag = "py3-none-any"
    projects: dict[str, tuple[str, Writer]] = {}
    for name in (SMALL, *COLD):
        projects[name] = ("small", wheels_writer(name, [(f"1.{v}.0", any_tag, []) for v in range(5)]))
    many: list[tuple[str, str, list[str]]] = [(f"1.0.{v}", tag, []) for v in range(1000) for tag in MANY_TAGS]
    projects[MANY] = ("small", wheels_writer(MANY, many))
    for names in (PIPSET, UVSET):
        for i, name in enumerate(names):
            deps = tree_requires(names, i)
            releases = [("1.0.0", any_tag, deps), ("1.1.0", any_tag, [f"{d}>=1.0" for d in deps])]
            projects[name] = ("small", wheels_writer(name, releases))
    for name in (*NODEPS_PIP, *NODEPS_UV):
        projects[name] = ("small", wheels_writer(name, [("1.0.0", any_tag, []), ("1.1.0", any_tag, [])]))
    for name in (BIG_COLD, HERD_FAST, HERD_SLOW):
        projects[name] = (f"random-{sizes.medium}", random_writer(name, sizes.medium))
    projects[HUGE] = (f"random-{sizes.big}", random_writer(HUGE, sizes.big))
    return projects


def load_projects(cache: Path, sizes: Sizes, log: Callable[[str], None]) -> dict[str, Project]:
    """Every project of the plan, generated now when the cache does not have it."""
    root = cache / GENERATION
    projects, built = {}, []
    for name, (group, writer) in plan(sizes).items():
        projects[name], fresh = _ensure(root / group, name, writer)
        if fresh:
            built.append(name)
    if built:
        log(f"generated {len(built)} project(s) in {root}: {', '.join(built[:3])}{', ...' if len(built) > 3 else ''}")
    return projects


def ensure_project(group_dir: Path, name: str, size: int) -> Project:
    """One project of a single random file of `size` bytes, from the cache or generated now (bench/s3_storage.py)."""
    return _ensure(group_dir, name, random_writer(name, size))[0]


def _ensure(group_dir: Path, name: str, writer: Writer) -> tuple[Project, bool]:
    """The project from the cache, generating it first when needed (then the flag is True)."""
    directory = group_dir / name
    manifest = group_dir / f"{name}.manifest.json"
    entries = _read_manifest(manifest, directory)
    fresh = entries is None
    if entries is None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        entries = writer(directory)
        partial = manifest.with_suffix(".partial")
        partial.write_text(json.dumps([asdict(e) for e in entries]))
        partial.replace(manifest)
    return Project(name, directory, tuple(entries)), fresh


def _read_manifest(manifest: Path, directory: Path) -> list[DistEntry] | None:
    try:
        entries = [DistEntry(**item) for item in json.loads(manifest.read_text())]
    except (OSError, ValueError, TypeError):
        return None
    for entry in entries:
        path = directory / entry.filename
        if not path.is_file() or path.stat().st_size != entry.size:
            return None
    return entries


def file_url(project: str, filename: str) -> str:
    """A file link relative to the project page: resolves to `/files/...` (or `/slow/files/...`)."""
    return f"../../files/{project}/{filename}"


def project_json(project: Project) -> str:
    files = []
    for entry in project.files:
        metadata: dict[str, str] | bool = {"sha256": entry.metadata_sha256} if entry.metadata_sha256 else False
        files.append({
            "filename": entry.filename,
            "url": file_url(project.name, entry.filename),
            "hashes": {"sha256": entry.sha256},
            "requires-python": REQUIRES_PYTHON,
            "size": entry.size,
            "upload-time": UPLOAD_TIME,
            "yanked": False,
            "core-metadata": metadata,
            "dist-info-metadata": metadata,
        })
    versions = list(dict.fromkeys(entry.version for entry in project.files))
    doc = {"meta": {"api-version": "1.1"}, "name": project.name, "versions": versions, "files": files}
    return json.dumps(doc, separators=(",", ":"))


def project_html(project: Project) -> str:
    title = html.escape(project.name)
    lines = ["<!DOCTYPE html>", "<html>", "<head>", '<meta name="pypi:repository-version" content="1.1">',
             f"<title>Links for {title}</title>", "</head>", "<body>", f"<h1>Links for {title}</h1>"]
    for entry in project.files:
        href = html.escape(f"{file_url(project.name, entry.filename)}#sha256={entry.sha256}")
        attrs = f'href="{href}" data-requires-python="{html.escape(REQUIRES_PYTHON)}"'
        if entry.metadata_sha256:
            attrs += f' data-core-metadata="sha256={entry.metadata_sha256}"'
            attrs += f' data-dist-info-metadata="sha256={entry.metadata_sha256}"'
        lines.append(f"<a {attrs}>{html.escape(entry.filename)}</a><br />")
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"


def index_documents(names: Sequence[str]) -> tuple[str, str]:
    """The root /simple/ page as (JSON, HTML)."""
    doc = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
    links = "\n".join(f'<a href="{html.escape(n)}/">{html.escape(n)}</a><br />' for n in names)
    page = f"<!DOCTYPE html>\n<html>\n<head><title>Simple index</title></head>\n<body>\n{links}\n</body>\n</html>\n"
    return json.dumps(doc, separators=(",", ":")), page


def write_www(www: Path, projects: dict[str, Project]) -> None:
    """The static tree nginx serves as upstream (see the module docstring)."""
    simple, files = www / "simple", www / "files"
    simple.mkdir(parents=True)
    files.mkdir()
    for project in projects.values():
        page_dir = simple / project.name
        page_dir.mkdir()
        (page_dir / "index.json").write_text(project_json(project))
        (page_dir / "index.html").write_text(project_html(project))
        (files / project.name).symlink_to(project.directory.resolve(), target_is_directory=True)
    index_json, index_html = index_documents(sorted(projects))
    (simple / "index.json").write_text(index_json)
    (simple / "index.html").write_text(index_html)
    (www / "slow").symlink_to(www.resolve(), target_is_directory=True)

"""Layering, enforced (issue 12): drivers and POSIX tricks stay inside the backend implementations, handlers see
only the backend interfaces, one module chooses implementations, and the command modules import one way.

Like tests/test_pure_core.py, this reads the source (ast), imports nothing, and checks imports inside functions
too. The rules:
- drivers (aiosqlite, sqlite3, asyncpg, fcntl, mmap, aiobotocore, botocore) are imported only in
  proxy/backends/sqlite/, proxy/backends/postgres/, proxy/backends/local/, proxy/backends/s3/ and
  proxy/backends/spool.py and proxy/backends/spoolfiles.py, and only there are os.link, os.pread, os.sendfile and
  Path.hardlink_to used;
- proxy/web/ imports nothing of proxy.backends but the interface and record modules, and no storage internals;
- only proxy/backends/__init__.py imports an implementation package (proxy.backends.sqlite,
  proxy.backends.postgres, proxy.backends.local, proxy.backends.s3);
- the SQLite backend's own names (DB_FILENAME, its classes) appear nowhere else;
- the modules of proxy/ import each other without cycles (imports for type checking only excepted), and the
  composition roots (proxy.cli, proxy.app, the admin commands) are imported only from above.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PROXY = ROOT / "proxy"
IMPLEMENTATIONS = ("proxy/backends/sqlite/", "proxy/backends/postgres/", "proxy/backends/local/",
                   "proxy/backends/s3/", "proxy/backends/spool.py", "proxy/backends/spoolfiles.py")
IMPLEMENTATION_PACKAGES = ("proxy.backends.sqlite", "proxy.backends.postgres", "proxy.backends.local",
                           "proxy.backends.s3")
DRIVERS = {"aiosqlite", "sqlite3", "asyncpg", "fcntl", "mmap", "aiobotocore", "botocore", "types_aiobotocore_s3"}
POSIX_CALLS = {"os.link", "os.pread", "os.sendfile", "hardlink_to"}
INTERFACES = {"proxy.backends.metadata", "proxy.backends.records", "proxy.backends.changes", "proxy.backends.blobs",
              "proxy.backends.fills"}
STORAGE_INTERNALS = {"proxy.storage", "proxy.spooling", "proxy.backends.spools", "proxy.backends.spool",
                     "proxy.backends.spoolfiles"}
SQLITE_NAMES = {"DB_FILENAME", "Database", "SqliteMetadata", "MmapChangeFeed", "open_sqlite"}

# Known violations still to be removed, as (file, what). Each entry must still be a violation: the test fails once
# it is fixed, so it is deleted here. (Issue 12's second half removed the last ones: storage.py, web/files.py.)
PENDING: set[tuple[str, str]] = set()


@dataclass
class Module:
    path: str  # relative to the repository, with "/"
    name: str  # dotted
    imports: set[str] = field(default_factory=set)  # every imported module (and from-imported names, dotted)
    runtime_imports: set[str] = field(default_factory=set)  # the same, without `if TYPE_CHECKING:` blocks
    references: set[str] = field(default_factory=set)  # dotted attribute names used: "os.pread", and "hardlink_to"
    names: set[str] = field(default_factory=set)  # every identifier and imported name used


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return None


def _is_type_checking(node: ast.If) -> bool:
    return _dotted(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    return {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block)
            for stmt in block.body for n in ast.walk(stmt)}


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolve against the package
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    yield base
    yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PROXY.rglob("*.py")):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        module = Module(str(path.relative_to(ROOT)), name)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        typing_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = set(_imported(node, package))
                module.imports |= names
                if id(node) not in typing_only:
                    module.runtime_imports |= names
                module.names |= {alias.asname or alias.name.rpartition(".")[2] for alias in node.names}
            elif isinstance(node, ast.Name):
                module.names.add(node.id)
            elif isinstance(node, ast.Attribute):  # called or passed on (run_in_executor(None, os.pread, ...))
                module.names.add(node.attr)
                module.references |= {node.attr, _dotted(node) or node.attr}
        found[name] = module
    return found


def _in(module: Module, places: tuple[str, ...]) -> bool:
    return any(module.path == p or (p.endswith("/") and module.path.startswith(p)) for p in places)


def _violations(module: Module, found: set[str]) -> set[str]:
    """`found` minus what PENDING still allows for this module."""
    return {what for what in found if (module.path, what) not in PENDING}


ALL = sorted(modules().values(), key=lambda m: m.path)
OUTSIDE = [m for m in ALL if not _in(m, IMPLEMENTATIONS)]
WEB = [m for m in ALL if m.path.startswith("proxy/web/")]


@pytest.mark.parametrize("module", OUTSIDE, ids=lambda m: m.path)
def test_drivers_are_imported_only_by_backend_implementations(module: Module) -> None:
    """No module outside proxy/backends/sqlite, proxy/backends/postgres, proxy/backends/local, proxy/backends/s3
    and proxy/backends/spool.py and spoolfiles.py imports aiosqlite, sqlite3, asyncpg, fcntl, mmap or the S3
    client (even inside a function)."""
    roots = {name.partition(".")[0] for name in module.imports}
    assert _violations(module, roots & DRIVERS) == set()


@pytest.mark.parametrize("module", OUTSIDE, ids=lambda m: m.path)
def test_posix_tricks_stay_in_backend_implementations(module: Module) -> None:
    """Outside the implementations nothing uses os.link, os.pread, os.sendfile or Path.hardlink_to: serving and
    reading blobs goes through the blob store's readers (a remote store has no file descriptors)."""
    assert _violations(module, module.references & POSIX_CALLS) == set()


@pytest.mark.parametrize("module", WEB, ids=lambda m: m.path)
def test_handlers_import_only_backend_interfaces(module: Module) -> None:
    """Handlers import the backend interfaces and records, never an implementation, the factory or storage
    internals (they get their services through the app's keys)."""
    backends = {name for name in module.imports if name == "proxy.backends" or name.startswith("proxy.backends.")}
    modules_only = {name for name in backends if name in modules() or name == "proxy.backends"}
    internals = {name for name in module.imports if name in STORAGE_INTERNALS}
    assert _violations(module, (modules_only - INTERFACES) | internals) == set()


@pytest.mark.parametrize("module", [m for m in ALL if m.name != "proxy.backends"], ids=lambda m: m.path)
def test_only_the_factory_chooses_implementations(module: Module) -> None:
    """proxy/backends/__init__.py (open_backends) is the only module outside an implementation package that
    imports one; implementations do not import each other."""
    own = next((p for p in IMPLEMENTATION_PACKAGES if module.name == p or module.name.startswith(p + ".")), None)
    chosen = {name for name in module.imports for p in IMPLEMENTATION_PACKAGES
              if (name == p or name.startswith(p + ".")) and p != own}
    assert chosen == set()


@pytest.mark.parametrize("module", [m for m in ALL if not m.name.startswith("proxy.backends.sqlite")],
                         ids=lambda m: m.path)
def test_sqlite_details_stay_in_the_sqlite_backend(module: Module) -> None:
    """The database file's name and the SQLite classes are the SQLite backend's business alone (the factory
    receives them from it)."""
    allowed = {"DB_FILENAME", "open_sqlite"} if module.name == "proxy.backends" else set()
    assert (module.names & SQLITE_NAMES) - allowed == set()


def test_modules_import_each_other_without_cycles() -> None:
    """proxy/ imports one way (STYLE.md): no import cycle among its modules, counting imports inside functions
    and leaving out imports for type checking only. The composition roots are imported by nothing below them:
    proxy.cli only by proxy.__main__, proxy.app only by the server and the CLI (which hands it to `warm`), and
    the admin commands only by the CLI (bundle commands open the backends themselves)."""
    graph = {
        name: {target for target in module.runtime_imports if target in modules() and target != name}
        for name, module in modules().items()
    }
    assert [sorted(group) for group in _strongly_connected(graph) if len(group) > 1] == []
    def importers(target: str) -> set[str]:
        return {name for name, module in modules().items() if target in module.imports}

    assert importers("proxy.cli") == {"proxy.__main__"}
    assert importers("proxy.app") == {"proxy.server", "proxy.cli"}
    assert importers("proxy.admin") == {"proxy.cli"}


def test_pending_exceptions_are_still_needed() -> None:
    """Each PENDING entry is still a violation: once fixed, delete it, so that it can never come back."""
    stale = set()
    for path, what in PENDING:
        module = next(m for m in ALL if m.path == path)
        if what not in ({n.partition(".")[0] for n in module.imports} | module.references | module.imports):
            stale.add((path, what))
    assert stale == set()


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of `graph` (Tarjan): a component of two or more modules is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in sorted(graph[name]):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == name:
                    break
            components.append(component)

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return components

"""The pure core stays pure: no proxy/simple module imports an I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIMPLE = Path(__file__).parent.parent / "proxy" / "simple"
FORBIDDEN = {"aiohttp", "aiofiles", "aiosqlite", "yarl"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.partition(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(SIMPLE.glob("*.py")), ids=lambda p: p.name)
def test_simple_imports_no_io_library(path: Path) -> None:
    """No proxy/simple module imports aiohttp, aiofiles, aiosqlite or yarl (even inside functions)."""
    assert _imported_roots(path) & FORBIDDEN == set()

"""The code-quality gates run with the test suite: ruff and mypy --strict must be clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: pip install '.[test]'")
    return found


def test_ruff_is_clean():
    """ruff finds nothing in proxy/ and tests/."""
    result = subprocess.run([_tool("ruff"), "check", "proxy", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean():
    """mypy --strict finds nothing in proxy/."""
    result = subprocess.run([_tool("mypy"), "--strict", "proxy"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

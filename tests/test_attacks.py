"""Resource attacks of issue 10 items 4-8 against a real `shadowpi serve`: a legitimate real pip install through
the server still completes while each attack runs (correctness only; bench/attacks.py measures peak RSS).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzzkit.invariants import health
from tests.fuzzkit.siege import siege, sieges

pytestmark = pytest.mark.e2e
# Smaller than bench/attacks.py, still far past what a real client sends: a 300,000-entry central directory
# (14 MB), 100,000-part forms, 20,000-file upstream pages, 300 slow connections against 256 file descriptors.
# And 16 concurrent wrong-password requests, each a bcrypt check at cost 10.
SIEGES = {s.name: s for s in sieges(bomb_entries=300_000, parts=100_000, connections=300, flooders=16)}
HUGE_FILES = 20_000
OPEN = {
}


@pytest.mark.parametrize("name", [pytest.param(s.name, marks=OPEN.get(s.item, ())) for s in SIEGES.values()])
def test_pip_install_completes_under_attack(tmp_path: Path, name: str):
    """With the attack in full swing, `pip install depends-on-tiny` (and its dependency tinylib) through the same
    server succeeds and installs the right files; afterwards the server answers /health and exits 0 on SIGTERM.

    pip retries once instead of five times: a locked-out install then fails in about 30 s instead of 90 s, and an
    install that works needs no retry.
    """
    spec = SIEGES[name]
    site = tmp_path / "site"
    with siege(spec, tmp_path / "server", huge_files=HUGE_FILES) as field:
        code, output = field.pip_install(site, "depends-on-tiny", retries=1)
        assert code == 0, output
        _seconds, problem = health(field.server, 30.0)
        assert problem is None
    assert field.server.exit_code == 0
    assert (site / "tinylib" / "__init__.py").read_text() == '__version__ = "2.0"\n'
    assert (site / "depends_on_tiny" / "__init__.py").read_text() == '__version__ = "1.0"\n'


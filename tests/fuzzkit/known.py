"""Findings the fuzzer already made that are not fixed on this branch, and exactly which problems each explains.

While a finding is open, the fuzz run tolerates the problems it explains (and only those), so the run stays green
and keeps looking for new ones. Each finding has a regression test with its input in tests/test_fuzz_findings.py,
marked xfail(strict=True): once the fix lands that test passes, turns red, and the lead removes both the marker
and the entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.fuzzkit.invariants import Outcome


@dataclass(frozen=True)
class KnownFinding:
    key: str
    owner: str  # "issue 10 item N (branch h10-…)", or "unowned" (reported to the lead)
    explains: Callable[[Outcome, str], bool]  # (outcome, one of its problems) -> this finding is the cause


# Every finding of the first fuzz runs is fixed (issue 10); add an entry here only while a new one is open.
KNOWN: tuple[KnownFinding, ...] = ()


def triage(outcome: Outcome, known: tuple[KnownFinding, ...] = KNOWN) -> list[str]:
    """The problems no known finding explains; sets outcome.known to the findings that explained the rest."""
    unexplained, explained = [], []
    for problem in outcome.problems:
        finding = next((f for f in known if f.explains(outcome, problem)), None)
        if finding is None:
            unexplained.append(problem)
        elif finding.key not in explained:
            explained.append(finding.key)
    outcome.known = ",".join(explained) or None
    return unexplained

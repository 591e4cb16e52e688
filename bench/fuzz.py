"""The long fuzz run: `.venv/bin/python bench/fuzz.py [--examples N] [--seconds S]`.

The same strategies and invariants as tests/test_fuzz.py, with random seeds, bigger bodies and many more
examples, against real `shadowpi serve` processes (anonymous and `[auth] read = true`). A prober measures
/health the whole time: the report gives its p50/p99/max against the 100 ms target, the failures with their
shrunk reproducers, and how often each known finding showed up. See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: import the checkout's packages, not bench/ siblings
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import random
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, seed, settings

from tests.fuzzkit.harness import SURFACES, LoopThread, sample_dists, start_upstream
from tests.fuzzkit.invariants import Outcome, Violation, report, run_example
from tests.fuzzkit.known import KNOWN, triage
from tests.fuzzkit.multipart import Budget
from tests.fuzzkit.plan import GROUPS, group_requests
from tests.fuzzkit.routes import ROUTES
from tests.fuzzkit.serve import ServeTarget
from tests.fuzzkit.wire import RawRequest

TARGET_MS = 100.0
RESULTS = Path(__file__).resolve().parent / "results" / "fuzz-latest.json"


@dataclass
class Tally:
    examples: Counter[str] = field(default_factory=Counter)  # by surface/group
    statuses: Counter[str] = field(default_factory=Counter)  # by group and status
    known: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Outcome, str]] = field(default_factory=list)  # the shrunk outcome and Hypothesis' notes
    spans: list[tuple[float, float, int, str]] = field(default_factory=list)  # each example: start, end, port, what


class HealthProber:
    """bench/probe.py in a process of its own, probing /health on every target; the latencies when stopped."""

    def __init__(self, targets: list[ServeTarget]) -> None:
        argv = [sys.executable, str(Path(__file__).with_name("probe.py")), *(str(t.port) for t in targets)]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.samples: list[tuple[float, float, int]] = []  # (ms, started at, port)
        self.failures: list[str] = []

    def stop(self) -> None:
        out, _ = self._proc.communicate("", timeout=60)  # closing stdin ends the prober
        for line in out.splitlines():
            port, when, value = line.split(" ", 2)
            if value.startswith("fail"):
                self.failures.append(f"port {port} at {when}: {value}")
            else:
                self.samples.append((float(value), float(when), int(port)))

    def slowest(self, count: int) -> list[tuple[float, float, int]]:
        return sorted(self.samples, reverse=True)[:count]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_batch(target: ServeTarget, group: str, budget: Budget, examples: int, batch_seed: int, tally: Tally) -> None:
    """One Hypothesis run of `examples` examples; a failure is shrunk and recorded, and the run goes on."""
    strategy = group_requests(group, set(ROUTES), budget)
    cfg = settings(max_examples=examples, derandomize=False, database=None, deadline=None, report_multiple_bugs=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.large_base_example])

    @seed(batch_seed)
    @cfg
    @given(request=strategy)
    def example(request: RawRequest) -> None:
        started = time.time()
        outcome = run_example(target, request)
        tally.spans.append((started, time.time(), target.port, f"[{target.surface.name}] {request.short()}"))
        outcome.problems = triage(outcome)
        tally.examples[f"{target.surface.name}/{group}"] += 1
        tally.statuses[f"{group} {outcome.response.status}"] += 1
        if outcome.known:
            tally.known.update(outcome.known.split(","))
        if outcome.problems:
            raise Violation(outcome)

    try:
        example()
    except Violation as exc:
        tally.failures.append((exc.outcome, "\n".join(getattr(exc, "__notes__", []))))
    except BaseExceptionGroup as group_exc:  # several distinct bugs in one batch
        for exc in group_exc.exceptions:
            if isinstance(exc, Violation):
                tally.failures.append((exc.outcome, "\n".join(getattr(exc, "__notes__", []))))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/fuzz.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="stop after this many examples (default 5000)")
    parser.add_argument("--seconds", type=float, default=600, help="stop after this long (default 600)")
    parser.add_argument("--group", action="append", choices=GROUPS, help="only these route groups (repeatable)")
    parser.add_argument("--surface", action="append", choices=[s.name for s in SURFACES], help="only these")
    parser.add_argument("--field-mb", type=float, default=5, help="largest huge form field, MiB (default 5)")
    parser.add_argument("--parts", type=int, default=20_000, help="most extra multipart parts (default 20000)")
    parser.add_argument("--batch", type=int, default=25, help="examples per Hypothesis run (default 25)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the batch seeds (default: random)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"summary file (default {RESULTS})")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    budget = Budget(field_bytes=int(args.field_mb * 2**20), parts=args.parts)
    groups = args.group or list(GROUPS)
    surfaces = [s for s in SURFACES if not args.surface or s.name in args.surface]
    master_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    seeds = random.Random(master_seed)  # noqa: S311 - seeds for Hypothesis runs, not secrets
    tally = Tally()
    loops = LoopThread()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shadowpi-fuzz-") as tmp:
        _fake, upstream_runner, url = loops.run(start_upstream(sample_dists()))
        targets = [ServeTarget(surface, Path(tmp), url) for surface in surfaces]
        exits: dict[str, int] = {}
        try:
            for target in targets:
                target.start(loops)
            prober = HealthProber(targets)
            while sum(tally.examples.values()) < args.examples and time.monotonic() - started < args.seconds:
                for group in groups:
                    for target in targets:
                        run_batch(target, group, budget, args.batch, seeds.randrange(2**32), tally)
                print(f"[{time.monotonic() - started:6.0f}s] {sum(tally.examples.values())} examples, "
                      f"{len(tally.failures)} failures", file=sys.stderr, flush=True)
            prober.stop()
        finally:
            for target in targets:
                exits[target.surface.name] = target.stop()
            loops.run(upstream_runner.cleanup())
            loops.close()
    return print_report(args, master_seed, tally, prober, exits, time.monotonic() - started)


def print_report(args: argparse.Namespace, master_seed: int, tally: Tally, prober: HealthProber,
                 exits: dict[str, int], elapsed: float) -> int:
    samples = [ms for ms, _when, _port in prober.samples]
    p50, p99, worst = (percentile(samples, 0.5), percentile(samples, 0.99), max(samples, default=0.0))
    print(f"\nshadowpi fuzz: {sum(tally.examples.values())} examples in {elapsed:.0f} s (seed {master_seed})")
    for key, count in sorted(tally.examples.items()):
        print(f"  {key:28} {count}")
    print("statuses:", ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items())))
    owners = {f.key: f.owner for f in KNOWN}
    for key, count in tally.known.most_common():
        print(f"known finding {key} ({owners.get(key, '?')}): {count} examples")
    verdict = "ok" if worst <= TARGET_MS else "OVER TARGET"
    print(f"/health: {len(samples)} probes, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms "
          f"(target {TARGET_MS:.0f} ms: {verdict}); failed probes: {len(prober.failures)}")
    for ms, when, port in prober.slowest(5):  # what the server was doing when /health was slow
        running = [what for start, end, p, what in tally.spans
                   if p == port and start <= when + ms / 1000 and end >= when]
        print(f"  /health {ms:.0f} ms on port {port} during: {'; '.join(running) or '(between examples)'}")
    print(f"server exit codes: {exits}")
    for outcome, notes in tally.failures:
        print(f"\nFAILURE\n{report(outcome)}\nreproducer: {outcome.request!r}" + (f"\n{notes}" if notes else ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "seed": master_seed, "examples": dict(tally.examples), "statuses": dict(tally.statuses),
        "known": dict(tally.known), "failures": [report(o) for o, _ in tally.failures],
        "health_ms": {"probes": len(samples), "p50": p50, "p99": p99, "max": worst, "target": TARGET_MS},
        "health_failures": prober.failures, "exit_codes": exits, "seconds": elapsed,
    }, indent=1))
    clean = not tally.failures and not prober.failures and all(code == 0 for code in exits.values())
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

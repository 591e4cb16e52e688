"""What the user sees: progress (a redrawn line on a terminal, a line per step otherwise; see proxy.progress)
and the closing summary table."""

from __future__ import annotations

from proxy.progress import Progress, ProgressBar, ProgressLines, Silent, format_bytes, progress_for
from proxy.warm.model import TargetPlan, WarmReport

__all__ = ["Progress", "ProgressBar", "ProgressLines", "Silent", "format_bytes", "progress_for", "render_summary"]

def _counts(report: WarmReport, plan: TargetPlan) -> tuple[int, int, int, int]:
    """(files, fetched now, already cached, failed) over the plan's distinct files."""
    status: dict[str, str] = {}
    for pick in plan.picks:
        result = report.results.get(pick.dist.url)
        failed = report.pick_error(pick) is not None
        if failed or result is None:
            status[pick.dist.url] = "failed"
        else:
            status.setdefault(pick.dist.url, result.status)
    values = list(status.values())
    return len(values), values.count("fetched"), values.count("cached"), values.count("failed")


def render_summary(report: WarmReport) -> str:
    """The closing table and every problem, one line each (nothing incompatible is left unsaid)."""
    everything = TargetPlan("all targets (distinct files)", tuple(p for plan in report.plans for p in plan.picks))
    rows = [(plan.label, *_counts(report, plan)) for plan in report.plans]
    rows.append((everything.label, *_counts(report, everything)))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'target'.ljust(width)}  {'files':>6}  {'fetched':>7}  {'cached':>7}  {'failed':>6}"]
    lines += [f"{label.ljust(width)}  {n:>6}  {f:>7}  {c:>7}  {x:>6}" for label, n, f, c, x in rows]
    fetched = sum(r.size for r in report.results.values() if r.status == "fetched")
    cached = sum(r.size for r in report.results.values() if r.status == "cached")
    lines.append(f"bytes: {format_bytes(fetched)} fetched from upstream now, {format_bytes(cached)} already cached")
    for plan in report.plans:
        lines += [f"no compatible file for {plan.label}: {entry}" for entry in plan.no_compatible]
        lines += [f"cannot resolve for {plan.label}: {error}" for error in plan.errors]
    lines += [f"failed: {pick.dist.filename}: {error}" for pick, error in report.failures()]
    lines += [f"not warmed (unsupported): {entry}" for entry in report.unsupported]
    lines.append("result: OK" if report.ok else "result: INCOMPLETE (see above)")
    return "\n".join(lines)

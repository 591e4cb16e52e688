"""What the user sees: a one-line progress bar on a terminal, and the closing summary table."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TextIO

from proxy.warm.model import TargetPlan, WarmReport

__all__ = ["Progress", "ProgressBar", "Silent", "format_bytes", "render_summary"]

BAR_WIDTH = 24


class Progress(Protocol):
    def phase(self, text: str) -> None: ...
    def start(self, total: int) -> None: ...
    def add_bytes(self, count: int) -> None: ...
    def file_done(self) -> None: ...
    def finish(self) -> None: ...


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB' (binary units, one decimal; whole bytes below 1 KiB)."""
    if count < 1024:
        return f"{int(count)} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024 or unit == "GiB":
            break
    return f"{count:.1f} {unit}"


class ProgressBar:
    """Redraws one stderr line (at most every `interval` seconds): the phase, then files done/total and bytes."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic, interval: float = 0.1) -> None:
        self._stream = stream
        self._clock = clock
        self._interval = interval
        self._last_draw = float("-inf")
        self._width = 0
        self._text = ""
        self.total = 0
        self.done = 0
        self.bytes = 0

    def phase(self, text: str) -> None:
        self._text = text
        self._draw(force=True)

    def start(self, total: int) -> None:
        self._text, self.total, self.done = "", total, 0
        self._draw(force=True)

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        self._draw()

    def file_done(self) -> None:
        self.done += 1
        self._draw(force=self.done == self.total)

    def finish(self) -> None:
        """Erase the line, so the summary starts on a clean one."""
        self._stream.write("\r" + " " * self._width + "\r")
        self._stream.flush()

    def line(self) -> str:
        if self._text:
            return f"{self._text}  {format_bytes(self.bytes)}" if self.bytes else self._text
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"warming [{bar}] {self.done}/{self.total} files  {format_bytes(self.bytes)}"

    def _draw(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        text = self.line()
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


class Silent:
    """The progress sink when stderr is not a terminal: logs and pipes get only the summary."""

    def phase(self, text: str) -> None:
        pass

    def start(self, total: int) -> None:
        pass

    def add_bytes(self, count: int) -> None:
        pass

    def file_done(self) -> None:
        pass

    def finish(self) -> None:
        pass


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

"""Results: every metric's label and better direction, the summary table, the JSON file, and old-vs-new comparison."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.corpus import Sizes

SCHEMA = 1
# aiohttp: the floor, bench/floor.py; verified: the verified floor, bench/verified_floor.py (subsets of scenarios)
TARGETS = ("shadowpi", "nginx", "aiohttp", "verified")
HIGHER, LOWER, EXACT = "higher", "lower", "exact"  # better direction; EXACT: a count that should not change


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    better: str
    digits: int | None = None  # decimals in the table; None: chosen from the value's size


def _size(n: int) -> str:
    return f"{n // (1024 * 1024 * 1024)} GiB" if n >= 1024**3 else f"{n // (1024 * 1024)} MiB"


def metrics(sizes: Sizes, herd_clients: int = 32) -> list[Metric]:
    mid, big, n = _size(sizes.medium), _size(sizes.big), herd_clients
    rows = []
    for prefix, title in (("page5", "warm 5-file page"), ("page5000", "warm 5,000-file page")):
        rows += [
            Metric(f"{prefix}.rps", f"{title}: requests/s", HIGHER),
            Metric(f"{prefix}.p50_ms", f"{title}: p50 latency (ms)", LOWER),
            Metric(f"{prefix}.p99_ms", f"{title}: p99 latency (ms)", LOWER),
            Metric(f"{prefix}.cpu_per_1k", f"{title}: server CPU s / 1,000 req", LOWER),
            Metric(f"{prefix}.bytes", f"{title}: response bytes (gzip)", LOWER, 0),
        ]
    no_ui = "warm 5-file page, web interface off"
    rows += [
        Metric("page5_noui.rps", f"{no_ui}: requests/s", HIGHER),
        Metric("page5_noui.p50_ms", f"{no_ui}: p50 latency (ms)", LOWER),
        Metric("page5_noui.p99_ms", f"{no_ui}: p99 latency (ms)", LOWER),
        Metric("page5_noui.cpu_per_1k", f"{no_ui}: server CPU s / 1,000 req", LOWER),
        Metric("cold_page.p50_ms", "cold page (20 projects): p50 latency (ms)", LOWER),
        Metric("cold_page.upstream", "cold page: upstream requests per page", EXACT),
        Metric("warm_dl_1.gbps", f"warm {mid} download, 1 client (GB/s)", HIGHER),
        Metric("warm_dl_8.gbps", f"warm {mid} download, 8 clients (GB/s total)", HIGHER),
        Metric("cold_dl.ttfb_ms", f"cold {mid} download: time to first byte (ms)", LOWER),
        Metric("cold_dl.total_s", f"cold {mid} download: total (s)", LOWER),
        Metric("cold_dl.upstream_ttfb_ms", f"cold {mid} download: upstream's own first byte (ms)", LOWER),
        Metric("cold_dl.ttfb_over_upstream_ms", f"cold {mid} download: first byte over upstream's (ms)", LOWER),
    ]
    for prefix, title in (("herd_fast", "herd, fast upstream"), ("herd_slow", "herd, slow upstream (25 MB/s)")):
        rows += [
            Metric(f"{prefix}.upstream_gets", f"{title}: upstream GETs for {n} clients", EXACT, 0),
            Metric(f"{prefix}.ok", f"{title}: copies with correct sha256 (of {n})", HIGHER, 0),
            Metric(f"{prefix}.ttfb_p50_ms", f"{title}: median time to first byte (ms)", LOWER),
            Metric(f"{prefix}.total_p50_s", f"{title}: median time to last byte (s)", LOWER),
        ]
    rows += [
        Metric("huge.peak_rss_mib", f"cold {big} download: peak server RSS (MiB)", LOWER),
        Metric("huge.rss_growth_mib", f"cold {big} download: RSS growth during it (MiB)", LOWER),
        Metric("huge.total_s", f"cold {big} download: total (s)", LOWER),
        Metric("pip.cold_s", "pip install, 30 packages, cold (s)", LOWER),
        Metric("pip.warm_s", "pip install, 30 packages, warm (s)", LOWER),
        Metric("uv.cold_s", "uv pip install, 30 packages, cold (s)", LOWER),
        Metric("uv.warm_s", "uv pip install, 30 packages, warm (s)", LOWER),
    ]
    return rows + _install_rows() + _cost_rows()


def _install_rows() -> list[Metric]:
    """issue 11's table: 30 projects by name, --no-deps; wall time, and the server's share of the work."""
    rows = []
    titles = {
        "pip_install_cold": "pip install --no-deps, cold",
        "pip_install_warm": "pip install --no-deps, warm",
        "pip_download_warm": "pip download --no-deps, warm",
        "uv_install_cold": "uv pip install --no-deps, cold",
        "uv_install_warm": "uv pip install --no-deps, warm",
    }
    for key, title in titles.items():
        rows += [
            Metric(f"nodeps.{key}_s", f"{title} (s)", LOWER),
            Metric(f"nodeps.{key}_cpu_ms", f"{title}: server CPU (ms)", LOWER),
            Metric(f"nodeps.{key}_wakeups_per_req", f"{title}: server wake-ups per request", LOWER, 1),
        ]
    return rows


def _cost_rows() -> list[Metric]:
    rows = [Metric("cost.idle_page_ms", "idle single page request, fresh connection (ms)", LOWER, 2)]
    for kind in ("page", "metadata", "wheel"):
        rows += [
            Metric(f"cost.{kind}_p50_ms", f"warm {kind} request, keep-alive: p50 (ms)", LOWER, 3),
            Metric(f"cost.{kind}_cpu_us", f"warm {kind} request: server CPU (µs)", LOWER, 0),
            Metric(f"cost.{kind}_wakeups", f"warm {kind} request: server wake-ups", LOWER, 1),
        ]
    return rows


@dataclass
class Results:
    """Every measured value: values[target][metric key] is one number per run."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=lambda: {t: {} for t in TARGETS})
    upstream: list[dict[str, dict[str, int]]] = field(default_factory=list)  # per run: requests per proxy

    def add(self, target: str, measured: dict[str, float]) -> None:
        for key, value in measured.items():
            self.values[target].setdefault(key, []).append(value)


def summarize(values: list[float]) -> dict[str, object]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {"values": values, "median": None, "min": None, "max": None}
    return {"values": values, "median": statistics.median(finite), "min": min(finite), "max": max(finite)}


def ratio(shadowpi: float | None, nginx: float | None) -> float | None:
    if shadowpi is None or nginx is None or nginx == 0:
        return None
    return shadowpi / nginx


def to_json(results: Results, table: list[Metric], meta: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for metric in table:
        entry: dict[str, object] = {"label": metric.label, "better": metric.better, "digits": metric.digits}
        for target in TARGETS:
            if metric.key in results.values[target]:
                entry[target] = summarize(results.values[target][metric.key])
        if "shadowpi" in entry or "nginx" in entry:
            entry["ratio"] = ratio(_median(entry.get("shadowpi")), _median(entry.get("nginx")))
            if "aiohttp" in entry:
                entry["floor_ratio"] = ratio(_median(entry.get("aiohttp")), _median(entry.get("nginx")))
            if "verified" in entry:
                entry["verified_ratio"] = ratio(_median(entry.get("verified")), _median(entry.get("nginx")))
            out[metric.key] = entry
    return {"schema": SCHEMA, **meta, "upstream_requests": results.upstream, "metrics": out}


def _median(summary: object) -> float | None:
    if isinstance(summary, dict):
        value = summary.get("median")
        return float(value) if isinstance(value, int | float) else None
    return None


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cell(summary: object, digits: int) -> str:
    if not isinstance(summary, dict) or summary.get("median") is None:
        return "-"
    low, mid, high = summary["min"], summary["median"], summary["max"]
    text = _fmt(mid, digits)
    if len(summary["values"]) > 1:
        text += f" ({_fmt(low, digits)}-{_fmt(high, digits)})"
    return text


def _render(header: list[str], rows: Iterable[list[str]]) -> str:
    rows = list(rows)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return " | ".join([first, *rest])

    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


ARROWS = {HIGHER: "^", LOWER: "v", EXACT: "="}


def table(doc: dict[str, object]) -> str:
    """scenario | shadowpi median (min-max) | nginx median (min-max) | ratio shadowpi/nginx."""
    entries = _metric_entries(doc)
    floor = any("aiohttp" in entry for entry in entries)
    verified = any("verified" in entry for entry in entries)
    rows = []
    for entry in entries:
        digits = _digits(entry)
        row = [
            f"{ARROWS.get(str(entry['better']), ' ')} {entry['label']}",
            _cell(entry.get("shadowpi"), digits),
            _cell(entry.get("nginx"), digits),
            _ratio_cell(entry.get("ratio")),
        ]
        if floor:
            row += [_cell(entry.get("aiohttp"), digits), _ratio_cell(entry.get("floor_ratio"))]
        if verified:
            row += [_cell(entry.get("verified"), digits), _ratio_cell(entry.get("verified_ratio"))]
        rows.append(row)
    legend = ("^ higher is better, v lower is better, = a count (same is right). "
              "ratio = shadowpi / nginx: > 1 means shadowpi is higher.")
    header = ["scenario", "shadowpi median (min-max)", "nginx median (min-max)", "ratio"]
    if floor:
        header += ["aiohttp floor", "floor ratio"]
        legend += ("\naiohttp floor: bench/floor.py, a bare aiohttp proxy (pages kept in a dict, files streamed, "
                   "nothing checked); floor ratio = floor / nginx, the part of a gap no aiohttp handler can close.")
    if verified:
        header += ["verified floor", "v. ratio"]
        legend += ("\nverified floor: bench/verified_floor.py, the floor plus the work of shadowpi's guarantees for "
                   "files (claim, hash, last byte held back, fsync and rename) and pages (parsed, pointed here, kept "
                   "in SQLite); v. ratio = verified floor / nginx, the part of a gap no aiohttp server that keeps the "
                   "guarantees can close.")
    return _render(header, rows) + "\n" + legend


def _ratio_cell(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.2f}"


def _metric_entries(doc: dict[str, object]) -> list[dict[str, object]]:
    found = doc.get("metrics")
    if not isinstance(found, dict):
        return []
    return [{"key": key, **entry} for key, entry in found.items() if isinstance(entry, dict)]


def _digits(entry: dict[str, object]) -> int:
    if isinstance(entry.get("digits"), int):
        return int(str(entry["digits"]))
    for target in TARGETS:
        median = _median(entry.get(target))
        if median is not None:
            return 0 if abs(median) >= 1000 else 2 if abs(median) >= 1 else 3
    return 2


def compare(old: dict[str, object], new: dict[str, object], noise: float = 0.05) -> str:
    """shadowpi old vs new per metric: the change and whether it is better or worse (beyond `noise`)."""
    old_entries = {str(e["key"]): e for e in _metric_entries(old)}
    rows = []
    for entry in _metric_entries(new):
        before = old_entries.get(str(entry["key"]))
        digits = _digits(entry)
        old_value = _median(before.get("shadowpi")) if before else None
        new_value = _median(entry.get("shadowpi"))
        rows.append([f"{ARROWS.get(str(entry['better']), ' ')} {entry['label']}", _fmt(old_value, digits),
                     _fmt(new_value, digits), *_change(old_value, new_value, str(entry["better"]), noise)])
    notes = []
    for key in ("mode", "sizes", "runs", "git"):
        if old.get(key) != new.get(key):
            notes.append(f"{key}: old {old.get(key)} / new {new.get(key)}")
    header = ["scenario (shadowpi)", "old median", "new median", "new/old", "verdict"]
    text = _render(header, rows)
    if notes:
        text += "\nnote: the runs differ in " + "; ".join(notes)
    return text + f"\nverdict: changes within +/-{noise:.0%} are reported as noise."


def _change(old: float | None, new: float | None, better: str, noise: float) -> list[str]:
    if old is None or new is None:
        return ["-", "-"]
    if old == 0:
        return ["-", "same" if new == 0 else "changed"]
    factor = new / old
    if better == EXACT:
        return [f"{factor:.2f}", "same" if new == old else "CHANGED"]
    if abs(factor - 1) <= noise:
        return [f"{factor:.2f}", "noise"]
    improved = (factor > 1) == (better == HIGHER)
    return [f"{factor:.2f}", "better" if improved else "WORSE"]


def load(path: Path) -> dict[str, object]:
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a result of this benchmark (schema {SCHEMA})")
    return doc

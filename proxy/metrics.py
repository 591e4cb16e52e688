"""Prometheus metrics: one registry per app (no prometheus_client globals), updated by the caches and handlers."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Methods get their own label value; anything else is "other", so made-up methods cannot grow the label set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS = {code: str(code) for code in range(100, 600)}
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HotCounts(Collector):
    """What every request counts (requests by route, method and status; latency by route; page lookups and file
    requests by outcome; file bytes sent by source), kept as plain integers and exported as Prometheus metrics
    when scraped.

    prometheus_client's Counter.inc and Histogram.observe take a lock each, and observe walks the bucket list in
    Python: about 8 µs per request, measured, on a path that costs 60-90 µs in all. The event loop is the only
    writer here, so no lock is needed; a scrape reads the numbers on the same thread.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._buckets = buckets
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, list[float]] = {}  # route -> per-bucket counts (+Inf last), then the sum
        self.page_lookups: dict[str, int] = {}
        self.file_requests: dict[str, int] = {}  # by cache outcome
        self.bytes_served: dict[str, int] = {}  # file bytes sent, by where they came from

    def request(self, route: str, method: str, status: str, seconds: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.latency.get(route)
        if counts is None:
            counts = self.latency[route] = [0.0] * (len(self._buckets) + 2)
        counts[bisect_left(self._buckets, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("shadowpi_http_requests", "HTTP requests answered",
                                       labels=["route", "method", "status"])
        for labels, count in self.requests.items():
            requests.add_metric(list(labels), count)
        latency = HistogramMetricFamily("shadowpi_http_request_duration_seconds",
                                        "Time to answer (streamed bodies: until the last byte)", labels=["route"])
        bounds = [*(f"{b:g}" for b in self._buckets), "+Inf"]
        for route, counts in self.latency.items():
            cumulative: list[tuple[str, float]] = []
            running = 0.0
            for bound, in_bucket in zip(bounds, counts[:-1], strict=True):
                running += in_bucket
                cumulative.append((bound, running))
            latency.add_metric([route], cumulative, counts[-1])
        yield from (
            requests,
            latency,
            _by_label("shadowpi_page_lookups", "Project page lookups by cache outcome", "outcome", self.page_lookups),
            _by_label("shadowpi_file_requests", "File downloads by cache outcome (hit, miss, private, redirect)",
                      "outcome", self.file_requests),
            _by_label("shadowpi_file_bytes_served", "File bytes sent to clients, by where they came from", "source",
                      self.bytes_served),
        )


def _by_label(name: str, documentation: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    """A counter with one label, from plain per-value counts."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


class Metrics:
    """Every metric shadowpi exports. Label values are bounded (routes, outcomes), never names or paths."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.hot = HotCounts(_LATENCY_BUCKETS)
        r.register(self.hot)
        self.upstream_requests = Counter(
            "shadowpi_upstream_requests", "Requests to upstream by kind (page, file) and result", ["kind", "result"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "shadowpi_upstream_request_duration_seconds", "Upstream response time (pages: whole; files: headers)",
            ["kind"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.fills_in_flight = Gauge("shadowpi_downloads_in_flight", "Upstream file downloads running", registry=r)
        self.cache_bytes = Gauge("shadowpi_cache_bytes", "Bytes of cached upstream files", registry=r)
        self.cache_files = Gauge("shadowpi_cache_files", "Number of cached upstream files", registry=r)
        self.evictions = Counter("shadowpi_cache_evictions", "Cached files evicted (LRU)", registry=r)

    def page_lookup(self, outcome: str) -> None:
        """Count one project-page lookup by outcome (hit, miss, ...: a fixed set)."""
        lookups = self.hot.page_lookups
        lookups[outcome] = lookups.get(outcome, 0) + 1

    def file_request(self, outcome: str) -> None:
        """Count one file request by cache outcome (hit, miss, private, redirect: a fixed set)."""
        counts = self.hot.file_requests
        counts[outcome] = counts.get(outcome, 0) + 1

    def bytes_sent(self, source: str, count: int) -> None:
        """Count file bytes sent to clients by where they came from (cache, upstream)."""
        counts = self.hot.bytes_served
        counts[source] = counts.get(source, 0) + count

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (route: the route pattern, never the raw path)."""
        # Bounded, like labels: made-up methods are "other", and statuses are three digits.
        self.hot.request(route, method if method in _METHODS else "other", _STATUS.get(status) or str(status), seconds)

    def track_fills(self, count: Callable[[], int]) -> None:
        """Read the in-flight download count at scrape time."""
        self.fills_in_flight.set_function(lambda: float(count()))

    def render(self) -> bytes:
        return generate_latest(self.registry)

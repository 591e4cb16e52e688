"""Prometheus metrics: one registry per app (no prometheus_client globals), updated by the caches and handlers."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Methods get their own label value; anything else is "other", so made-up methods cannot grow the label set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric shadowpi exports. Label values are bounded (routes, outcomes), never names or paths."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "shadowpi_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "shadowpi_http_request_duration_seconds", "Time to answer (streamed bodies: until the last byte)",
            ["route"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.page_lookups = Counter(
            "shadowpi_page_lookups", "Project page lookups by cache outcome", ["outcome"], registry=r
        )
        self.file_requests = Counter(
            "shadowpi_file_requests", "File downloads by cache outcome (hit, miss, private, redirect)", ["outcome"],
            registry=r,
        )
        self.bytes_served = Counter(
            "shadowpi_file_bytes_served", "File bytes sent to clients, by where they came from", ["source"],
            registry=r,
        )
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
        # labels() takes a lock and builds a key on every call; requests reuse the children they resolved.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._page_children: dict[str, Counter] = {}

    def page_lookup(self, outcome: str) -> None:
        """Count one project-page lookup by outcome (hit, miss, ...: a fixed set)."""
        child = self._page_children.get(outcome)
        if child is None:
            child = self._page_children[outcome] = self.page_lookups.labels(outcome)
        child.inc()

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (route: the route pattern, never the raw path)."""
        key = (route, method if method in _METHODS else "other", status)  # bounded, like the labels
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(route, key[1], str(status)), self.request_seconds.labels(route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def track_fills(self, count: Callable[[], int]) -> None:
        """Read the in-flight download count at scrape time."""
        self.fills_in_flight.set_function(lambda: float(count()))

    def render(self) -> bytes:
        return generate_latest(self.registry)

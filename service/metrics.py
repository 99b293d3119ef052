"""Prometheus metrics for the HTTP layer and the sandbox; one registry per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Latency buckets in seconds, from sub-millisecond ops routes to long execution batches.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                   60, 120)


class Metrics:
    """The service's own metrics. Components with metrics of their own take `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "codereward_http_requests_total", "HTTP requests by route and status",
            ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "codereward_http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(
            "codereward_http_in_flight_requests", "requests being served", registry=r)
        self.sandbox_runs = Counter(
            "codereward_sandbox_programs_total", "programs executed, by submission status",
            ["status"], registry=r)
        self.sandbox_tests = Counter(
            "codereward_sandbox_tests_total", "asserts executed, by test status",
            ["status"], registry=r)
        self.sandbox_duration = Histogram(
            "codereward_sandbox_batch_duration_seconds", "wall time of one execution call",
            buckets=LATENCY_BUCKETS, registry=r)
        self.sandbox_in_flight = Gauge(
            "codereward_sandbox_in_flight_programs", "programs accepted and not yet finished",
            registry=r)
        self.errors = Counter(
            "codereward_errors_total", "answered errors by kind", ["kind"], registry=r)

"""Prometheus metrics of the scoring path (batcher and engines), labelled by model."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.metrics import LATENCY_BUCKETS

_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
_RATIO_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


class ScoringMetrics:
    """Queue depth, batch shape, padding, model time and per-stage latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.queue_depth = Gauge(
            "codereward_score_queue_items", "items waiting for a batch", ["model"], registry=r)
        self.batch_size = Histogram(
            "codereward_score_batch_size", "items per model call", ["model"],
            buckets=_SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram(
            "codereward_score_batch_tokens", "padded tokens per model call", ["model"],
            buckets=_TOKEN_BUCKETS, registry=r)
        self.padding_ratio = Histogram(
            "codereward_score_padding_ratio", "share of padded tokens per model call",
            ["model"], buckets=_RATIO_BUCKETS, registry=r)
        self.model_time = Histogram(
            "codereward_score_model_seconds", "wall time of one model call", ["model"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.stage = Histogram(
            "codereward_score_stage_seconds", "per-request latency by stage "
            "(tokenize, queue, inference)", ["model", "stage"], buckets=LATENCY_BUCKETS,
            registry=r)
        self.items = Counter(
            "codereward_score_items_total", "items scored", ["model"], registry=r)
        self.truncated = Counter(
            "codereward_score_truncated_total", "items truncated to the max length", ["model"],
            registry=r)
        self.dropped = Counter(
            "codereward_score_dropped_total", "items dropped before inference because their "
            "client disconnected", ["model"], registry=r)

"""The Grafana dashboard and the alert rules query metrics the code really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sandbox_worker.worker import WorkerMetrics
from service.config import Settings
from service.execution.redis_sandbox import RedisSandbox
from service.metrics import Metrics
from service.scoring.metrics import ScoringMetrics

ROOT = Path(__file__).resolve().parents[2]
# labels Prometheus adds at scrape time (kubernetes_sd relabelling) or histograms carry
_SCRAPE_LABELS = {"pod", "namespace", "instance", "job", "le"}


def exported() -> dict[str, set[str]]:
    """Every codereward_* series name the service and the workers export, with its labels."""
    metrics = Metrics()
    ScoringMetrics(metrics.registry)
    RedisSandbox.from_settings(Settings(_env_file=None, redis_url="redis://127.0.0.1:9/0"),
                               metrics)  # registers its counters; connects lazily, never here
    registries: list[CollectorRegistry] = [metrics.registry, WorkerMetrics().registry]
    out: dict[str, set[str]] = {}
    for registry in registries:
        # series names (with _total, _bucket, ... suffixes) -> the metric that owns them
        for name, collector in registry._names_to_collectors.items():
            out[name] = set(getattr(collector, "_labelnames", ()))
    return out


def expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load((ROOT / "deploy/alerts/codereward.rules.yaml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return exprs


def test_every_queried_metric_and_label_exists() -> None:
    known = exported()
    names = set(known)
    seen = set()
    for expr in expressions():
        for name, selector in re.findall(r"(codereward_[a-z_]+)(\{[^}]*\})?", expr):
            seen.add(name)
            assert name in names, f"{name} is not exported (in {expr!r})"
            labels = set(re.findall(r"([a-z_]+)\s*[!=]~?\"", selector))
            assert labels <= known[name] | _SCRAPE_LABELS, (name, labels - known[name])
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in (x.strip() for x in group.split(",")):
                assert any(label in ls for ls in known.values()) or label in _SCRAPE_LABELS, \
                    (label, expr)
    # the dashboard covers what the issue asks: latency, batch size, queue depth, sandbox
    # outcomes, cache hits, worker lag
    for needed in ("codereward_http_request_duration_seconds_bucket",
                   "codereward_score_batch_size_bucket", "codereward_score_queue_items",
                   "codereward_sandbox_programs_total", "codereward_sandbox_cache_hits_total",
                   "codereward_worker_queue_lag_seconds_bucket"):
        assert needed in seen, needed


@pytest.mark.parametrize("rule", [r for g in yaml.safe_load(
    (ROOT / "deploy/alerts/codereward.rules.yaml").read_text())["groups"] for r in g["rules"]],
    ids=lambda r: r["alert"])
def test_every_alert_has_a_runbook_section(rule: dict[str, object]) -> None:
    runbook = (ROOT / "docs/runbook.md").read_text()
    anchors = {h.strip().lower().replace(" ", "-") for h in
               re.findall(r"^#+ (.+)$", runbook, flags=re.M)}
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    path, _, anchor = str(annotations["runbook_url"]).partition("#")
    assert path == "docs/runbook.md" and anchor in anchors, anchor
    assert rule.get("labels", {}).get("severity") in {"page", "warn", "info"}  # type: ignore[union-attr]

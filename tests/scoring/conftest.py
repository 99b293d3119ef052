"""Scoring fixtures: fake engines for batcher unit tests, started registries over real weights."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sandbox_worker.protocol import Job, JobResult, RunStatus, TestStatus, TestVerdict
from service.metrics import Metrics
from service.scoring.engines.base import Encoded, LoadOptions, ModelInfo
from service.scoring.metrics import ScoringMetrics
from service.scoring.models import BatchLimits, ModelRegistry


class FakeEngine:
    """Scores an item as its length; records batches; `gate` blocks the model thread."""

    padded = True
    score_bias = 0.0
    tokenizer: Any = None

    def __init__(self, max_length: int = 512) -> None:
        self.info = ModelInfo(name="fake", backend="fake", dtype="float32", device="cpu",
                              max_length=max_length, parameters=0)
        self.batches: list[list[list[int]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()  # set when a batch reached the model thread

    def prepare(self, batch: Sequence[Encoded]) -> list[list[int]]:
        return [list(e.input_ids) for e in batch]

    def run(self, prepared: list[list[int]]) -> list[float]:
        self.started.set()
        self.gate.wait(timeout=30)
        self.batches.append(prepared)
        return [float(len(ids)) for ids in prepared]

    def close(self) -> None:
        self.gate.set()


class PassRateSandbox:
    """Pass rate per candidate from a table keyed by code; records the jobs it ran."""

    def __init__(self, rates: dict[str, float]) -> None:
        self.rates = rates
        self.jobs: list[Job] = []

    async def execute(self, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        self.jobs.extend(jobs)
        results = []
        for job in jobs:
            passed = round(self.rates[job.code] * len(job.tests))
            results.append(JobResult.from_tests(RunStatus.OK, [
                TestVerdict(status=TestStatus.PASSED if i < passed else TestStatus.FAILED)
                for i in range(len(job.tests))]))
        return results

    async def ready(self) -> bool:
        return True

    def describe(self) -> dict[str, str]:
        return {"backend": "fake", "isolation": "none"}

    def languages(self) -> dict[str, str] | None:
        return None

    async def aclose(self) -> None:
        return None


def load_options(name: str, path: Path, **kw: Any) -> LoadOptions:
    return LoadOptions(name=name, path=path, device="cpu", dtype=kw.pop("dtype", "float32"),
                       max_length_tokens=kw.pop("max_length_tokens", 2048), **kw)


@pytest.fixture
async def two_models(tiny_bert_dir: Path, tiny_qwen2_dir: Path) -> AsyncIterator[ModelRegistry]:
    """A started registry: tiny BERT (default) and tiny Qwen2."""
    registry = ModelRegistry(
        [load_options("bert", tiny_bert_dir), load_options("qwen", tiny_qwen2_dir)],
        limits=BatchLimits(max_batch_tokens=4096, max_batch_requests=16),
        metrics=ScoringMetrics(Metrics().registry))
    await registry.start()
    try:
        yield registry
    finally:
        await registry.aclose()

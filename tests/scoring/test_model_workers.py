"""CPU model threads: batches side by side, each on its share of the cores."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

from service.scoring.batcher import Batcher
from service.scoring.engines.base import Encoded
from service.scoring.model_workers import DeviceWorkers
from service.scoring.models import BatchLimits, ModelRegistry, device_workers
from tests.scoring.conftest import FakeEngine, load_options
from tests.scoring.test_engines import TOL, mixed_items


class CountingEngine(FakeEngine):
    """Counts runs in progress; `both` is set once two runs overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.most = 0
        self.both = threading.Event()
        self._lock = threading.Lock()

    def run(self, prepared: list[list[int]]) -> list[float]:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
            if self.active >= 2:
                self.both.set()
        try:
            return super().run(prepared)
        finally:
            with self._lock:
                self.active -= 1


def batcher(engine: FakeEngine, workers: DeviceWorkers) -> Batcher:
    b = Batcher(engine, max_batch_tokens=1024, max_batch_requests=1, max_queue_items=100,
                workers=workers)
    b.start()
    return b


def items(n: int) -> list[Sequence[Encoded]]:
    return [[Encoded(input_ids=[i] * (10 + i))] for i in range(n)]


async def test_two_cpu_workers_run_two_batches_at_once_on_half_the_cores() -> None:
    shares: list[int] = []
    workers = DeviceWorkers("cpu", workers=2, cores=4, set_threads=shares.append)
    engine = CountingEngine()
    engine.gate.clear()
    b = batcher(engine, workers)
    try:
        tasks = [asyncio.create_task(b.submit(i)) for i in items(6)]
        assert await asyncio.to_thread(engine.both.wait, 10)  # two batches in the model
        await asyncio.sleep(0.1)  # room for a wrong scheduler to start a third
        assert engine.active == 2
        engine.gate.set()
        results = await asyncio.gather(*tasks)
    finally:
        await b.aclose()
        workers.shutdown()
    assert [r.scores for r in results] == [[float(10 + i)] for i in range(6)]
    assert engine.most == 2
    assert shares[:2] == [4, 2]  # alone: every core; beside another run: half
    assert set(shares) <= {2, 4}


async def test_one_worker_runs_one_batch_at_a_time() -> None:
    workers = DeviceWorkers("cuda", workers=1)
    engine = CountingEngine()
    b = batcher(engine, workers)
    try:
        results = await asyncio.gather(*(b.submit(i) for i in items(8)))
    finally:
        await b.aclose()
        workers.shutdown()
    assert [r.scores for r in results] == [[float(10 + i)] for i in range(8)]
    assert engine.most == 1 and len(engine.batches) == 8


def test_device_workers_defaults() -> None:
    gpu = device_workers("cuda")
    cpu = device_workers("cpu")
    one = device_workers("cpu", 1)
    try:
        assert gpu.workers == 1
        assert cpu.workers == min(2, torch.get_num_threads())
        assert cpu.cores == torch.get_num_threads() and one.workers == 1
    finally:
        for w in (gpu, cpu, one):
            w.shutdown()


async def test_real_weights_score_the_same_on_two_workers(minilm_dir: Path) -> None:
    """MiniLM through the batcher on two single-threaded workers vs each item alone."""
    registry = ModelRegistry([load_options("m", minilm_dir, packed=True)],
                             limits=BatchLimits(max_batch_tokens=4096, max_batch_tokens_cpu=256,
                                                max_batch_requests=2, cpu_model_workers=2))
    await registry.start()
    try:
        scorer = registry.get(None)
        assert scorer._batcher._workers.workers == 2
        batch = mixed_items(12, seed=13)
        alone = [(await scorer.score([i])).scores[0] for i in batch]
        together = await asyncio.gather(*(scorer.score([i]) for i in batch))
    finally:
        await registry.aclose()
    assert max(abs(a - t.scores[0]) for a, t in zip(alone, together, strict=True)) <= TOL

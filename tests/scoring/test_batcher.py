"""Batcher: batch formation by token budget and request cap, 429, dropped disconnects."""

from __future__ import annotations

import asyncio
import random

import pytest

from service.errors import Overloaded
from service.metrics import Metrics
from service.scoring.batcher import Batcher, _Entry, _Request, batch_cost, select_batch
from service.scoring.engines.base import Encoded
from service.scoring.metrics import ScoringMetrics
from tests.scoring.conftest import FakeEngine


def item(length: int, tag: int = 0) -> Encoded:
    return Encoded(input_ids=[tag] * length)


def entries(lengths: list[int]) -> list[_Entry]:
    loop = asyncio.new_event_loop()
    try:
        request = _Request(None)
        return [_Entry(item(n, i), request, loop.create_future(), float(i))
                for i, n in enumerate(lengths)]
    finally:
        loop.close()


@pytest.mark.parametrize("seed", range(20))
def test_select_batch_respects_budget_and_cap(seed: int) -> None:
    rng = random.Random(seed)
    window = entries([rng.randint(1, 300) for _ in range(rng.randint(1, 80))])
    budget, cap = rng.choice([512, 1000, 4096]), rng.choice([1, 4, 16, 64])
    batch = select_batch(window, budget, cap)
    lengths = [len(e.item) for e in batch]
    assert window[0] in batch  # the oldest always goes first (no starvation)
    assert len(batch) <= cap
    assert batch_cost(lengths, padded=True) <= max(budget, len(window[0].item))
    # maximal: no left-over entry could join without breaking the budget or the cap
    rest = [e for e in window if e not in batch]
    if len(batch) < cap:
        for e in rest:
            assert batch_cost([*lengths, len(e.item)], padded=True) > budget


def test_select_batch_groups_similar_lengths() -> None:
    # oldest is 100 tokens; the budget fits 4 items of ~100 but not a 1000-token one
    window = entries([100, 1000, 10, 101, 1000, 99, 102, 12, 100])
    batch = select_batch(window, 4 * 102, 64)
    assert sorted(len(e.item) for e in batch) == [99, 100, 100, 101]  # least padding


def test_unpadded_cost_is_sum() -> None:
    window = entries([100, 300, 50])
    assert len(select_batch(window, 450, 64, padded=False)) == 3  # 450 tokens: all fit
    assert len(select_batch(window, 450, 64, padded=True)) == 2  # 3 x 300 would not


async def start_batcher(engine: FakeEngine, **kw: int) -> tuple[Batcher, ScoringMetrics]:
    metrics = ScoringMetrics(Metrics().registry)
    batcher = Batcher(engine, max_batch_tokens=kw.get("tokens", 1024),
                      max_batch_requests=kw.get("requests", 8),
                      max_queue_items=kw.get("queue", 1000), metrics=metrics)
    batcher.start()
    return batcher, metrics


async def wait_started(engine: FakeEngine) -> None:
    await asyncio.to_thread(engine.started.wait, 10)


async def test_concurrent_requests_share_batches_within_limits() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher, _ = await start_batcher(engine, tokens=1024, requests=8)
    try:
        first = asyncio.create_task(batcher.submit([item(10)]))
        await wait_started(engine)  # the model thread is busy with the first batch
        lengths = [random.Random(i).randint(16, 300) for i in range(40)]
        tasks = [asyncio.create_task(batcher.submit([item(n, i)])) for i, n in enumerate(lengths)]
        await asyncio.sleep(0.05)
        engine.gate.set()
        results = await asyncio.gather(*tasks)
        await first
    finally:
        await batcher.aclose()
    assert [r.scores for r in results] == [[float(n)] for n in lengths]
    later = engine.batches[1:]
    assert sum(len(b) for b in later) == 40
    assert any(len(b) > 1 for b in later)  # requests from different clients were batched
    for batch in later:
        assert len(batch) <= 8
        assert batch_cost([len(x) for x in batch], padded=True) <= 1024


async def test_queue_over_limit_answers_429() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher, _ = await start_batcher(engine, queue=10, requests=1)
    try:
        busy = asyncio.create_task(batcher.submit([item(5)]))
        await wait_started(engine)
        waiting = asyncio.create_task(batcher.submit([item(5)] * 8))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded) as err:
            await batcher.submit([item(5)] * 5)  # 8 queued + 5 > 10
        assert err.value.status_code == 429 and "Retry-After" in (err.value.headers or {})
        engine.gate.set()
        assert (await waiting).scores == [5.0] * 8
        await busy
    finally:
        engine.gate.set()
        await batcher.aclose()


async def test_disconnected_clients_are_dropped_before_inference() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher, metrics = await start_batcher(engine)
    gone = False

    async def is_disconnected() -> bool:
        return gone

    try:
        busy = asyncio.create_task(batcher.submit([item(3)]))
        await wait_started(engine)
        doomed = asyncio.create_task(batcher.submit([item(77), item(78)], is_disconnected))
        kept = asyncio.create_task(batcher.submit([item(20)]))
        await asyncio.sleep(0.05)
        gone = True  # the client left while its items waited in the queue
        engine.gate.set()
        assert (await kept).scores == [20.0]
        await busy
        # a cancelled request (server noticed the disconnect) is dropped too
        engine.gate.clear()
        engine.started.clear()
        busy2 = asyncio.create_task(batcher.submit([item(4)]))
        await wait_started(engine)
        cancelled = asyncio.create_task(batcher.submit([item(99)]))
        await asyncio.sleep(0.02)
        cancelled.cancel()
        engine.gate.set()
        await busy2
        await asyncio.sleep(0.05)
    finally:
        engine.gate.set()
        await batcher.aclose()
    seen = {len(x) for batch in engine.batches for x in batch}
    assert not seen & {77, 78, 99}
    assert doomed.cancelled() or doomed.exception() is not None
    dropped = metrics.dropped.labels("fake")._value.get()
    assert dropped == 3


class BrokenOnce(FakeEngine):
    """Fails to collate a batch holding a 13-token item."""

    def prepare(self, batch):  # type: ignore[no-untyped-def]
        if any(len(e) == 13 for e in batch):
            raise RuntimeError("cannot collate")
        return super().prepare(batch)


async def test_a_failing_batch_fails_its_requests_and_batching_goes_on() -> None:
    engine = BrokenOnce()
    batcher, _ = await start_batcher(engine)
    try:
        with pytest.raises(RuntimeError, match="cannot collate"):
            await batcher.submit([item(13)])
        assert (await batcher.submit([item(7)])).scores == [7.0]
    finally:
        await batcher.aclose()


@pytest.mark.parametrize("seed", range(10))
def test_select_batch_caps_the_padded_share(seed: int) -> None:
    rng = random.Random(seed)
    window = entries([rng.randint(64, 512) for _ in range(40)])
    batch = select_batch(window, 10**6, 64, max_padding_ratio=0.2)
    lengths = [len(e.item) for e in batch]
    assert window[0] in batch  # the oldest is always served
    assert sum(lengths) >= 0.8 * batch_cost(lengths, padded=True)
    uncapped = select_batch(window, 10**6, 64)
    assert len(uncapped) == 40 and len(batch) < len(uncapped)  # the cap is what split them


class SharingEngine(FakeEngine):
    """A FakeEngine that declares prefix sharing, so the batcher groups shared prefixes."""

    shared_prefix_tokens = 4
    padded = False


async def _burst(gather_s: float) -> list[list[list[int]]]:
    """8 separate requests with one 40-token prompt, sent 2 ms apart, to an idle model."""
    engine = SharingEngine()
    batcher = Batcher(engine, max_batch_tokens=1024, max_batch_requests=16,
                      max_queue_items=100, gather_s=gather_s)
    batcher.start()
    prompt = list(range(100, 140))
    try:
        tasks = []
        for i in range(8):
            tasks.append(asyncio.create_task(batcher.submit([Encoded([*prompt, i, i])])))
            await asyncio.sleep(0.002)
        results = await asyncio.gather(*tasks)
    finally:
        await batcher.aclose()
    assert [r.scores for r in results] == [[42.0]] * 8
    return engine.batches


async def test_a_burst_of_separate_requests_waits_to_share_its_prefix() -> None:
    batches = await _burst(gather_s=0.2)
    assert [len(b) for b in batches] == [8]  # one shared batch: the prompt runs once


async def test_without_a_gather_window_the_first_request_of_a_burst_runs_alone() -> None:
    batches = await _burst(gather_s=0.0)
    assert len(batches[0]) == 1 and sum(len(b) for b in batches) == 8


async def test_the_gather_window_is_off_for_engines_that_do_not_share() -> None:
    engine = FakeEngine()
    batcher = Batcher(engine, max_batch_tokens=1024, max_batch_requests=16,
                      max_queue_items=100, gather_s=5.0)
    assert batcher.gather_s == 0.0
    await batcher.aclose()

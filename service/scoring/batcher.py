"""Cross-request batcher (TEI's queue is the anchor).

Tokenized items from many requests wait in one FIFO queue. A batch is formed around the
oldest item from a length-sorted window, growing toward the neighbour that adds the least
padding, until the token budget (padded cost = longest x count) or the request cap is hit.
The model runs on the device's model threads (one on GPU; on CPU one batch per thread, see
model_workers.py); while they run, the next batch is formed and collated (one batch waits
ready). Items whose client has gone are dropped before inference.

Over 300 lines on purpose: the queue, its selection (incl. prefix groups) and the flush loop
share one lock discipline, kept in one module.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.errors import NotReady, Overloaded
from service.scoring.engines.base import Encoded, Engine
from service.scoring.engines.prefix import select_shared, shared_cost
from service.scoring.metrics import ScoringMetrics
from service.scoring.model_workers import DeviceWorkers

log = logging.getLogger("codereward.batcher")

DisconnectCheck = Callable[[], Awaitable[bool]]


@dataclass(eq=False)
class _Request:
    is_disconnected: DisconnectCheck | None
    dropped: bool = False


@dataclass(eq=False)
class _Entry:
    item: Encoded
    request: _Request
    future: asyncio.Future[tuple[float, float, float, int]]  # score, queue s, model s, batch
    enqueued: float  # perf_counter seconds


@dataclass
class BatchOutcome:
    """Scores of one submit, in order, plus its queue and model seconds."""

    scores: list[float]
    queue_s: float
    inference_s: float
    batches: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Batcher:
    """One queue and one model thread for one engine."""

    def __init__(self, engine: Engine, *, max_batch_tokens: int, max_batch_requests: int,
                 max_queue_items: int, metrics: ScoringMetrics | None = None,
                 workers: DeviceWorkers | None = None,
                 max_padding_ratio: float = 1.0, gather_s: float = 0.0) -> None:
        self.engine = engine
        # prefix-sharing engines only: a batch about to start waits this long for the rest of
        # a burst, so that a GRPO group sent as separate requests shares its prompt
        self.gather_s = gather_s if getattr(engine, "shared_prefix_tokens", 0) else 0.0
        self.max_batch_tokens = max(max_batch_tokens, engine.info.max_length)
        self.max_batch_requests = max_batch_requests
        self.max_padding_ratio = max_padding_ratio  # share of a padded batch that may be pad
        self.max_queue_items = max_queue_items
        self._window = max(4 * max_batch_requests, 256)  # queued items considered per batch
        self._metrics = metrics
        self._label = engine.info.name
        self._queue: list[_Entry] = []
        self._queued_tokens = 0
        self._wake = asyncio.Event()
        # the device's model threads: the registry shares them between models on a device
        self._owns_workers = workers is None
        self._workers = workers or DeviceWorkers(self._label)
        self._task: asyncio.Task[None] | None = None
        self._batch_ids = itertools.count()
        self._closed = False

    def start(self) -> None:
        """Start the batching task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    def queued(self) -> int:
        """Items waiting for a batch."""
        return len(self._queue)

    async def submit(self, items: Sequence[Encoded],
                     is_disconnected: DisconnectCheck | None = None) -> BatchOutcome:
        """Queue items and wait for their scores; 429 when the queue is over its limit."""
        if self._closed or self._task is None:
            raise NotReady("model is not serving (starting or shutting down)")
        if len(self._queue) + len(items) > self.max_queue_items:
            raise Overloaded(f"scoring queue full ({len(self._queue)} items waiting)")
        request = _Request(is_disconnected)
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        entries = [_Entry(item, request, loop.create_future(), now) for item in items]
        self._queue.extend(entries)
        self._queued_tokens += sum(len(e.item) for e in entries)
        self._gauge()
        self._wake.set()
        try:
            results = await asyncio.gather(*(e.future for e in entries))
        except BaseException:
            request.dropped = True  # cancelled or failed: nothing else of it should run
            for entry in entries:
                entry.future.cancel()
            raise
        inference = {batch: model_s for _, _, model_s, batch in results}
        return BatchOutcome(scores=[r[0] for r in results],
                            queue_s=max((r[1] for r in results), default=0.0),
                            inference_s=sum(inference.values()), batches=len(inference))

    async def aclose(self) -> None:
        """Stop batching; waiting requests get 503."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for entry in self._queue:
            if not entry.future.done():
                entry.future.set_exception(NotReady("model is shutting down"))
        self._queue.clear()
        if self._owns_workers:
            await asyncio.to_thread(self._workers.shutdown)

    # --- the batching task ---

    async def _run(self) -> None:
        inflight: set[asyncio.Task[None]] = set()  # batches running on the model threads
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if len(inflight) >= self._workers.workers:
                await self._wait_fill_or_done(inflight)
            elif self.gather_s and not self._full_batch_queued():
                # the oldest item waits at most gather_s in all for the rest of its burst
                left = self._queue[0].enqueued + self.gather_s - time.perf_counter()
                if left > 0:
                    await asyncio.sleep(left)
            batch = await self._form()
            if not batch:
                continue
            try:
                await self._hand_off(batch, inflight)
            except Exception as exc:  # never let one bad batch stop the batching task
                log.exception("batch preparation failed", extra={"model": self._label})
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(exc)

    async def _hand_off(self, batch: list[_Entry], inflight: set[asyncio.Task[None]]) -> None:
        """Collate while the model runs, then start the batch when a model thread is free."""
        prepared = await asyncio.to_thread(self.engine.prepare, [e.item for e in batch])
        while len(inflight) >= self._workers.workers:  # one batch waits ready, no more
            done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            inflight -= done
        live = [e for e in batch if self._alive(e)]
        if len(live) < len(batch):
            self._count_dropped(len(batch) - len(live))
            if not live:
                return
            prepared = await asyncio.to_thread(self.engine.prepare, [e.item for e in live])
        task = asyncio.create_task(self._infer(live, prepared))
        inflight.add(task)
        task.add_done_callback(inflight.discard)

    async def _wait_fill_or_done(self, inflight: set[asyncio.Task[None]]) -> None:
        """While every model thread is busy, wait until one is done or a full batch is queued."""
        while (inflight and not any(t.done() for t in inflight)
               and not self._full_batch_queued()):
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({*inflight, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    def _full_batch_queued(self) -> bool:
        return (len(self._queue) >= self.max_batch_requests
                or self._queued_tokens >= self.max_batch_tokens)

    async def _form(self) -> list[_Entry]:
        """Select a batch, drop entries of disconnected clients, and dequeue it."""
        while True:
            self._remove([e for e in self._queue if not self._alive(e)], dropped=True)
            if not self._queue:
                return []
            batch = self._select(self._queue[:self._window])
            gone = [r for r in {e.request for e in batch} if await _disconnected(r)]
            if not gone:
                self._remove(batch)
                return batch
            for request in gone:
                request.dropped = True

    def _select(self, window: Sequence[_Entry]) -> list[_Entry]:
        # engines that share prefixes: the oldest item's prefix group first, tokens counted once
        min_shared = getattr(self.engine, "shared_prefix_tokens", 0)
        if min_shared:
            picked = select_shared([e.item for e in window], self.max_batch_tokens,
                                   self.max_batch_requests, min_shared,
                                   padded=self.engine.padded)
            if picked is not None:
                return [window[i] for i in picked]
        return select_batch(window, self.max_batch_tokens, self.max_batch_requests,
                            padded=self.engine.padded, max_padding_ratio=self.max_padding_ratio)

    def _remove(self, entries: Sequence[_Entry], *, dropped: bool = False) -> None:
        if not entries:
            return
        ids = {id(e) for e in entries}
        self._queue = [e for e in self._queue if id(e) not in ids]
        self._queued_tokens -= sum(len(e.item) for e in entries)
        if dropped:
            self._count_dropped(len(entries))
            for entry in entries:
                entry.future.cancel()
        self._gauge()

    async def _infer(self, batch: list[_Entry], prepared: Any) -> None:
        loop = asyncio.get_running_loop()
        batch_id = next(self._batch_ids)
        start = time.perf_counter()
        try:
            scores = await loop.run_in_executor(self._workers.executor, self._workers.call,
                                                self.engine.run, prepared)
        except Exception as exc:
            log.exception("model call failed", extra={"model": self._label, "size": len(batch)})
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        model_s = time.perf_counter() - start
        for entry, score in zip(batch, scores, strict=True):
            if not entry.future.done():
                entry.future.set_result((score, start - entry.enqueued, model_s, batch_id))
        self._observe(batch, model_s)

    def _observe(self, batch: Sequence[_Entry], model_s: float) -> None:
        if self._metrics is None:
            return
        m, label = self._metrics, self._label
        real = sum(len(e.item) for e in batch)
        min_shared = getattr(self.engine, "shared_prefix_tokens", 0)
        padded = (shared_cost([e.item for e in batch], min_shared, padded=self.engine.padded)
                  if min_shared else
                  batch_cost([len(e.item) for e in batch], padded=self.engine.padded))
        m.batch_size.labels(label).observe(len(batch))
        m.batch_tokens.labels(label).observe(padded)
        m.padding_ratio.labels(label).observe(max(0.0, 1.0 - real / padded) if padded else 0.0)
        m.model_time.labels(label).observe(model_s)

    def _alive(self, entry: _Entry) -> bool:
        return not entry.request.dropped and not entry.future.done()

    def _count_dropped(self, n: int) -> None:
        if self._metrics is not None and n:
            self._metrics.dropped.labels(self._label).inc(n)

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.labels(self._label).set(len(self._queue))


async def _disconnected(request: _Request) -> bool:
    if request.dropped:
        return True
    if request.is_disconnected is None:
        return False
    try:
        return await request.is_disconnected()
    except Exception:  # a broken transport counts as gone
        return True


def batch_cost(lengths: Sequence[int], *, padded: bool) -> int:
    """Tokens a batch costs: longest x count when padded, else the sum."""
    if not lengths:
        return 0
    return max(lengths) * len(lengths) if padded else sum(lengths)


def select_batch(window: Sequence[_Entry], max_tokens: int, max_requests: int, *,
                 padded: bool = True, max_padding_ratio: float = 1.0) -> list[_Entry]:
    """The oldest entry plus its length-sorted neighbours that add the least padding.

    `max_padding_ratio` caps the padded share of the batch: on CPU a batch costs its padded
    tokens and batching buys little, so mixed lengths are better served in several batches.
    """
    ordered = sorted(window, key=lambda e: len(e.item))  # stable: FIFO among equal lengths
    pivot = ordered.index(window[0])
    lo = hi = pivot
    longest = len(window[0].item)
    total = longest
    count = 1
    while count < max_requests:
        options: list[tuple[int, int]] = []  # (padding added, direction)
        if lo > 0:
            options.append((longest - len(ordered[lo - 1].item) if padded else 0, -1))
        if hi + 1 < len(ordered):
            grow = len(ordered[hi + 1].item)
            options.append(((grow - longest) * count if padded else 0, +1))
        taken = False
        for _, direction in sorted(options):
            cand = len(ordered[lo - 1 if direction < 0 else hi + 1].item)
            new_longest = max(longest, cand)
            cost = new_longest * (count + 1) if padded else total + cand
            pad_ok = not padded or total + cand >= (1.0 - max_padding_ratio) * cost
            if cost <= max_tokens and pad_ok:
                lo, hi = (lo - 1, hi) if direction < 0 else (lo, hi + 1)
                longest, total, count = new_longest, total + cand, count + 1
                taken = True
                break
        if not taken:
            break
    return ordered[lo:hi + 1]

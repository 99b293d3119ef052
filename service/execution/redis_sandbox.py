"""RedisSandbox: jobs go onto a Redis stream for `python -m sandbox_worker` processes.

The wire layout and its atomic scripts are in sandbox_worker/queue.py. This process owns one
reply list; a listener task pops result envelopes from it (BRPOP, no polling) and resolves the
futures of every request waiting for that job id. Identical jobs share one future here and one
stream entry across replicas (claim key). After a lost connection, and every `_SWEEP_S`, the
jobs still awaited are submitted again: the submit script is idempotent (cache hit, join, or
re-queue only when the job is no longer claimed), so a Redis restart loses no request.

Over 300 lines on purpose: submit, listen, re-submit and readiness share the waiters table
and the connection state; kept together so recovery can be read in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from sandbox_worker.protocol import Job, JobEnvelope, JobResult, ResultEnvelope
from sandbox_worker.queue import SUBMIT_LUA, QueueKeys
from service.config import Settings
from service.errors import DeadlineExceeded, NotReady, Overloaded, ServiceError, Unprocessable
from service.execution.sandbox import record_results
from service.metrics import Metrics

log = logging.getLogger("codereward.sandbox.redis")

_BLOCK_S = 1  # BRPOP timeout (seconds): how often the listener notices close()
_SWEEP_S = 10.0  # re-submit jobs awaited longer than this, every this many seconds
_CLAIM_MARGIN_S = 60  # a claim outlives the request deadline by this (seconds)
_OUTCOMES = {0: "joined", 1: "queued", 2: "cached", 3: "refused"}  # SUBMIT_LUA reply codes


class _Wait:
    """One job this process awaits; shared by every request that asks for it."""

    __slots__ = ("future", "job", "refs", "since")

    def __init__(self, future: asyncio.Future[JobResult], job: Job) -> None:
        self.future = future
        self.job = job
        self.refs = 0
        self.since = time.monotonic()


class RedisSandbox:
    """SandboxBackend over Redis Streams and a fleet of sandbox workers."""

    def __init__(self, url: str, *, metrics: Metrics, prefix: str = "codereward",
                 max_in_flight: int = 10000, max_stream_length: int = 100_000,
                 timeout_s: float = 5.0, ready_timeout_s: float = 0.5) -> None:
        self._keys = QueueKeys(prefix)
        self._token = uuid.uuid4().hex
        self._reply = self._keys.reply(self._token)
        self._redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        # no retries: the listener must see a dropped connection to re-submit what it awaits
        self._listen_redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=_BLOCK_S + timeout_s,
            socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))
        self._ping_redis = aioredis.Redis.from_url(
            url, socket_timeout=ready_timeout_s, socket_connect_timeout=ready_timeout_s,
            retry=Retry(NoBackoff(), 0))
        self._submit = self._redis.register_script(SUBMIT_LUA)
        self._ready_timeout_s = ready_timeout_s
        self._max_in_flight = max_in_flight
        self._max_stream_length = max_stream_length
        self._waits: dict[str, _Wait] = {}
        self._in_flight = 0
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._fleet = {"workers": "unknown", "isolation": "unknown"}
        self._languages: dict[str, str] | None = None
        self._metrics = metrics
        r = metrics.registry
        self.submits = Counter("codereward_sandbox_queue_submits_total",
                               "unique jobs submitted to Redis, by outcome (queued; joined: "
                               "already queued; cached: from the cache; refused: queue full)",
                               ["outcome"], registry=r)
        self.cache_hits = Counter("codereward_sandbox_cache_hits_total",
                                  "jobs answered from the result cache", registry=r)
        self.redis_errors = Counter("codereward_sandbox_redis_errors_total",
                                    "failed Redis calls (connection or timeout)", registry=r)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> RedisSandbox:
        """Build from service settings (needs `redis_url`)."""
        if not settings.redis_url:
            raise ValueError("RedisSandbox needs CODEREWARD_REDIS_URL")
        return cls(settings.redis_url, metrics=metrics, prefix=settings.queue_prefix,
                   max_in_flight=settings.max_sandbox_queue,
                   max_stream_length=settings.queue_max_length,
                   timeout_s=settings.redis_timeout_s,
                   ready_timeout_s=settings.redis_ready_timeout_s)

    async def execute(self, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        if self._closed:
            raise NotReady("sandbox backend is shutting down")
        if not jobs:
            return []
        if self._in_flight + len(jobs) > self._max_in_flight:
            raise Overloaded(f"sandbox queue full ({self._in_flight} programs in flight)",
                             retry_after_s=2)
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="redis-sandbox-listener")
        self._in_flight += len(jobs)
        self._metrics.sandbox_in_flight.inc(len(jobs))
        start = time.perf_counter()
        try:
            async with asyncio.timeout(deadline_s):
                results = await self._gather(jobs, int(deadline_s) + _CLAIM_MARGIN_S)
        except TimeoutError as exc:
            raise DeadlineExceeded(f"execution did not finish within {deadline_s:.1f}s") from exc
        finally:
            self._in_flight -= len(jobs)
            self._metrics.sandbox_in_flight.dec(len(jobs))
            self._metrics.sandbox_duration.observe(time.perf_counter() - start)
        record_results(self._metrics, results)
        return results

    async def _gather(self, jobs: Sequence[Job], claim_ttl_s: int) -> list[JobResult]:
        try:
            ids = [job.job_id() for job in jobs]
        except UnicodeEncodeError as exc:  # lone surrogates (JSON "\ud800") have no UTF-8
            raise Unprocessable("code and tests must be valid Unicode text") from exc
        mine: dict[str, _Wait] = {}
        new: list[str] = []
        loop = asyncio.get_running_loop()
        for job_id, job in zip(ids, jobs, strict=True):
            if job_id in mine:
                continue
            wait = self._waits.get(job_id)
            if wait is None or (wait.future.done() and wait.future.exception() is not None):
                # a failed submission is not reused: this request tries again
                wait = self._waits[job_id] = _Wait(loop.create_future(), job)
                new.append(job_id)
            wait.refs += 1
            mine[job_id] = wait
        try:
            if new:
                await self._submit_new(new, claim_ttl_s)
            # asyncio.wait never cancels the shared futures when this request times out
            await asyncio.wait([w.future for w in mine.values()])
            return [mine[job_id].future.result() for job_id in ids]
        finally:
            for job_id, wait in mine.items():
                wait.refs -= 1
                if wait.refs == 0 and self._waits.get(job_id) is wait:
                    del self._waits[job_id]

    async def _submit_new(self, new: list[str], claim_ttl_s: int) -> None:
        try:
            refused = await self._submit_many(new, claim_ttl_s, self._max_stream_length)
        except (RedisError, OSError) as exc:
            self.redis_errors.inc()
            down = NotReady(f"sandbox queue unreachable: {type(exc).__name__}")
            self._fail(new, down)
            raise down from None
        if refused:
            full = Overloaded(f"sandbox queue full (over {self._max_stream_length} jobs)",
                              retry_after_s=5)
            self._fail(refused, full)
            raise full

    def _fail(self, ids: list[str], exc: ServiceError) -> None:
        """Requests sharing these jobs fail the same way, at once."""
        for job_id in ids:
            fut = self._waits[job_id].future
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: the caller raises it itself

    async def _submit_many(self, ids: list[str], claim_ttl_s: int,
                           max_stream_length: int = 0) -> list[str]:
        """Run the idempotent submit script for each job in one round trip; ids refused."""
        now = time.time()
        jobs = {job_id: self._waits[job_id].job for job_id in ids if job_id in self._waits}
        k = self._keys
        envs = [JobEnvelope(job_id=job_id, job=job, enqueued_at=now).model_dump_json()
                for job_id, job in jobs.items()]
        for attempt in (1, 2):  # a pooled connection may be stale after a Redis restart
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for job_id, env in zip(jobs, envs, strict=True):
                        await self._submit(
                            keys=[k.result(job_id), k.claim(job_id), k.waiters(job_id),
                                  k.stream],
                            args=[self._reply, claim_ttl_s, env, self._token,
                                  max_stream_length],
                            client=pipe)
                    replies: list[Any] = await pipe.execute()
                break
            except RedisConnectionError:  # the script is idempotent: resending is safe
                if attempt == 2:
                    raise
        refused = []
        for job_id, (code, payload) in zip(jobs, replies, strict=True):
            outcome = _OUTCOMES[int(code)]
            self.submits.labels(outcome).inc()
            if outcome == "cached":
                self.cache_hits.inc()
                self._deliver(payload)
            elif outcome == "refused":
                refused.append(job_id)
        return refused

    def _deliver(self, payload: str) -> None:
        try:
            env = ResultEnvelope.model_validate_json(payload)
        except ValidationError as exc:
            log.error("dropping a malformed result envelope: %s", exc)
            return
        wait = self._waits.get(env.job_id)
        if wait is not None and not wait.future.done():
            wait.future.set_result(env.result)

    async def _listen(self) -> None:
        """Pop result envelopes from our reply list and wake the requests waiting on them."""
        delay, lost, last_sweep = 0.1, False, time.monotonic()
        while not self._closed:
            try:
                item: Any = await self._listen_redis.brpop([self._reply], timeout=_BLOCK_S)
                if item is not None:
                    more: Any = await self._listen_redis.rpop(self._reply, 1024)
                    for payload in [item[1], *(more or [])]:
                        self._deliver(payload)
                now = time.monotonic()
                if lost or now - last_sweep > _SWEEP_S:
                    if lost:
                        log.info("Redis reachable again: re-submitting awaited jobs")
                    await self._resubmit(now - (0 if lost else _SWEEP_S))
                    lost, last_sweep = False, now
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.redis_errors.inc()
                if not lost:
                    log.warning("lost the Redis connection: %s", exc)
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                log.exception("result listener fault")
                await asyncio.sleep(1)

    async def _resubmit(self, older_than: float) -> None:
        ids = [job_id for job_id, w in self._waits.items()
               if not w.future.done() and w.since <= older_than]
        for start in range(0, len(ids), 512):
            await self._submit_many(ids[start:start + 512], _CLAIM_MARGIN_S * 2)

    async def ready(self) -> bool:
        """Redis answers a ping within `ready_timeout_s` (workers may be scaling from zero)."""
        if self._closed:
            return False
        try:
            async with asyncio.timeout(self._ready_timeout_s):
                pipe = self._ping_redis.pipeline(transaction=False)
                pipe.ping()
                pipe.hgetall(self._keys.fleet)
                _, fleet = await pipe.execute()
                gone = self._note_fleet(fleet)
                if gone:  # workers killed without leaving: forget them
                    await self._ping_redis.hdel(self._keys.fleet, *gone)
        except (RedisError, OSError, TimeoutError):
            return False
        return True

    def _note_fleet(self, fleet: dict[bytes, bytes]) -> list[bytes]:
        """Remember live workers and their isolation levels; names long dead are returned."""
        now, alive, levels, gone = time.time(), 0, set(), []
        langs: dict[str, str] = {}
        for name, raw in fleet.items():
            try:
                beat = json.loads(raw)
                age, ttl = now - float(beat["ts"]), float(beat["ttl_s"])
            except (ValueError, KeyError, TypeError):
                gone.append(name)
                continue
            if age <= ttl:
                alive += 1
                levels.add(str(beat.get("isolation", "unknown")))
                found = beat.get("languages")
                if isinstance(found, dict):
                    langs.update({str(k): str(v) for k, v in found.items()})
            elif age > 10 * ttl:
                gone.append(name)
        self._fleet = {"workers": str(alive), "isolation": ",".join(sorted(levels)) or "unknown",
                       "languages": ",".join(sorted(langs))}
        self._languages = langs or None
        return gone

    def describe(self) -> dict[str, str]:
        """Backend, stream, and (as of the last readiness check) live workers and isolation."""
        return {"backend": "redis", "stream": self._keys.stream, **self._fleet}

    def languages(self) -> dict[str, str] | None:
        """What the live workers announced (their union), as of the last readiness check."""
        return self._languages

    async def aclose(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        for wait in self._waits.values():
            if not wait.future.done():
                wait.future.set_exception(NotReady("sandbox backend closed"))
                wait.future.exception()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._reply)
        for client in (self._redis, self._listen_redis, self._ping_redis):
            await client.aclose()  # type: ignore[union-attr]  # stubs predate aclose

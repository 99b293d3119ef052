"""The Redis worker loop: read jobs from the stream, run them, store results, then ack.

Over 300 lines on purpose: reading, claiming, running and acking share one lock and one
Redis connection; split, the no-job-lost invariants would span modules.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import ValidationError

from sandbox_worker import languages
from sandbox_worker.config import WorkerSettings
from sandbox_worker.protocol import (
    EXECUTOR_VERSION,
    Job,
    JobEnvelope,
    JobResult,
    ResultEnvelope,
    RunStatus,
)
from sandbox_worker.queue import FIELD, GROUP, REPLY_TTL_S, STORE_LUA, QueueKeys, entry_time_s

log = logging.getLogger("codereward.worker")

# Seconds; run times span sub-millisecond programs to many tests at their time limit.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class Runner(Protocol):
    """What runs a job: the Executor, or a stand-in in unit tests."""

    def run(self, job: Job) -> JobResult: ...

    def healthy(self) -> bool: ...


class WorkerMetrics:
    """Prometheus metrics of one worker process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.jobs = Counter("codereward_worker_jobs_total",
                            "jobs answered, by submission status", ["status"], registry=r)
        self.cache_hits = Counter("codereward_worker_cache_hits_total",
                                  "jobs answered from the result cache, not run", registry=r)
        self.reclaimed = Counter("codereward_worker_reclaimed_total",
                                 "jobs taken over from a dead worker", registry=r)
        self.poisoned = Counter("codereward_worker_poisoned_total",
                                "jobs answered `killed` after max_attempts deliveries",
                                registry=r)
        self.redis_errors = Counter("codereward_worker_redis_errors_total",
                                    "Redis calls that failed (connection or timeout)", registry=r)
        self.run_seconds = Histogram("codereward_worker_run_seconds",
                                     "executor time per job", buckets=_BUCKETS, registry=r)
        self.queue_lag = Histogram("codereward_worker_queue_lag_seconds",
                                   "time from enqueue to start", buckets=_BUCKETS, registry=r)
        self.busy = Gauge("codereward_worker_busy_jobs", "jobs running now", registry=r)


class Worker:
    """One consumer of the job stream, running up to `sandbox_workers` jobs at once."""

    def __init__(self, settings: WorkerSettings, runner: Runner, client: redis.Redis[str],
                 metrics: WorkerMetrics | None = None) -> None:
        self._s = settings
        self._runner = runner
        self._r = client
        self._keys = QueueKeys(settings.queue_prefix)
        self._store = client.register_script(STORE_LUA)
        self._pool = ThreadPoolExecutor(settings.sandbox_workers, thread_name_prefix="job")
        self._cond = threading.Condition()
        self._running: dict[str, str] = {}  # stream entry id -> job id
        self._stop = threading.Event()
        self._done = threading.Event()
        self._claim_cursor = "0-0"
        self.metrics = metrics or WorkerMetrics()
        self.name = settings.worker_name

    def stop(self) -> None:
        """Take no new jobs; run() returns once the running ones are answered (signal-safe)."""
        self._stop.set()

    def run(self) -> bool:
        """Serve until stop(), then drain; False when it stopped on an unhealthy executor."""
        log.info("worker started", extra={"worker": self.name, "slots": self._s.sandbox_workers})
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        backoff, next_claim, group_ok, healthy = 0.1, 0.0, False, True
        while not self._stop.is_set():
            free = self._free_slots()
            if free == 0:
                continue
            if not self._runner.healthy():
                log.error("executor unhealthy: stopping so the orchestrator restarts us")
                healthy = False
                break
            try:
                if not group_ok:
                    self._ensure_group()
                    group_ok = True
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self._s.claim_idle_s / 4
                    if self._claim(free):
                        continue
                self._read(free)
                backoff = 0.1
            except redis.ResponseError as exc:
                group_ok = False
                if "NOGROUP" in str(exc):
                    log.warning("consumer group missing (Redis restarted?): recreating it")
                    continue
                self.metrics.redis_errors.inc()  # e.g. OOM: back off instead of dying
                log.error("Redis refused: %s; retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except _REDIS_DOWN as exc:
                self.metrics.redis_errors.inc()
                log.warning("Redis unreachable: %s; retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                group_ok = False
        log.info("draining", extra={"worker": self.name, "running": len(self._running)})
        self._pool.shutdown(wait=True)
        self._done.set()
        beat.join(timeout=5)
        self._leave()
        log.info("worker stopped", extra={"worker": self.name})
        return healthy

    # --- reading ---

    def _free_slots(self) -> int:
        with self._cond:
            while len(self._running) >= self._s.sandbox_workers and not self._stop.is_set():
                self._cond.wait(0.5)
            return 0 if self._stop.is_set() else self._s.sandbox_workers - len(self._running)

    def _ensure_group(self) -> None:
        try:
            # id 0: entries queued before the group existed are delivered too
            self._r.xgroup_create(self._keys.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, count: int) -> None:
        reply: Any = self._r.xreadgroup(GROUP, self.name, {self._keys.stream: ">"},
                                        count=count, block=int(self._s.read_block_s * 1000))
        for _stream, entries in reply or []:
            if self._stop.is_set():  # SIGTERM came during the blocking read: hand them back
                self._requeue(entries)
                continue
            for entry_id, fields in entries:
                self._dispatch(entry_id, fields)

    def _requeue(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Put entries we will not run back at the stream's tail, with a fresh delivery count."""
        pipe = self._r.pipeline(transaction=True)
        for entry_id, fields in entries:
            pipe.xadd(self._keys.stream, fields)  # type: ignore[arg-type]
            pipe.xack(self._keys.stream, GROUP, entry_id)
            pipe.xdel(self._keys.stream, entry_id)
        pipe.execute()
        log.info("draining: returned %d unstarted jobs to the queue", len(entries))

    def _claim(self, count: int) -> bool:
        """Take over jobs idle past claim_idle_s (their worker died); True if any."""
        reply: Any = self._r.xautoclaim(
            self._keys.stream, GROUP, self.name, int(self._s.claim_idle_s * 1000),
            start_id=self._claim_cursor, count=count)
        self._claim_cursor = reply[0]
        for entry_id, fields in reply[1]:
            info: Any = self._r.xpending_range(self._keys.stream, GROUP, min=entry_id,
                                               max=entry_id, count=1)
            delivered = int(info[0]["times_delivered"]) if info else 1
            log.warning("took over a job from a dead worker",
                        extra={"entry": entry_id, "deliveries": delivered})
            self.metrics.reclaimed.inc()
            self._dispatch(entry_id, fields, delivered=delivered)
        return bool(reply[1])

    def _dispatch(self, entry_id: str, fields: dict[str, str] | None, delivered: int = 1) -> None:
        try:
            env = JobEnvelope.model_validate_json((fields or {})[FIELD])
        except (KeyError, ValidationError) as exc:
            log.error("dropping a malformed stream entry %s: %s", entry_id, exc)
            self._r.xack(self._keys.stream, GROUP, entry_id)  # type: ignore[no-untyped-call]
            self._r.xdel(self._keys.stream, entry_id)
            return
        if env.executor_version != EXECUTOR_VERSION:
            log.warning("job from executor version %s run by version %s",
                        env.executor_version, EXECUTOR_VERSION)
        with self._cond:
            self._running[entry_id] = env.job_id
            self.metrics.busy.set(len(self._running))
        self._pool.submit(self._process, entry_id, env, delivered)

    # --- running and answering ---

    def _process(self, entry_id: str, env: JobEnvelope, delivered: int) -> None:
        try:
            self.metrics.queue_lag.observe(max(0.0, time.time() - entry_time_s(entry_id)))
            payload = self._cached(env.job_id)
            if payload is not None:
                self.metrics.cache_hits.inc()
            else:
                payload = self._execute(env, delivered).model_dump_json()
            self._store_result(env.job_id, entry_id, payload)
        except Exception:
            # left pending: another delivery retries it, bounded by max_attempts
            log.exception("job %s failed in the worker", env.job_id)
        finally:
            with self._cond:
                self._running.pop(entry_id, None)
                self.metrics.busy.set(len(self._running))
                self._cond.notify_all()

    def _execute(self, env: JobEnvelope, delivered: int) -> ResultEnvelope:
        if delivered > self._s.max_attempts:
            self.metrics.poisoned.inc()
            log.error("poison job: its worker died %d times; answering killed", delivered - 1,
                      extra={"job_id": env.job_id})
            result = JobResult.unrun(
                RunStatus.KILLED, env.job.n_tests(),
                error=f"the worker running this program died {delivered - 1} times")
            run_s = 0.0
        else:
            start = time.perf_counter()
            result = self._runner.run(env.job)
            run_s = time.perf_counter() - start
            self.metrics.run_seconds.observe(run_s)
        self.metrics.jobs.labels(result.status.value).inc()
        return ResultEnvelope(job_id=env.job_id, result=result, worker=self.name, run_s=run_s)

    def _cached(self, job_id: str) -> str | None:
        try:
            value: Any = self._r.get(self._keys.result(job_id))
            return None if value is None else str(value)
        except _REDIS_DOWN:
            return None

    def _store_result(self, job_id: str, entry_id: str, payload: str) -> None:
        """Store, wake waiters, then ack (one atomic script); retry while Redis is down."""
        k = self._keys
        keys = [k.result(job_id), k.claim(job_id), k.waiters(job_id), k.stream, k.cache_index]
        args = [payload, self._s.cache_ttl_s, GROUP, entry_id, job_id, f"{time.time():.3f}",
                self._s.cache_max_entries, REPLY_TTL_S, k.result_prefix]
        deadline = time.monotonic() + self._s.store_retry_s
        delay = 0.1
        while True:
            try:
                self._store(keys=keys, args=args)
                return
            except _REDIS_DOWN as exc:
                self.metrics.redis_errors.inc()
                if time.monotonic() > deadline:
                    log.error("result of %s not stored, Redis down: %s", job_id, exc)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    # --- liveness ---

    def _heartbeat_loop(self) -> None:
        """Announce liveness and keep our running entries from looking idle (no steal)."""
        ttl = max(1, int(self._s.worker_heartbeat_s * 3 + 1))
        toolchains = languages.available()  # once: version probes run a subprocess each
        wait = 0.0  # first beat at once, so a fresh worker is visible immediately
        while not self._done.wait(wait):
            wait = self._s.worker_heartbeat_s
            with self._cond:
                running = list(self._running)
            beat = json.dumps({
                "pid": os.getpid(), "busy": len(running), "slots": self._s.sandbox_workers,
                "draining": self._stop.is_set(), "ts": time.time(), "ttl_s": ttl,
                "isolation": str(getattr(self._runner, "isolation", "unknown")),
                "languages": toolchains,
                "memory_bound": str(getattr(self._runner, "memory_bound", "unknown")),
                "cpu_bound": str(getattr(self._runner, "cpu_bound", "unknown"))})
            try:
                pipe = self._r.pipeline(transaction=False)
                pipe.set(self._keys.worker(self.name), beat, ex=ttl)
                pipe.hset(self._keys.fleet, self.name, beat)
                pipe.execute()
                if running:  # JUSTID: resets idle time without counting a delivery
                    self._r.xclaim(self._keys.stream, GROUP, self.name, 0, running, justid=True)  # type: ignore[no-untyped-call]
            except redis.RedisError as exc:
                log.debug("heartbeat failed: %s", exc)

    def _leave(self) -> None:
        """Remove our heartbeat and, when nothing is pending on us, our consumer entry."""
        try:
            self._r.delete(self._keys.worker(self.name))
            self._r.hdel(self._keys.fleet, self.name)
            mine: Any = self._r.xpending_range(self._keys.stream, GROUP, "-", "+", 1,
                                               consumername=self.name)
            if not mine:
                self._r.xgroup_delconsumer(self._keys.stream, GROUP, self.name)  # type: ignore[no-untyped-call]
        except redis.RedisError as exc:
            log.debug("could not leave the group cleanly: %s", exc)

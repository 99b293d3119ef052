"""The Redis wire layout shared by the service and the workers: keys, stream, atomic scripts.

Why Redis Streams with one consumer group (and not a plain list with BRPOPLPUSH):
- a delivered entry stays in the group's pending list (PEL) until XACK, owned by a named
  consumer, with an idle time and a delivery count kept by Redis itself; a worker killed with
  `kill -9` therefore leaves its jobs pending, and any other worker takes them over with
  XAUTOCLAIM once they have been idle for `claim_idle_s`; the delivery count bounds retries
  of a job that kills its worker (poison handling) without any bookkeeping of our own;
- live workers re-claim their running entries on every heartbeat (XCLAIM JUSTID, which does
  not count as a delivery), so a long program is never stolen from a healthy worker and the
  idle timeout can stay short whatever the per-test limits are;
- XREADGROUP blocks, so idle workers cost nothing, and the stream length (XLEN, entries are
  XDEL'd once answered) is the backlog the service uses for backpressure.

Results: `result:<job_id>` holds a ResultEnvelope (JSON) with a TTL; `results` is a sorted set
(score = unix seconds written) that caps the cache at `cache_max_entries` (oldest written go
first). One Lua script stores the result, wakes every waiting service (LPUSH of the envelope
onto each reply list named in `waiters:<job_id>`), then XACKs: the ack never precedes the
store, and a waiter can never miss its wake-up because registration (SUBMIT) and store (STORE)
are each atomic. `claim:<job_id>` (SET NX) makes a job submitted twice concurrently, from any
number of service replicas, enter the stream once.

Keys built inside the scripts (reply lists, evicted results) are not declared in KEYS, so this
layout targets a single Redis (or a primary with replicas), not Redis Cluster. Needs Redis
>= 6.2 (XAUTOCLAIM, RPOP with a count); run it with `maxmemory-policy noeviction` (the cache is
bounded by cache_max_entries, not by eviction, which could drop queued jobs).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"
# A reply list outlives a dead service process by this long (seconds), then Redis drops it.
REPLY_TTL_S = 600
# Stream entry field that carries the JobEnvelope JSON.
FIELD = "job"


@dataclass(frozen=True)
class QueueKeys:
    """Key names under one prefix (several deployments can share a Redis)."""

    prefix: str = "codereward"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def cache_index(self) -> str:
        return f"{self.prefix}:results"

    @property
    def result_prefix(self) -> str:
        return f"{self.prefix}:result:"

    def result(self, job_id: str) -> str:
        return f"{self.prefix}:result:{job_id}"

    def claim(self, job_id: str) -> str:
        return f"{self.prefix}:claim:{job_id}"

    def waiters(self, job_id: str) -> str:
        return f"{self.prefix}:waiters:{job_id}"

    def reply(self, token: str) -> str:
        return f"{self.prefix}:reply:{token}"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    @property
    def fleet(self) -> str:
        """Hash: worker name -> its last heartbeat (JSON with ts and ttl_s), for discovery."""
        return f"{self.prefix}:workers"


# SUBMIT: KEYS result, claim, waiters, stream; ARGV reply list, claim ttl (s), envelope, token,
# max stream length (0: no limit). Returns {2, cached envelope} on a cache hit, {1, ""} when
# queued, {0, ""} when the job is already queued or running (this caller just waits for it),
# {3, ""} when it would have to be queued but the stream is full (cache hits and joins still
# succeed on a full queue).
SUBMIT_LUA = """
local cached = redis.call('GET', KEYS[1])
if cached then return {2, cached} end
local limit = tonumber(ARGV[5])
if limit > 0 and redis.call('EXISTS', KEYS[2]) == 0
   and redis.call('XLEN', KEYS[4]) >= limit then
  return {3, ''}
end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[2])
if redis.call('SET', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[4], '*', 'job', ARGV[3])
  return {1, ''}
end
return {0, ''}
"""

# STORE: KEYS result, claim, waiters, stream, cache index;
# ARGV result envelope, cache ttl (s), group, entry id ('' when none), job id, now (unix s),
# cache max entries, reply ttl (s), result key prefix. Returns the number of waiters woken.
STORE_LUA = """
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[6]) - ttl)
local over = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[7])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[5], over)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[9] .. old[i]) end
end
local waiters = redis.call('SMEMBERS', KEYS[3])
for _, reply in ipairs(waiters) do
  redis.call('LPUSH', reply, ARGV[1])
  redis.call('EXPIRE', reply, ARGV[8])
end
redis.call('DEL', KEYS[3], KEYS[2])
if ARGV[4] ~= '' then
  redis.pcall('XACK', KEYS[4], ARGV[3], ARGV[4])
  redis.pcall('XDEL', KEYS[4], ARGV[4])
end
return #waiters
"""


def entry_time_s(entry_id: str) -> float:
    """Unix seconds at which Redis added a stream entry (its id is `<ms>-<seq>`)."""
    return int(entry_id.split("-", 1)[0]) / 1000.0

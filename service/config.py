"""Service settings: every limit is a setting (env `CODEREWARD_*` or a `.env` file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(os.path.expanduser("~/.cache/codereward"))


class Settings(BaseSettings):
    """All service configuration. Names are part of the API contract (API.md)."""

    model_config = SettingsConfigDict(
        env_prefix="CODEREWARD_", env_file=".env", extra="ignore", frozen=True
    )

    # --- listening and process ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    # production refuses to start without namespace isolation unless allow_unisolated is set
    production: bool = False
    allow_unisolated: bool = False
    allow_unbounded_memory: bool = False  # production without an aggregate memory bound
    # after SIGTERM: /readyz 503, new API requests 503, in-flight ones get this long (seconds)
    shutdown_grace_s: float = Field(default=25.0, gt=0)
    access_log: bool = True  # one JSON line per request, with its request id
    warmup: bool = True  # run a tiny batch through each model at start, before /readyz is 200

    # --- models ---
    # "name=path[,name=path...]"; first is the default. "none": no model (execution only)
    models: str | None = None
    home: Path = Field(default_factory=_default_home)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    backend: Literal["auto", "torch", "vllm"] = "auto"
    # int8: likelihood models on CPU through their CTranslate2 conversion; auto takes it on CPU
    # where it was measured as accurate as fp32 and PREFIX_SHARING is not "on"
    dtype: Literal["auto", "float32", "bfloat16", "float16", "int8"] = "auto"
    max_length_tokens: int = Field(default=2048, ge=16)
    max_batch_tokens: int = Field(default=16384, ge=64)
    # CPU budget (tokens per model call): past ~2k tokens a CPU forward gets slower per token
    max_batch_tokens_cpu: int = Field(default=2048, ge=64)
    max_batch_requests: int = Field(default=64, ge=1)
    # CPU batches run side by side, each on its share of the cores (0: auto, 2 on 2+ cores)
    cpu_model_workers: int = Field(default=0, ge=0, le=64)
    max_queue_items: int = Field(default=4096, ge=1)  # over this: 429
    # largest padded share of a batch (1 = no cap): on CPU padding costs as much as real
    # tokens and batching buys little, so mixed lengths go in separate batches
    max_padding_ratio_cpu: float = Field(default=0.2, gt=0, le=1)
    max_padding_ratio_gpu: float = Field(default=1.0, gt=0, le=1)
    torch_compile: bool = False
    # BERT encoders run padding-free (one token matrix, attention per item); auto: on CPU
    pack_sequences: Literal["auto", "on", "off"] = "auto"
    # right padding always works; left (decoders only) passes position ids explicitly
    padding_side: Literal["right", "left"] = "right"
    # likelihood decoders: a common token prefix (best-of-N, GRPO groups) runs once and its
    # KV cache serves each continuation; auto: on CPU (BENCHMARKS.md §7)
    prefix_sharing: Literal["auto", "on", "off"] = "auto"
    prefix_min_tokens: int = Field(default=16, ge=1)  # shortest prefix worth sharing
    # with prefix sharing on: a batch about to start on an idle model thread waits this long
    # for the rest of a burst (a GRPO group sent as separate requests) so it can share (0: off)
    prefix_gather_ms: float = Field(default=20.0, ge=0, le=1000)
    # one glibc malloc arena with high mmap/trim thresholds: freed model buffers are reused
    # instead of faulted in again per item (service/allocator.py; applied by re-exec at start)
    malloc_tuning: bool = True

    # --- sandbox ---
    redis_url: str | None = None
    sandbox_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    default_timeout_s: float = Field(default=4.0, gt=0)
    max_timeout_s: float = Field(default=30.0, gt=0)
    default_memory_mb: int = Field(default=1024, ge=16)
    max_memory_mb: int = Field(default=4096, ge=16)
    max_sandbox_queue: int = Field(default=10000, ge=1)  # pending programs before 429
    sandbox_isolation: Literal["auto", "bwrap", "namespaces", "none"] = "auto"
    sandbox_nproc: int = Field(default=256, ge=8)  # RLIMIT_NPROC of the sandbox uid
    sandbox_fsize_mb: int = Field(default=64, ge=1)  # largest file and /tmp size per program
    sandbox_nofile: int = Field(default=256, ge=16)  # open files per program
    # a program's memory as a whole (all its processes): auto = a cgroup when the host allows
    # one, else the watcher; cgroup = required; watch; none = RLIMIT_AS per process only
    sandbox_memory_bound: Literal["auto", "cgroup", "watch", "none"] = "auto"
    sandbox_cgroup: str | None = None  # a delegated cgroup2 dir for the per-program groups
    # CPU bandwidth of a program as a whole (all its processes), with the cgroup; 0: none
    sandbox_cpus: float = Field(default=1.0, ge=0)
    # --- Redis queue (when redis_url is set; workers read the same names) ---
    queue_prefix: str = "codereward"  # Redis key prefix shared with the workers
    queue_max_length: int = Field(default=100_000, ge=1)  # stream backlog (jobs) before 429
    redis_timeout_s: float = Field(default=5.0, gt=0)  # socket timeout of one Redis call
    redis_ready_timeout_s: float = Field(default=0.5, gt=0)  # /readyz ping timeout

    # --- request limits (413 when exceeded) ---
    api_keys: SecretStr | None = None  # comma-separated bearer keys
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_items: int = Field(default=1024, ge=1)  # items per /score, queries per /get_reward
    max_candidates: int = Field(default=256, ge=1)  # candidates per /rerank
    max_submissions: int = Field(default=1024, ge=1)  # submissions per /execute-tests
    max_tests: int = Field(default=256, ge=1)  # tests per submission
    max_text_chars: int = Field(default=200_000, ge=16)  # any one text field
    # one stdio case's input or expected output (competitive-programming inputs run to MBs)
    max_case_chars: int = Field(default=4_000_000, ge=16)
    request_timeout_s: float = Field(default=120.0, gt=0)  # deadline for one request (504)

    # --- /get_reward (RL trainers); formulas in service/rewards/modes.py ---
    reward_mode: Literal["rm", "tests", "hybrid"] = "hybrid"  # when the request names none
    reward_tests_weight: float = 1.0  # hybrid: weight of the pass rate
    reward_rm_weight: float = 0.5  # hybrid: weight of the model term
    reward_rm_squash: bool = True  # hybrid: model term = sigmoid(score), in (0, 1)
    reward_all_pass_bonus: float = 0.0  # tests/hybrid: added when every assert passed
    # per assert, seconds: verl-tool's 1 s (AceCoder's eval uses 4 s); a looping program holds
    # a sandbox slot this long per assert, which dominates RL batch time
    reward_test_timeout_s: float = Field(default=1.0, gt=0)
    # opt-in: once an assert of a program times out its later asserts are not run and count
    # as failed; changes AceCoder's pass rate (a later assert might have passed)
    reward_stop_after_timeout: bool = False
    reward_keep_system: bool = False  # pass the policy's system turn to the reward model
    # verdicts kept for identical programs (GRPO groups, retries); 0 keeps none, but identical
    # programs in flight at the same time still run once
    reward_cache_entries: int = Field(default=16384, ge=0)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _empty_keys_are_none(cls, v: object) -> object:
        return None if v == "" else v

    def api_key_set(self) -> frozenset[str]:
        """Accepted bearer keys (empty: auth disabled)."""
        if self.api_keys is None:
            return frozenset()
        keys = (k.strip() for k in self.api_keys.get_secret_value().split(","))
        return frozenset(k for k in keys if k)

    def models_disabled(self) -> bool:
        """`CODEREWARD_MODELS=none`: serve no reward model (execution endpoints only)."""
        return (self.models or "").strip().lower() == "none"

    def model_specs(self) -> list[tuple[str, Path]]:
        """Parse `models` into (name, path) pairs, in order; empty means the built-in default."""
        if not self.models or self.models_disabled():
            return []
        specs: list[tuple[str, Path]] = []
        for part in self.models.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, path = part.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise ValueError(f"CODEREWARD_MODELS entry {part!r} is not name=path")
            specs.append((name.strip(), Path(path.strip()).expanduser()))
        return specs

    def masked(self) -> dict[str, object]:
        """Settings as a dict with secrets masked, for the start-up log."""
        out = self.model_dump()
        if self.api_keys is not None:
            out["api_keys"] = f"<{len(self.api_key_set())} keys>"
        if self.redis_url and "@" in self.redis_url:
            scheme, _, rest = self.redis_url.partition("://")
            out["redis_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}

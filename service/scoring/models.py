"""Model registry: loads checkpoints at start-up and hands out Scorers by name."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.config import Settings
from service.errors import NotFound, NotReady
from service.metrics import Metrics
from service.scoring.batcher import Batcher, DisconnectCheck
from service.scoring.chat import ItemEncoder, ScoreItem
from service.scoring.engines.base import Encoded, Engine, LoadOptions, ModelInfo, read_metadata
from service.scoring.metrics import ScoringMetrics
from service.scoring.model_workers import DeviceWorkers

log = logging.getLogger("codereward.models")

DEFAULT_MODEL_DIR = "default-model"
BUILD_DEFAULT_HINT = "python -m training.default_model"

__all__ = ["ModelInfo", "ModelRegistry", "ScoreItem", "ScoreOutcome", "Scorer", "build_registry"]

EngineFactory = Callable[[LoadOptions, str], Engine]


@dataclass
class ScoreOutcome:
    """Scores in item order, tokens scored, items truncated, stage timings in seconds."""

    scores: list[float]
    tokens: int
    truncated: int
    timings: dict[str, float] = field(default_factory=dict)  # tokenize, queue, inference, total


class Scorer:
    """One loaded model behind its batcher."""

    def __init__(self, engine: Engine, batcher: Batcher,
                 metrics: ScoringMetrics | None = None) -> None:
        self.engine = engine
        self.info = engine.info
        self.encoder = ItemEncoder(engine.tokenizer, engine.info.max_length,
                                   mark_response=engine.info.reward == "mean_logprob")
        self._batcher = batcher
        self._metrics = metrics

    def encode(self, items: Sequence[ScoreItem]) -> list[Encoded]:
        """Tokenize items (blocking; call from a thread)."""
        return [self.encoder.encode(item) for item in items]

    async def score(self, items: Sequence[ScoreItem], *,
                    is_disconnected: DisconnectCheck | None = None) -> ScoreOutcome:
        """Score chat items; raises Overloaded (429) when the queue is full."""
        start = time.perf_counter()
        if not items:
            return ScoreOutcome(scores=[], tokens=0, truncated=0,
                                timings={"tokenize": 0.0, "queue": 0.0, "inference": 0.0,
                                         "total": 0.0})
        encoded = await asyncio.to_thread(self.encode, items)
        tokenized = time.perf_counter()
        outcome = await self._batcher.submit(encoded, is_disconnected)
        timings = {"tokenize": tokenized - start, "queue": outcome.queue_s,
                   "inference": outcome.inference_s, "total": time.perf_counter() - start}
        truncated = sum(1 for e in encoded if e.truncated)
        if self._metrics is not None:
            label = self.info.name
            for stage in ("tokenize", "queue", "inference"):
                self._metrics.stage.labels(label, stage).observe(timings[stage])
            self._metrics.items.labels(label).inc(len(items))
            if truncated:
                self._metrics.truncated.labels(label).inc(truncated)
        return ScoreOutcome(scores=outcome.scores, tokens=sum(len(e) for e in encoded),
                            truncated=truncated, timings=timings)


@dataclass(frozen=True)
class BatchLimits:
    """Batcher settings shared by every model."""

    max_batch_tokens: int = 16384
    max_batch_requests: int = 64
    max_queue_items: int = 4096
    # padded share a batch may have, by device kind: padding is pure waste on CPU, where
    # batching buys little; on GPU, bigger batches are worth their padding
    max_padding_ratio_cpu: float = 1.0
    max_padding_ratio_gpu: float = 1.0
    max_batch_tokens_cpu: int = 2048  # a CPU forward is fastest per token at ~2k tokens
    cpu_model_workers: int = 0  # batches run side by side on CPU (0: auto, 2 if 2+ cores)
    prefix_gather_s: float = 0.0  # prefix-sharing engines: wait for a burst's other items


def load_engine(opts: LoadOptions, backend: str) -> Engine:
    """Load one checkpoint with the named backend ("torch" or "vllm")."""
    from service.scoring.engines.likelihood import LikelihoodEngine, is_likelihood_model

    meta = read_metadata(opts.path)
    if is_likelihood_model(meta):
        if opts.int8 and _int8_servable(opts, meta):
            from service.scoring.engines.ct2_likelihood import Ct2LikelihoodEngine

            return Ct2LikelihoodEngine(opts)
        if backend == "vllm" and opts.device == "cuda":
            from service.scoring.engines.vllm_likelihood import VllmLikelihoodEngine

            return VllmLikelihoodEngine(opts)
        if backend == "vllm":  # vLLM's generate runner needs CUDA
            log.info("likelihood model on CPU: loaded with torch, not vllm",
                     extra={"model": opts.name})
        return LikelihoodEngine(opts)
    if opts.dtype == "int8":
        raise RuntimeError(f"model {opts.name!r}: DTYPE=int8 serves likelihood models only "
                           "(reward_kind mean_logprob); this is a classifier")
    if backend == "vllm":
        from service.scoring.engines.vllm import VllmEngine

        return VllmEngine(opts)
    from service.scoring.engines.torch import TorchEngine

    return TorchEngine(opts)


def _int8_servable(opts: LoadOptions, meta: dict[str, object]) -> bool:
    """Whether the int8 engine serves this likelihood checkpoint: DTYPE=int8 insists on it
    (a clear error where it cannot), DTYPE=auto takes it where measured as accurate as fp32."""
    from service.scoring.engines.ct2_likelihood import INT8_DIR, has_int8, int8_refusal

    explicit = opts.dtype == "int8"
    problem = ("it runs on CPU only" if opts.device != "cpu"
               else "ctranslate2 is not installed (pip install 'codereward[service]')"
               if importlib.util.find_spec("ctranslate2") is None
               else f"{opts.path / INT8_DIR} holds no conversion (python -m "
                    f"training.models.int8 {opts.path})" if not has_int8(opts.path)
               else "")
    if explicit and problem:
        raise RuntimeError(f"model {opts.name!r}: DTYPE=int8 cannot be served: {problem}")
    if problem:
        return False
    why = "" if explicit else int8_refusal(meta)
    if not why:
        return True
    log.info("int8 conversion not served: %s", why, extra={"model": opts.name})
    return False


class ModelRegistry:
    """Loaded models by name; the first is the default."""

    def __init__(self, specs: Sequence[LoadOptions], *, backend: str = "torch",
                 limits: BatchLimits | None = None, metrics: ScoringMetrics | None = None,
                 engine_factory: EngineFactory = load_engine) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate model names in {names}")
        self.specs = list(specs)
        self.backend = backend
        self.limits = limits or BatchLimits()
        self.default = specs[0].name if specs else None  # None: no model is served
        self._metrics = metrics
        self._factory = engine_factory
        self._scorers: dict[str, Scorer] = {}
        self._workers: dict[str, DeviceWorkers] = {}  # model threads per device
        self._ready = False

    def ready(self) -> bool:
        """True once every model is loaded and its batcher runs."""
        return self._ready

    def get(self, name: str | None = None) -> Scorer:
        """The named model (default when None); NotFound when unknown, NotReady while loading."""
        if not self.specs:
            raise NotFound("no reward model is served (CODEREWARD_MODELS=none): only "
                           "/execute-tests and /get_reward in tests mode are available")
        key = self.default if name is None else name
        if key not in {s.name for s in self.specs}:
            raise NotFound(f"unknown model {name!r}; loaded: {', '.join(self.names())}")
        scorer = self._scorers.get(key)
        if scorer is None or not self._ready:
            raise NotReady("models are loading", retry_after_s=5)
        return scorer

    def names(self) -> list[str]:
        """Model names in configuration order."""
        return [s.name for s in self.specs]

    def infos(self) -> list[ModelInfo]:
        """Info of the loaded models, in configuration order."""
        return [self._scorers[n].info for n in self.names() if n in self._scorers]

    async def start(self) -> None:
        """Load every model (in a thread, so the loop keeps serving /healthz) and start batching."""
        for opts in self.specs:
            began = time.perf_counter()
            engine = await asyncio.to_thread(self._factory, opts, self.backend)
            limits = self.limits
            if opts.device not in self._workers:
                self._workers[opts.device] = device_workers(opts.device,
                                                            limits.cpu_model_workers)
            cpu = opts.device == "cpu"
            batcher = Batcher(engine, max_batch_tokens=(
                                  min(limits.max_batch_tokens, limits.max_batch_tokens_cpu)
                                  if cpu else limits.max_batch_tokens),
                              max_batch_requests=limits.max_batch_requests,
                              max_queue_items=limits.max_queue_items, metrics=self._metrics,
                              workers=self._workers[opts.device],
                              max_padding_ratio=(limits.max_padding_ratio_cpu if cpu
                                                 else limits.max_padding_ratio_gpu),
                              gather_s=limits.prefix_gather_s)
            batcher.start()
            self._scorers[opts.name] = Scorer(engine, batcher, self._metrics)
            info = engine.info
            log.info("model loaded", extra={
                "model": info.name, "backend": info.backend, "device": info.device,
                "dtype": info.dtype, "max_length": info.max_length,
                "parameters": info.parameters, "seconds": round(time.perf_counter() - began, 2)})
        self._ready = True

    async def aclose(self) -> None:
        """Stop batchers and release the models."""
        self._ready = False
        for scorer in self._scorers.values():
            await scorer._batcher.aclose()
        for workers in self._workers.values():
            await asyncio.to_thread(workers.shutdown)
        for scorer in self._scorers.values():
            await asyncio.to_thread(scorer.engine.close)
        self._scorers.clear()
        self._workers.clear()


def device_workers(device: str, cpu_workers: int = 0) -> DeviceWorkers:
    """One model thread on GPU; on CPU `cpu_workers` (0: 2 when torch has 2+ threads)."""
    if device != "cpu":
        return DeviceWorkers(device)
    import torch

    cores = torch.get_num_threads()  # torch's intra-op default: the usable physical cores
    return DeviceWorkers(device, workers=cpu_workers or min(2, cores), cores=cores,
                         set_threads=torch.set_num_threads)


def resolve_device(device: str) -> str:
    """`auto` is CUDA when available, else CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_backend(backend: str, device: str) -> str:
    """`auto` is vLLM when it is importable and the device is CUDA, else torch."""
    if backend != "auto":
        return backend
    if device.startswith("cuda") and importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "torch"


def model_paths(settings: Settings) -> list[tuple[str, Path]]:
    """(name, dir) pairs from CODEREWARD_MODELS, else the built-in default; fails clearly."""
    if settings.models_disabled():
        return []
    specs = settings.model_specs()
    if not specs:
        path = settings.home / DEFAULT_MODEL_DIR
        if not (path / "config.json").is_file():
            raise RuntimeError(
                f"no model configured: CODEREWARD_MODELS is unset and the built-in default "
                f"model is missing at {path}; build it with `{BUILD_DEFAULT_HINT}` "
                f"(`make serve` runs it) or set CODEREWARD_MODELS=name=/path/to/checkpoint")
        name = str(read_metadata(path).get("name") or "default")
        specs = [(name, path)]
    for name, path in specs:
        if not (path / "config.json").is_file():
            raise RuntimeError(f"model {name!r}: {path} is not a checkpoint dir (no config.json)")
    return specs


def build_registry(settings: Settings, metrics: Metrics) -> ModelRegistry:
    """The registry the settings ask for (not yet loaded: call `await start()`)."""
    device = resolve_device(settings.device)
    backend = resolve_backend(settings.backend, device)
    specs = [LoadOptions(name=name, path=path, device=device, dtype=settings.dtype,
                         max_length_tokens=settings.max_length_tokens,
                         torch_compile=settings.torch_compile,
                         padding_side=settings.padding_side,
                         packed=settings.pack_sequences == "on"
                         or (settings.pack_sequences == "auto" and device == "cpu"),
                         shared_prefix_tokens=settings.prefix_min_tokens
                         if settings.prefix_sharing == "on"
                         or (settings.prefix_sharing == "auto" and device == "cpu") else 0,
                         int8=settings.dtype == "int8"
                         or (settings.dtype == "auto" and device == "cpu" and backend == "torch"
                             and settings.prefix_sharing != "on"))
             for name, path in model_paths(settings)]
    limits = BatchLimits(max_batch_tokens=settings.max_batch_tokens,
                         max_batch_requests=settings.max_batch_requests,
                         max_queue_items=settings.max_queue_items,
                         max_padding_ratio_cpu=settings.max_padding_ratio_cpu,
                         max_padding_ratio_gpu=settings.max_padding_ratio_gpu,
                         max_batch_tokens_cpu=settings.max_batch_tokens_cpu,
                         cpu_model_workers=settings.cpu_model_workers,
                         prefix_gather_s=settings.prefix_gather_ms / 1000)
    return ModelRegistry(specs, backend=backend, limits=limits,
                         metrics=ScoringMetrics(metrics.registry))

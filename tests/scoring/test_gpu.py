"""GPU checks (skipped without CUDA): torch on CUDA, vLLM pooling and likelihood agree with CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.base import LoadOptions
from service.scoring.engines.torch import TorchEngine
from tests.scoring.conftest import load_options

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
ITEMS = [as_messages("Write add(a, b).", "def add(a, b):\n    return a + b"),
         as_messages("Reverse s.", "def rev(s):\n    return s[::-1]" + "  # pad" * 40),
         as_messages("x", "y")]


def cpu_scores(path: Path) -> list[float]:
    engine = TorchEngine(load_options("cpu", path))
    encoder = ItemEncoder(engine.tokenizer, engine.info.max_length)
    return engine.run(engine.prepare([encoder.encode(i) for i in ITEMS]))


@needs_cuda
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-3), ("bfloat16", 5e-2)])
def test_torch_cuda_matches_cpu(tiny_qwen2_dir: Path, dtype: str, tol: float) -> None:
    opts = LoadOptions(name="gpu", path=tiny_qwen2_dir, device="cuda", dtype=dtype,
                       max_length_tokens=2048)
    engine = TorchEngine(opts)
    encoder = ItemEncoder(engine.tokenizer, engine.info.max_length)
    got = engine.run(engine.prepare([encoder.encode(i) for i in ITEMS]))
    for a, b in zip(cpu_scores(tiny_qwen2_dir), got, strict=True):
        assert abs(a - b) <= tol * max(1.0, abs(a))


@needs_cuda
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM")
def test_vllm_matches_torch(tiny_qwen2_dir: Path) -> None:
    from service.scoring.engines.vllm import VllmEngine

    opts = LoadOptions(name="vllm", path=tiny_qwen2_dir, device="cuda", dtype="float32",
                       max_length_tokens=2048)
    engine = VllmEngine(opts, gpu_memory_utilization=0.2)
    try:
        encoder = ItemEncoder(engine.tokenizer, engine.info.max_length)
        got = engine.run(engine.prepare([encoder.encode(i) for i in ITEMS]))
    finally:
        engine.close()
    for a, b in zip(cpu_scores(tiny_qwen2_dir), got, strict=True):
        assert abs(a - b) <= 1e-2 * max(1.0, abs(a))


@needs_cuda
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM")
def test_vllm_likelihood_matches_torch(smollm2_dir: Path) -> None:
    from service.scoring.engines.likelihood import LikelihoodEngine
    from service.scoring.engines.vllm_likelihood import VllmLikelihoodEngine

    cpu = LikelihoodEngine(load_options("cpu", smollm2_dir, max_length_tokens=1024))
    opts = LoadOptions(name="vllm", path=smollm2_dir, device="cuda", dtype="float32",
                       max_length_tokens=1024)
    engine = VllmLikelihoodEngine(opts, gpu_memory_utilization=0.2)
    try:
        encoder = ItemEncoder(engine.tokenizer, 1024, mark_response=True)
        batch = [encoder.encode(i) for i in ITEMS]
        got = engine.run(engine.prepare(batch))
    finally:
        engine.close()
    want = cpu.run(cpu.prepare(batch))
    for a, b in zip(want, got, strict=True):
        assert abs(a - b) <= 1e-2 * max(1.0, abs(a))

"""Test synthesis and LLM sampling against a real (fake) OpenAI-compatible HTTP server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.training.conftest import FakeLLM
from training.candidates.sample import SampleConfig, sample
from training.common.llm import ChatClient, LLMError, LLMSettings
from training.common.records import read_jsonl
from training.problems.synth import SynthConfig, parse_rewrite, synthesize


def _seeds(path: Path) -> Path:
    rows = [
        {"id": "s1", "question": "clamp a value", "tests": [], "reference":
         "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n"},
        {"id": "s2", "question": "clamp without reference", "tests": []},
        {"id": "s3", "question": "NO_GOOD_TESTS clamp", "tests": [], "reference":
         "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_synth_filters_by_reference_and_caches(fake_llm: tuple[str, FakeLLM],
                                               tmp_path: Path) -> None:
    url, state = fake_llm
    cfg = SynthConfig(base_url=url, model="fake", problems=str(_seeds(tmp_path / "seeds.jsonl")),
                      out=str(tmp_path / "synth.jsonl"), cache_dir=str(tmp_path / "cache"),
                      backoff_s=0.01, timeout_s=1.0)
    kept, dropped = synthesize(cfg)
    assert (kept, dropped) == (2, 1)
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "synth.jsonl")}
    # wrong asserts (clamp(7, 0, 5) == 7 ...) and non-asserts are filtered out
    assert len(rows["s1"]["tests"]) == 6
    assert "assert clamp(7, 0, 5) == 7" not in rows["s1"]["tests"]
    assert rows["s1"]["entry_point"] == "clamp"
    # s2 had no reference: the solver answer (fenced, with prose) was extracted and used
    assert rows["s2"]["reference"].startswith("def clamp")
    dropped_rows = list(read_jsonl(tmp_path / "synth.jsonl.dropped.jsonl"))
    assert [r["id"] for r in dropped_rows] == ["s3"]
    sent = len(state.requests)
    # rerun: everything is done (resume) and nothing is requested
    assert synthesize(cfg) == (0, 0)
    assert len(state.requests) == sent
    # a fresh output file: all answers come from the disk cache
    cfg2 = SynthConfig(**{**cfg.__dict__, "out": str(tmp_path / "synth2.jsonl")})
    assert synthesize(cfg2) == (2, 1)
    assert len(state.requests) == sent


def test_client_retries_then_succeeds(fake_llm: tuple[str, FakeLLM], tmp_path: Path) -> None:
    url, state = fake_llm
    state.fail_next = 2

    async def go() -> list[str]:
        async with ChatClient(LLMSettings(base_url=url, model="m", cache_dir="",
                                          backoff_s=0.01)) as c:
            return await c.complete([{"role": "user", "content": "hi"}], n=3)

    texts = asyncio.run(go())
    assert len(texts) == 3 and len(state.requests) == 3  # 2 refused + 1 answered


def test_client_gives_up(fake_llm: tuple[str, FakeLLM]) -> None:
    url, state = fake_llm
    state.fail_next = 100

    async def go() -> None:
        async with ChatClient(LLMSettings(base_url=url, model="m", cache_dir="",
                                          backoff_s=0.001, max_retries=2)) as c:
            await c.complete([{"role": "user", "content": "hi"}])

    with pytest.raises(LLMError):
        asyncio.run(go())
    assert len(state.requests) == 3


def test_llm_sampling_extracts_code(fake_llm: tuple[str, FakeLLM], tmp_path: Path,
                                    small_problems: list) -> None:
    url, _ = fake_llm
    probs = tmp_path / "p.jsonl"
    probs.write_text("".join(json.dumps(p.to_row()) + "\n" for p in small_problems
                             if p.id == "t-clamp"))
    cfg = SampleConfig(base_url=url, model="fake", problems=str(probs),
                       out=str(tmp_path / "c.jsonl"), mode="llm", n=4,
                       cache_dir=str(tmp_path / "cache"))
    assert sample(cfg) == 1
    rows = list(read_jsonl(tmp_path / "c.jsonl"))
    assert len(rows) == 4
    assert all(r["code"].startswith("def clamp") and "```" not in r["code"] for r in rows)
    assert sample(cfg) == 0  # resumable


def test_parse_rewrite_variants() -> None:
    q, tests = parse_rewrite('```json\n{"question": "Q", "tests": ["assert f(1) == 1", '
                             '"x = 1", "assert f(1) == 1"]}\n```')
    assert q == "Q" and tests == ["assert f(1) == 1"]
    with pytest.raises(ValueError):
        parse_rewrite("no json here")

"""Training-test fixtures: a real executor, a tiny random BERT, a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.servers import run_uvicorn
from training.problems.loaders import Problem, load_problems

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def small_problems() -> list[Problem]:
    return load_problems(FIXTURES / "problems_small.jsonl")




@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (MiniLM's tokenizer) saved as an HF directory: fast real training."""
    from transformers import BertConfig, BertForSequenceClassification

    from training.models.base import load_tokenizer

    out = tmp_path_factory.mktemp("tiny-bert")
    tok = load_tokenizer("minilm")
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
                     num_labels=1, pad_token_id=tok.pad_token_id)
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


class FakeLLM:
    """State of the fake chat server: scripted answers, injected failures, request log."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0  # answer this many requests with 503 first
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> list[str]:
        prompt = body["messages"][-1]["content"]
        n = int(body.get("n", 1))
        if "Answer with JSON only" in prompt:
            return [json.dumps(_rewrite(prompt))] * n
        # sampling: a correct and a wrong clamp, alternating, in fences with prose
        good = "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n"
        bad = "def clamp(x, lo, hi):\n    return min(lo, max(x, hi))\n"
        return [f"Sure!\n```python\n{good if i % 2 == 0 else bad}```\nDone." for i in range(n)]


def _rewrite(prompt: str) -> dict[str, Any]:
    """A rewrite with good tests, two wrong ones, and one that is not an assert."""
    if "NO_GOOD_TESTS" in prompt:
        tests = ["assert clamp(5, 0, 10) == 5", "assert clamp(1, 0, 10) == 99"]
    else:
        tests = ["assert clamp(5, 0, 10) == 5", "assert clamp(-1, 0, 10) == 0",
                 "assert clamp(11, 0, 10) == 10", "assert clamp(0, 0, 10) == 0",
                 "assert clamp(10, 0, 10) == 10", "assert clamp(3, 3, 3) == 3",
                 "assert clamp(7, 0, 5) == 7", "assert clamp(-5, -3, 3) == -5",
                 "print('not a test')"]
    return {"question": "Write `clamp(x, lo, hi)` limiting x to [lo, hi].", "tests": tests}


@pytest.fixture
def fake_llm() -> Iterator[tuple[str, FakeLLM]]:
    """A real HTTP server speaking the OpenAI chat-completions shape."""
    state = FakeLLM()
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        with state.lock:
            state.requests.append(body)
            if state.fail_next > 0:
                state.fail_next -= 1
                return JSONResponse({"error": "busy"}, status_code=503,
                                    headers={"Retry-After": "0"})
        texts = state.answer(body)
        return JSONResponse({"id": "x", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": i, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": t}}
                                         for i, t in enumerate(texts)]})

    with run_uvicorn(app) as url:
        yield url + "/v1", state

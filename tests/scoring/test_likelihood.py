"""The likelihood engine: mean log-probability rewards from a causal LM (real SmolLM2 weights)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from service.http.app import create_app
from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.base import Encoded
from service.scoring.engines.likelihood import LikelihoodEngine, collate
from service.scoring.models import load_engine
from tests.scoring.conftest import load_options
from tests.scoring.test_service import wait_ready
from tests.servers import run_uvicorn
from training.models.lm_reward import encode_item, mean_logprobs

QUESTION = "Write add(a, b) that returns the sum of a and b."
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"


def test_collate_scores_the_response_tokens_only() -> None:
    b = collate([Encoded([5, 6, 7, 8], score_from=2), Encoded([1, 2]), Encoded([9])], pad_id=0)
    assert b.input_ids.tolist() == [[5, 6, 7, 8], [1, 2, 0, 0], [9, 0, 0, 0]]
    assert b.counts.tolist() == [2, 1, 1]
    # token i is predicted by the hidden state at i - 1; the first token has no context
    assert list(zip(b.rows.tolist(), b.positions.tolist(), b.targets.tolist(), strict=True)) == [
        (0, 1, 7), (0, 2, 8), (1, 0, 2), (2, 0, 9)]
    past_end = collate([Encoded([5, 6, 7], score_from=9)], pad_id=0)
    assert past_end.targets.tolist() == [7]  # never an empty span


@pytest.fixture(scope="module")
def engine(smollm2_dir: Path) -> LikelihoodEngine:
    return LikelihoodEngine(load_options("smol", smollm2_dir, max_length_tokens=1024))


def test_response_start_marks_the_assistant_turn(engine: LikelihoodEngine) -> None:
    enc = ItemEncoder(engine.tokenizer, engine.info.max_length, mark_response=True)
    item = enc.encode(as_messages(QUESTION, RIGHT))
    response = engine.tokenizer.decode(item.input_ids[item.score_from:])
    assert response.startswith(RIGHT) and QUESTION not in response
    assert enc.encode([{"role": "user", "content": QUESTION}]).score_from == 0  # all scored
    tail = len(item) - item.score_from  # response tokens (the turn's end marks included)
    short = ItemEncoder(engine.tokenizer, tail + 3, mark_response=True).encode(
        as_messages(QUESTION, RIGHT))
    assert short.truncated and short.input_ids[short.score_from:] == item.input_ids[
        item.score_from:] and short.score_from == 3  # the prompt is cut from the left
    shorter = ItemEncoder(engine.tokenizer, tail - 2, mark_response=True).encode(
        as_messages(QUESTION, RIGHT))
    assert shorter.score_from == 0  # only response tokens are left
    plain = ItemEncoder(engine.tokenizer, 1024).encode(as_messages(QUESTION, RIGHT))
    assert plain.score_from == 0  # classifier models: no mark


def test_scores_match_training_and_rank_the_right_program_first(
        engine: LikelihoodEngine, smollm2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    enc = ItemEncoder(engine.tokenizer, engine.info.max_length, mark_response=True)
    long_q = QUESTION + " Explain nothing." * 500  # left truncation at 1024 tokens
    items = [(QUESTION, RIGHT), (QUESTION, WRONG), (long_q, RIGHT)]
    encoded = [enc.encode(as_messages(q, p)) for q, p in items]
    assert encoded[2].truncated
    batched = engine.run(engine.prepare(encoded))
    alone = [engine.run(engine.prepare([e]))[0] for e in encoded]
    assert batched == pytest.approx(alone, abs=1e-4)  # padding changes nothing
    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    for (q, p), e in zip(items, encoded, strict=True):
        assert encode_item(tok, q, p, 1024) == (e.input_ids, e.score_from)
    model = AutoModelForCausalLM.from_pretrained(str(smollm2_dir)).eval()
    ours = mean_logprobs(model, tok, items, max_length=1024)
    assert batched == pytest.approx(ours, abs=1e-4)  # the service scores what training measured
    assert batched[0] > batched[1]  # `a - b` is a less likely sum than `a + b`
    assert all(-20 < s < 0 for s in batched)  # mean log-probabilities, scale 1 and bias 0


def test_metadata_selects_the_engine_and_its_scale(smollm2_dir: Path, tmp_path: Path) -> None:
    scaled = tmp_path / "scaled"
    scaled.mkdir()
    for f in smollm2_dir.iterdir():
        (scaled / f.name).symlink_to(f)
    (scaled / "codereward.json").unlink()
    meta = json.loads((smollm2_dir / "codereward.json").read_text())
    (scaled / "codereward.json").write_text(json.dumps({**meta, "score_scale": 10.0,
                                                        "score_bias": 3.0}))
    # on CPU a likelihood model asked of vLLM loads with torch (vLLM's runner needs CUDA)
    eng = load_engine(load_options("s", scaled), "vllm")
    assert isinstance(eng, LikelihoodEngine) and eng.info.reward == "mean_logprob"
    base = LikelihoodEngine(load_options("b", smollm2_dir))
    item = [ItemEncoder(eng.tokenizer, 1024, mark_response=True).encode(
        as_messages(QUESTION, RIGHT))]
    assert eng.run(eng.prepare(item))[0] == pytest.approx(
        10.0 * base.run(base.prepare(item))[0] + 3.0, abs=1e-3)


def test_served_over_http(smollm2_dir: Path) -> None:
    settings = Settings(_env_file=None, models=f"smol={smollm2_dir}", device="cpu",
                        backend="auto", sandbox_workers=1)
    with run_uvicorn(create_app(settings)) as url:
        wait_ready(url)
        card = httpx.get(url + "/models", timeout=10).json()["models"][0]
        assert card["reward"] == "mean_logprob" and card["max_length"] == 1024
        r = httpx.post(url + "/score", timeout=60, json={"items": [
            {"prompt": QUESTION, "response": RIGHT}, {"prompt": QUESTION, "response": WRONG}]})
        assert r.status_code == 200, r.text
        right, wrong = r.json()["scores"]
        assert right > wrong
        bad = httpx.post(url + "/score", timeout=10, json={"items": [{"prompt": QUESTION}]})
        assert bad.status_code == 422

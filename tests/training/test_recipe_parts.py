"""Default-recipe parts: LLM-style mutants, layout tokens, grouped pairs, frozen-prefix cache."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from sandbox_worker.executor import Executor
from training.candidates.mutate import all_mutants
from training.common.records import read_jsonl, write_jsonl
from training.evaluation.evaluate import best_of_n
from training.models.base import add_code_layout, encode, load_model, load_tokenizer, save_tokenizer
from training.models.frozen import prefix_states, score_states
from training.models.pair_tokens import gather, load_pair_data, units
from training.models.train_rm import TrainConfig, train
from training.problems.loaders import Problem
from training.problems.passrate import ExecSettings, score_candidates, scored_rows

CODE = '''def f(xs, k):
    total = 0
    for i in range(len(xs)):
        if xs[i] > k:
            total += xs[i]
            k = k + 1
    head = sorted(xs)[1:k]
    return total + len(head)
'''


def test_extra_operators_are_opt_in_and_parse() -> None:
    base = {m for _, m in all_mutants(CODE)}
    extra = all_mutants(CODE, extra=True)
    kinds = {k for k, m in extra if m not in base}
    assert {"wrong_name", "slice", "range_start", "sort_order", "indent", "dedent"} <= kinds
    assert not {k for k, _ in all_mutants(CODE)} & {"wrong_name", "indent", "dedent"}
    for kind, m in extra:
        tree = ast.parse(m)
        assert ast.dump(tree) != ast.dump(ast.parse(CODE)), kind
    # the statement after the loop pulled into it: same tokens, other layout
    assert any(k == "indent" and "\n        head = sorted" in m for k, m in extra)
    assert any(k == "dedent" and "\n        k = k + 1" in m for k, m in extra)


def test_layout_marks_survive_save_and_plain_load(tmp_path: Path) -> None:
    tok = add_code_layout(load_tokenizer("minilm"))
    add_code_layout(tok)  # idempotent
    flat = "if a:\n    b()\nc()"
    nested = "if a:\n    b()\n    c()"
    assert encode(tok, [flat], 64) != encode(tok, [nested], 64)
    save_tokenizer(tok, tmp_path)
    plain = AutoTokenizer.from_pretrained(tmp_path)  # no code of ours: tokenizer.json as saved
    assert plain(flat)["input_ids"] == encode(tok, [flat], 64)[0]
    assert plain(nested)["input_ids"] != plain(flat)["input_ids"]
    assert plain.truncation_side == "left" and plain.chat_template
    # the original tokenizer class stays for tokenizers without marks
    save_tokenizer(load_tokenizer("minilm"), tmp_path / "plain")
    cfg = json.loads((tmp_path / "plain" / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] != "PreTrainedTokenizerFast"


def _pairs(tmp_path: Path) -> Path:
    rows = []
    for q in ("q1", "q2", "q3"):
        good, bad, worse = f"def {q}(): return 1", f"def {q}(): return 2", f"def {q}(): pass"
        for c, r in ((good, bad), (good, worse), (bad, worse)):
            rows.append({"problem_id": q, "question": f"Write {q}.", "chosen": c, "rejected": r})
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    return tmp_path / "pairs.jsonl"


def test_pair_data_dedupes_texts_and_groups_by_question(tmp_path: Path) -> None:
    tok = load_tokenizer("minilm")
    data = load_pair_data(_pairs(tmp_path), tok, 64)
    assert len(data) == 9 and len(data.texts) == 9  # 3 distinct programs per question
    assert [len(g) for g in units(data, True)] == [3, 3, 3]
    assert len(units(data, False)) == 9
    texts, ch, rj = gather(data, data.groups[0])
    assert len(texts) == 3 and ch.tolist() == [0, 0, 1] and rj.tolist() == [1, 2, 2]


def test_frozen_prefix_matches_full_forward(tiny_model_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_model(str(tiny_model_dir), tok).eval()
    ids = encode(tok, ["def f(x):\n    return x", "a b c " * 30, "x"], 128)
    from training.models.base import score_ids

    full = score_ids(model, ids, tok.pad_token_id)
    for k in (0, 1, 2):
        cached = score_states(model, prefix_states(model, ids, k, tok.pad_token_id), k)
        assert cached == pytest.approx(full, abs=1e-5)


@pytest.mark.parametrize("cache", [False, True])
def test_grouped_training_with_layout_learns_and_exports(tmp_path: Path, tiny_model_dir: Path,
                                                         cache: bool) -> None:
    pairs = _pairs(tmp_path)
    cfg = TrainConfig(train_file=str(pairs), val_file=str(pairs), out_dir=str(tmp_path / "run"),
                      model=str(tiny_model_dir), max_length=64, batch_size=2,
                      batch_by="question", lr=3e-3, epochs=15, eval_every=0, no_dropout=True,
                      code_layout=True, freeze_layers=1, cache_frozen=cache, progress=False)
    out = train(cfg)
    assert out["val_accuracy"] == 1.0 and out["loss"] < 0.5  # memorizes 9 pairs
    ckpt = tmp_path / "run" / "checkpoint"
    assert "¶" in (ckpt / "tokenizer.json").read_text()
    # the frozen block really stayed as loaded
    tok = load_tokenizer(str(tiny_model_dir))
    before = load_model(str(tiny_model_dir), tok).base_model.encoder.layer[0]
    after = load_model(str(ckpt), tok).base_model.encoder.layer[0]
    for a, b in zip(before.parameters(), after.parameters(), strict=True):
        assert torch.equal(a, b)


def test_pass_rates_rerun_when_code_or_tests_change(tmp_path: Path, executor: Executor) -> None:
    p = Problem(id="p", question="q", tests=["assert f() == 1", "assert f() + 1 == 2"])
    out = tmp_path / "r.jsonl"
    cfg = ExecSettings(timeout_s=1.0, stop_after_timeout=True)
    one = [{"problem_id": "p", "candidate_id": "p/m0", "code": "def f():\n    return 1\n"}]
    assert score_candidates([p], one, out, cfg, progress=False, executor=executor) == 1
    assert score_candidates([p], one, out, cfg, progress=False, executor=executor) == 0
    # same candidate id, other code (a changed mutant set): a new run, not the stale rate
    two = [{**one[0], "code": "def f():\n    return 2\n"}]
    assert score_candidates([p], two, out, cfg, progress=False, executor=executor) == 1
    rows = scored_rows([p], two, out, 1.0, stop_after_timeout=True)
    assert [r["pass_rate"] for r in rows] == [0.0]
    assert scored_rows([p], one, out, 1.0, stop_after_timeout=True)[0]["pass_rate"] == 1.0
    assert scored_rows([p], one, out, 1.0) == []  # another timeout policy: not this row
    assert len(list(read_jsonl(out))) == 2


def test_best_of_n_ties_do_not_favour_the_listed_first_reference() -> None:
    problems = [Problem(id=f"p{i}", question="q", tests=[]) for i in range(40)]
    rows = [{"problem_id": p.id, "code": f"c{j}", "pass_rate": 1.0 if j == 0 else 0.0}
            for p in problems for j in range(8)]
    # a collapsed reward model: the same score for every input
    res = best_of_n(lambda items: [0.0] * len(items), problems, rows)
    assert res["random"] == pytest.approx(1 / 8) and res["oracle"] == 1.0
    assert res["top1"] < 0.4  # a first-index tie-break would report 1.0

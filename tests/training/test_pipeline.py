"""Every stage on a small problem subset, with real execution and real training steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sandbox_worker.executor import Executor
from tests.training.conftest import FIXTURES
from training.candidates.sample import SampleConfig, mutation_candidates
from training.common.records import read_jsonl
from training.evaluation.evaluate import best_of_n, classifier_scorer, pair_accuracy
from training.models.base import load_model, load_tokenizer, plain_render, score_texts
from training.models.export import export, read_metadata
from training.models.train_rm import TrainConfig, train
from training.pairs.build import PairRules, build_pairs, write_pairs
from training.problems.loaders import Problem
from training.problems.passrate import ExecSettings, score_candidates


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, small_problems: list[Problem],
             executor: Executor) -> dict[str, object]:
    """Candidates → pass rates → pairs on the fixture problems (shared by the tests below)."""
    work = tmp_path_factory.mktemp("pipe")
    cands = [c for p in small_problems for c in mutation_candidates(p, SampleConfig(n=10))]
    n = score_candidates(small_problems, cands, work / "rates.jsonl",
                         ExecSettings(workers=2, timeout_s=1.0), progress=False,
                         executor=executor)
    assert n == len(cands)
    rows = list(read_jsonl(work / "rates.jsonl"))
    train_p, val_p = build_pairs(small_problems, rows, PairRules(val_fraction=0.34, seed=7))
    tp, vp = write_pairs(work / "pairs", train_p, val_p)
    return {"work": work, "rows": rows, "train": tp, "val": vp, "n_cands": len(cands)}


def test_pass_rates_are_real_and_resumable(pipeline: dict, small_problems: list[Problem],
                                           executor: Executor) -> None:
    rows = pipeline["rows"]
    refs = [r for r in rows if r["origin"] == "reference"]
    assert len(refs) == len(small_problems) and all(r["pass_rate"] == 1.0 for r in refs)
    mutants = [r for r in rows if r["origin"].startswith("mutant")]
    assert any(0 < r["pass_rate"] < 1 for r in mutants)
    assert any(r["pass_rate"] < 0.5 for r in mutants)
    # a rerun with the same limits finds everything done and runs nothing
    cands = [c for p in small_problems for c in mutation_candidates(p, SampleConfig(n=10))]
    again = score_candidates(small_problems, cands, pipeline["work"] / "rates.jsonl",
                             ExecSettings(timeout_s=1.0), progress=False, executor=executor)
    assert again == 0


def test_pairs_from_real_rates(pipeline: dict) -> None:
    train_rows = list(read_jsonl(pipeline["train"]))
    val_rows = list(read_jsonl(pipeline["val"]))
    assert train_rows and val_rows
    assert not {r["problem_id"] for r in train_rows} & {r["problem_id"] for r in val_rows}
    for r in train_rows + val_rows:
        assert r["chosen_pass"] >= 0.8 and r["rejected_pass"] > 0
        assert r["chosen_pass"] - r["rejected_pass"] >= 0.4


def test_train_resume_export_and_load(pipeline: dict, tiny_model_dir: Path, tmp_path: Path,
                                      small_problems: list[Problem]) -> None:
    cfg = TrainConfig(train_file=str(pipeline["train"]), val_file=str(pipeline["val"]),
                      out_dir=str(tmp_path / "run"), model=str(tiny_model_dir), max_length=128,
                      batch_size=4, lr=1e-3, epochs=3, max_steps=2, eval_every=1,
                      save_every=100, progress=False)
    first = train(cfg)
    assert first["step"] == 2 and "val_accuracy" in first
    run = tmp_path / "run"
    assert (run / "checkpoint" / "trainer_state.pt").exists()
    assert (run / "training.png").stat().st_size > 1000
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["max_steps"] == 2 and saved["lr"] == 1e-3
    # resume: same run dir, more steps; the step count continues from the checkpoint
    second = train(TrainConfig(**{**saved, "max_steps": 4}))
    assert second["step"] == 4
    steps = [r["step"] for r in read_jsonl(run / "history.jsonl")]
    assert steps == [1, 2, 3, 4]
    state = torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 4

    out = export(run / "checkpoint", tmp_path / "export", base_model="tiny", train_config=saved,
                 data_hash="abc", eval_results={"val_pair_accuracy": second["val_accuracy"]},
                 max_length=128)
    meta = read_metadata(out)
    assert meta["data_hash"] == "abc" and meta["training_config"]["lr"] == 1e-3
    assert meta["eval"]["val_pair_accuracy"] == second["val_accuracy"]

    # plain transformers, no training code: same scores as the training scorer
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert model.config.num_labels == 1 and model.config.pad_token_id == tok.pad_token_id
    p = small_problems[0]
    msgs = [{"role": "user", "content": p.question}, {"role": "assistant", "content": p.reference}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == plain_render(p.question, p.reference)
    with torch.no_grad():
        plain = float(model(**tok(text, return_tensors="pt")).logits[0, 0])
    ours = score_texts(load_model(str(out), load_tokenizer(str(out))), load_tokenizer(str(out)),
                       [(p.question, p.reference)], max_length=128)[0]
    assert plain == pytest.approx(ours, abs=1e-4)

    # the service's own loader and encoder (helper B's code) score it the same way
    from service.scoring.chat import ItemEncoder
    from service.scoring.engines.base import LoadOptions
    from service.scoring.engines.torch import TorchEngine

    engine = TorchEngine(LoadOptions(name="t", path=out, device="cpu", dtype="float32",
                                     max_length_tokens=2048))
    enc = ItemEncoder(engine.tokenizer, engine.info.max_length)
    assert engine.info.max_length == 128
    served = engine.run(engine.prepare([enc.encode(msgs)]))[0]
    assert served == pytest.approx(ours, abs=1e-4)
    long_q = "word " * 400
    served_long = engine.run(engine.prepare([enc.encode(
        [{"role": "user", "content": long_q}, {"role": "assistant", "content": p.reference}])]))[0]
    ours_long = score_texts(load_model(str(out), tok), load_tokenizer(str(out)),
                            [(long_q, p.reference)], max_length=128)[0]
    assert served_long == pytest.approx(ours_long, abs=1e-4)  # same left truncation
    engine.close()


def test_evaluate_metrics_on_fixture(pipeline: dict, tiny_model_dir: Path,
                                     small_problems: list[Problem]) -> None:
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_model(str(tiny_model_dir), tok)
    score = classifier_scorer(model, tok, 128)
    res = best_of_n(score, small_problems, pipeline["rows"])
    assert res["oracle"] == 1.0
    assert 0 < res["random"] < 1
    assert res["random"] <= res["oracle"] and res["top1"] <= res["oracle"]
    acc = pair_accuracy(score, list(read_jsonl(pipeline["val"])))
    assert 0.0 <= acc <= 1.0


def test_acecode_fixture_through_pairs(tmp_path: Path, executor: Executor) -> None:
    from training.problems.loaders import inference_candidates, load_acecode

    problems = load_acecode(FIXTURES / "acecode_sample.jsonl")
    cands = list(inference_candidates(problems))
    score_candidates(problems, cands, tmp_path / "r.jsonl", ExecSettings(timeout_s=1.0),
                     progress=False, executor=executor)
    rows = {r["candidate_id"]: r for r in read_jsonl(tmp_path / "r.jsonl")}
    # completions in markdown fences (with prose around them) are extracted, then run
    assert rows["evol_101/0"]["pass_rate"] == 1.0 and rows["evol_101/2"]["pass_rate"] == 1.0
    assert rows["oss_202/0"]["pass_rate"] == 1.0
    assert rows["oss_202/2"]["pass_rate"] == pytest.approx(0.6)
    assert rows["stack_303/1"]["pass_rate"] == pytest.approx(0.8)
    train_p, _ = build_pairs(problems, list(rows.values()), PairRules(val_fraction=0.0))
    assert {(p["problem_id"], p["rejected_pass"]) for p in train_p} >= {("oss_202", 0.6)}

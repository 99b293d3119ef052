"""The built-in default model: build key, staleness, and a tiny real build + service load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training import default_model as dm
from training.common.records import read_jsonl
from training.models.export import read_metadata


def test_build_key_tracks_recipe() -> None:
    lm = dm.DefaultRecipe()
    assert lm.base == "smollm2" and dm.build_key(lm) == dm.build_key(dm.DefaultRecipe())
    assert dm.build_key(dataclasses.replace(lm, n_mutants=5)) != dm.build_key(lm)
    cal = dataclasses.replace(lm, likelihood=dataclasses.replace(lm.likelihood, max_length=9))
    assert dm.build_key(cal) != dm.build_key(lm)
    # the encoder's training settings do not shape a likelihood model
    lr = dataclasses.replace(lm, train=dataclasses.replace(lm.train, lr=1.0))
    assert dm.build_key(lr) == dm.build_key(lm)
    base = dataclasses.replace(lm, base="minilm")
    assert dm.build_key(base) != dm.build_key(lm)
    lr = dataclasses.replace(base, train=dataclasses.replace(base.train, lr=1.0))
    assert dm.build_key(lr) != dm.build_key(base)
    real = dataclasses.replace(base, realcode=dataclasses.replace(base.realcode, n=7))
    assert dm.build_key(real) != dm.build_key(base)


def test_home_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEREWARD_HOME", str(tmp_path))
    assert dm.model_dir() == tmp_path / "default-model"
    assert not dm.is_fresh(dm.model_dir(), dm.build_key(dm.DefaultRecipe()))


def test_tiny_build_is_cached_and_served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         tiny_model_dir: Path) -> None:
    monkeypatch.setenv("CODEREWARD_HOME", str(tmp_path))
    base = dm.DefaultRecipe(base="minilm")
    recipe = dataclasses.replace(
        base, n_mutants=5, problems_limit=8, timeout_s=1.0,
        rules=dataclasses.replace(base.rules, val_fraction=0.3),
        realcode=dataclasses.replace(base.realcode, n=20),
        train=dataclasses.replace(base.train, model=str(tiny_model_dir), max_steps=2,
                                  max_length=128, freeze_layers=0))
    path = dm.ensure(recipe=recipe, progress=False)
    assert path == tmp_path / "default-model"
    meta = read_metadata(path)
    assert meta["build_key"] == dm.build_key(recipe)
    assert meta["name"] == dm.MODEL_NAMES["minilm"]
    assert meta["build"]["problems"] == 8
    assert meta["eval"]["realcode_pairs"] == 20
    work = tmp_path / "default-model.work" / "pairs"
    origins = [r["chosen_origin"] for r in read_jsonl(work / "train.jsonl")]
    assert sum(o.startswith("stdlib:") for o in origins) == 20  # real-code pairs: train only
    assert not any(r["chosen_origin"].startswith("stdlib:")
                   for r in read_jsonl(work / "val.jsonl"))
    assert (path / "val_pairs.jsonl").exists() and (path / "training.png").exists()
    mtime = (path / "codereward.json").stat().st_mtime
    assert dm.ensure(recipe=recipe, progress=False) == path  # fresh: not rebuilt
    assert (path / "codereward.json").stat().st_mtime == mtime

    # the service finds it under CODEREWARD_HOME and loads it by its metadata name
    from service.config import Settings
    from service.scoring.models import model_paths

    (name, found), = model_paths(Settings(home=tmp_path))
    assert found == path and name == dm.MODEL_NAMES["minilm"]


def test_tiny_likelihood_build_is_calibrated_and_served(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("CODEREWARD_HOME", str(tmp_path))
    base = dm.DefaultRecipe()
    recipe = dataclasses.replace(
        base, n_mutants=4, problems_limit=8, timeout_s=1.0,
        rules=dataclasses.replace(base.rules, val_fraction=0.3),
        likelihood=dataclasses.replace(base.likelihood, calibration_questions=2))
    path = dm.ensure(recipe=recipe, progress=False)
    meta = read_metadata(path)
    assert meta["reward_kind"] == "mean_logprob" and meta["name"] == dm.MODEL_NAMES["smollm2"]
    assert meta["build_key"] == dm.build_key(recipe) and meta["build"]["problems"] == 8
    cal = meta["eval"]["calibration"]
    assert cal["scale"] > 0 and cal["pairs"] > 0 and meta["score_scale"] == cal["scale"]
    assert 0.0 <= meta["eval"]["val_pair_accuracy"] <= 1.0 and meta["eval"]["val_pairs"] > 0
    assert (path / "val_pairs.jsonl").exists() and (path / "model.safetensors").exists()
    assert dm.ensure(recipe=recipe, progress=False) == path  # fresh: not rebuilt

    # the service loads it with its likelihood engine; the references outscore their mutants
    from service.config import Settings
    from service.scoring.chat import ItemEncoder, as_messages
    from service.scoring.engines.base import LoadOptions
    from service.scoring.models import load_engine, model_paths

    (name, found), = model_paths(Settings(home=tmp_path))
    engine = load_engine(LoadOptions(name=name, path=found, device="cpu", dtype="float32",
                                     max_length_tokens=4096), "torch")
    assert engine.info.reward == "mean_logprob" and engine.info.max_length == 1024
    enc = ItemEncoder(engine.tokenizer, engine.info.max_length, mark_response=True)
    pairs = list(read_jsonl(path / "val_pairs.jsonl"))
    scores = engine.run(engine.prepare(
        [enc.encode(as_messages(p["question"], p[k])) for p in pairs
         for k in ("chosen", "rejected")]))
    served = sum(c > r for c, r in zip(scores[::2], scores[1::2], strict=True)) / len(pairs)
    assert served == pytest.approx(meta["eval"]["val_pair_accuracy"])  # same numbers

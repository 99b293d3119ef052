"""The built-in default model: build key, staleness, and a tiny real build + service load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training import default_model as dm
from training.export import read_metadata
from training.records import read_jsonl


def test_build_key_tracks_recipe() -> None:
    base = dm.DefaultRecipe()
    assert dm.build_key(base) == dm.build_key(dm.DefaultRecipe())
    assert dm.build_key(dataclasses.replace(base, n_mutants=5)) != dm.build_key(base)
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
    base = dm.DefaultRecipe()
    recipe = dataclasses.replace(
        base, n_mutants=5, problems_limit=8, timeout_s=1.0,
        rules=dataclasses.replace(base.rules, val_fraction=0.3),
        realcode=dataclasses.replace(base.realcode, n=20),
        train=dataclasses.replace(base.train, model=str(tiny_model_dir), max_steps=2,
                                  max_length=128, freeze_layers=0))
    path = dm.ensure(recipe=recipe, progress=False)
    assert path == tmp_path / "default-model"
    meta = read_metadata(path)
    assert meta["build_key"] == dm.build_key(recipe) and meta["name"] == dm.MODEL_NAME
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
    from service.models import model_paths

    (name, found), = model_paths(Settings(home=tmp_path))
    assert found == path and name == dm.MODEL_NAME

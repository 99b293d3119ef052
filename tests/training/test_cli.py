"""`--key=value` config overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.common.cli import load_config, parse_overrides, save_config
from training.models.train_rm import TrainConfig


def test_overrides_types_and_roundtrip(tmp_path: Path) -> None:
    cfg = parse_overrides(TrainConfig, ["--lr=3e-5", "--max_length", "128", "--freeze-embeddings",
                                        "--dtype=bf16", "--resume=false"])
    assert cfg.lr == 3e-5 and cfg.max_length == 128 and cfg.freeze_embeddings
    assert cfg.dtype == "bf16" and cfg.resume is False
    save_config(cfg, tmp_path / "c.json")
    assert load_config(TrainConfig, tmp_path / "c.json") == cfg


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(SystemExit):
        parse_overrides(TrainConfig, ["--learning_rate=1"])

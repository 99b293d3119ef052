"""The service scores exactly what the trainer trained on (rendering, special tokens, cut)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.torch import TorchEngine
from tests.scoring.conftest import load_options
from training.models.base import load_model, load_tokenizer, score_texts

PAIRS = [("Write add(a, b).", "def add(a, b):\n    return a + b"),
         ("Reverse a string. " * 20, "def rev(s):\n    return s[::-1]\n" * 12),
         ("x", "y")]


def test_service_matches_training_scores(tiny_bert_dir: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "export"
    shutil.copytree(tiny_bert_dir, ckpt)
    tok = load_tokenizer(str(ckpt))  # adds the trainer's plain chat template
    tok.save_pretrained(ckpt)
    expected = score_texts(load_model(str(ckpt), tok), tok, PAIRS, max_length=48)

    engine = TorchEngine(load_options("parity", ckpt, max_length_tokens=48))
    encoder = ItemEncoder(engine.tokenizer, engine.info.max_length)
    encoded = [encoder.encode(as_messages(q, r)) for q, r in PAIRS]
    assert encoder.templated and [e.truncated for e in encoded] == [False, True, False]
    got = engine.run(engine.prepare(encoded))
    assert got == pytest.approx(expected, abs=1e-4)

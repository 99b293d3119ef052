"""AceCodeRM (Qwen2ForCausalLM + biased v_head) converts to the served format, same scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.torch import TorchEngine
from tests.model_builders import build_byte_tokenizer
from tests.scoring.conftest import load_options
from training.models.convert_acecoderm import main as convert_main


def build_acecoderm(dst: Path) -> tuple[Qwen2ForCausalLM, torch.nn.Linear]:
    """A tiny random AceCodeRM: Qwen2ForCausalLM body + v_head.summary Linear(H, 1, bias)."""
    build_byte_tokenizer(dst)
    tok = AutoTokenizer.from_pretrained(str(dst))
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=False)
    torch.manual_seed(1)
    lm = Qwen2ForCausalLM(config).eval()
    v_head = torch.nn.Linear(config.hidden_size, 1, bias=True)
    with torch.no_grad():
        v_head.weight.normal_(0.0, 1.0)
        v_head.bias.fill_(2.5)  # a bias big enough to notice when it is lost
    lm.save_pretrained(dst, safe_serialization=True)
    weights = load_file(str(dst / "model.safetensors"))
    weights["v_head.summary.weight"] = v_head.weight.detach().clone()
    weights["v_head.summary.bias"] = v_head.bias.detach().clone()
    save_file(weights, str(dst / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((dst / "config.json").read_text())
    cfg["architectures"] = ["AceCodeRM"]
    (dst / "config.json").write_text(json.dumps(cfg))
    return lm, v_head


@torch.inference_mode()
def original_scores(lm: Qwen2ForCausalLM, v_head: torch.nn.Linear,
                    ids: list[list[int]], pad_id: int) -> list[float]:
    """AceCodeRM's forward: v_head over the hidden states, read at the last real token."""
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), pad_id)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    hidden = lm.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    values = v_head(hidden)[:, :, 0]  # (B, T)
    return values[torch.arange(len(ids)), mask.sum(-1) - 1].tolist()


def test_converted_checkpoint_scores_like_the_original(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "acecoderm-tiny", tmp_path / "served"
    lm, v_head = build_acecoderm(src)
    convert_main([str(src), str(dst), "--name", "acecode-rm-tiny"])
    assert "score_bias +2.5" in capsys.readouterr().out
    meta = json.loads((dst / "codereward.json").read_text())
    assert meta["name"] == "acecode-rm-tiny" and meta["score_bias"] == pytest.approx(2.5)
    config = json.loads((dst / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForSequenceClassification"]
    assert config["num_labels"] == 1 if "num_labels" in config else len(config["id2label"]) == 1
    served = load_file(str(dst / "model.safetensors"))
    assert "score.weight" in served and "score.bias" not in served
    assert not any(k.startswith(("v_head", "lm_head")) for k in served)

    engine = TorchEngine(load_options("acecode-rm-tiny", dst))
    assert engine.decoder and engine.score_bias == pytest.approx(2.5)
    encoder = ItemEncoder(engine.tokenizer, engine.info.max_length)
    items = [as_messages("Write add(a, b).", "def add(a, b):\n    return a + b"),
             as_messages("Reverse s.", "def rev(s):\n    return s[::-1]  # " + "pad " * 30),
             as_messages("x", "y")]
    encoded = [encoder.encode(i) for i in items]
    expected = original_scores(lm, v_head, [e.input_ids for e in encoded],
                               engine.tokenizer.pad_token_id)
    got = engine.run(engine.prepare(encoded))
    for e, g in zip(expected, got, strict=True):
        assert abs(e - g) <= 1e-4
    assert max(expected) - min(expected) > 1e-2  # the scores are not all the same


def test_convert_refuses_a_checkpoint_without_value_head(tiny_qwen2_dir: Path,
                                                         tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an AceCodeRM checkpoint"):
        convert_main([str(tiny_qwen2_dir), str(tmp_path / "out")])

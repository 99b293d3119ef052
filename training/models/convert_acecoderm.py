"""Convert an AceCodeRM checkpoint into the served format.

`python -m training.models.convert_acecoderm SRC DST [--name NAME]`

SRC: a `Qwen2ForCausalLM` body plus `v_head.summary = Linear(hidden, 1)` *with bias*, scored
at the last real token (AceCodeRM-7B/32B). DST: a standard `Qwen2ForSequenceClassification`
(num_labels=1, bias-free head named `score`, as vLLM and TEI expect), the tokenizer with its
chat template and a pad token, and `codereward.json` carrying `score_bias`, which the service
adds back so scores equal the original model's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

METADATA = "codereward.json"
HEAD_WEIGHT = "v_head.summary.weight"
HEAD_BIAS = "v_head.summary.bias"


def _weight_files(src: Path) -> list[Path]:
    """The checkpoint's weight files (safetensors preferred, then torch .bin)."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.is_file():
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [src / n for n in names]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (src / single).is_file():
            return [src / single]
    raise FileNotFoundError(f"{src}: no model.safetensors or pytorch_model.bin")


def read_value_head(src: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (1, H), bias (1,)) of `v_head.summary`, read without loading the body."""
    found: dict[str, torch.Tensor] = {}
    for path in _weight_files(src):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                for key in (HEAD_WEIGHT, HEAD_BIAS):
                    if key in f.keys():  # noqa: SIM118 (safe_open has no __contains__)
                        found[key] = f.get_tensor(key)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            found.update({k: v for k, v in state.items() if k in (HEAD_WEIGHT, HEAD_BIAS)})
    missing = [k for k in (HEAD_WEIGHT, HEAD_BIAS) if k not in found]
    if missing:
        raise ValueError(f"{src} is not an AceCodeRM checkpoint: missing {missing}")
    weight, bias = found[HEAD_WEIGHT], found[HEAD_BIAS]
    if weight.ndim != 2 or weight.shape[0] != 1 or bias.numel() != 1:
        raise ValueError(f"v_head.summary has shape {tuple(weight.shape)}, expected (1, hidden)")
    return weight, bias


def convert(src: Path, dst: Path, *, name: str | None = None) -> dict[str, Any]:
    """Write the served checkpoint to `dst` (atomically); returns its metadata."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoTokenizer, Qwen2ForSequenceClassification

    weight, bias = read_value_head(src)
    tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
    if tok.pad_token is None:  # Qwen ships <|endoftext|> as pad; fall back to eos
        tok.pad_token = tok.eos_token
    config = AutoConfig.from_pretrained(str(src), local_files_only=True)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    dtype = dtype if isinstance(dtype, torch.dtype) else torch.float32
    config.num_labels = 1
    config.architectures = ["Qwen2ForSequenceClassification"]
    config.pad_token_id = tok.pad_token_id
    config.id2label = {0: "reward"}
    config.label2id = {"reward": 0}
    # the body's weights load under the same names ("model.*"); lm_head and v_head are skipped
    model = Qwen2ForSequenceClassification.from_pretrained(
        str(src), config=config, dtype=dtype, local_files_only=True)
    with torch.no_grad():
        model.score.weight.copy_(weight.to(model.score.weight.dtype))
    meta = {
        "name": name or src.name,
        "score_bias": float(bias.float().item()),
        "source": "acecoderm",
        "converted_from": str(src),
        "pooling": "last real token (right padding)",
        "input": {"messages": "[user: question, assistant: program]",
                  "render": "tokenizer.apply_chat_template(messages, tokenize=False)"},
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True))
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="AceCodeRM checkpoint dir")
    parser.add_argument("dst", type=Path, help="output dir (served by CODEREWARD_MODELS)")
    parser.add_argument("--name", help="model name in codereward.json (default: SRC's name)")
    args = parser.parse_args(argv)
    meta = convert(args.src, args.dst, name=args.name)
    print(f"wrote {args.dst} (score_bias {meta['score_bias']:+.6f})")


if __name__ == "__main__":
    main()

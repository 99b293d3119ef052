"""The engine interface: a loaded reward model that scores padded batches of token ids."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("codereward.engines")

# Metadata file in a checkpoint dir for what HF config has no field for (name, score_bias).
METADATA_FILE = "codereward.json"


@dataclass(frozen=True)
class ModelInfo:
    """What GET /models reports about one loaded model."""

    name: str
    backend: str
    dtype: str
    device: str
    max_length: int
    parameters: int
    path: str = ""
    chat_template: bool = False
    reward: str = "classifier"  # or "mean_logprob" (engines/likelihood.py)


@dataclass(frozen=True)
class Encoded:
    """One tokenized item: ids with special tokens, segment ids (or None), and truncation."""

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    truncated: bool = False
    score_from: int = 0  # likelihood models: index of the first response token

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class LoadOptions:
    """How to load one checkpoint (resolved from Settings by the registry)."""

    name: str
    path: Path
    device: str  # "cpu" or "cuda" (already resolved from "auto")
    dtype: str  # "auto", "float32", "bfloat16", "float16", "int8" (likelihood models, CPU)
    max_length_tokens: int  # server cap; the model's own limit may be lower
    torch_compile: bool = False
    padding_side: str = "right"  # "left" only for decoders (position ids are passed)
    # BERT encoders: one padding-free token matrix per batch instead of padded rows
    packed: bool = False
    # decoders (likelihood engine): > 0 runs each batch's common prefixes once, reusing their
    # KV cache, for groups sharing at least this many tokens (engines/prefix.py); 0 = off
    shared_prefix_tokens: int = 0
    # likelihood models on CPU: serve the checkpoint's CTranslate2 int8 conversion where it
    # was measured as accurate as fp32 (dtype "int8": wherever one exists; engines/ct2_likelihood)
    int8: bool = False


class Engine(Protocol):
    """A loaded model. `run` is called from the device's model threads (on CPU, two at once)."""

    info: ModelInfo
    tokenizer: Any  # a transformers tokenizer (chat template, backend_tokenizer)
    score_bias: float
    # True: a batch costs longest * count tokens (padded); False: the sum of lengths
    padded: bool

    def prepare(self, batch: Sequence[Encoded]) -> Any:
        """Collate a batch (padding, tensors); runs off the model thread, while it is busy."""
        ...

    def run(self, prepared: Any) -> list[float]:
        """Scores (score_bias included) of a prepared batch, in order. Blocking."""
        ...

    def close(self) -> None:
        """Release the model (GPU memory)."""
        ...


def read_metadata(path: Path) -> dict[str, Any]:
    """The checkpoint's codereward.json, or {} when absent."""
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        return {}
    data = json.loads(meta_path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{meta_path} is not a JSON object")
    return data


def model_max_length(config: Any, tokenizer: Any, cap: int) -> int:
    """The smallest of the server cap, the position table and the tokenizer's own limit."""
    limit = cap
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limit = min(limit, positions)
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 10_000_000:  # HF uses 1e30 for "none"
        limit = min(limit, tok_limit)
    return limit

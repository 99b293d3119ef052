"""vLLM engine: the pooling runner's `classify` with raw logits (GPU). Imported lazily."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from service.scoring.engines.base import (
    Encoded,
    LoadOptions,
    ModelInfo,
    model_max_length,
    read_metadata,
)

log = logging.getLogger("codereward.engines.vllm")


def open_checkpoint(opts: LoadOptions) -> tuple[dict[str, Any], Any, int, str]:
    """(metadata, tokenizer, max length, vLLM dtype) of a checkpoint both vLLM engines load."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(opts.path), local_files_only=True)
    config = AutoConfig.from_pretrained(str(opts.path), local_files_only=True)
    max_length = model_max_length(config, tokenizer, opts.max_length_tokens)
    dtype = "bfloat16" if opts.dtype == "auto" else opts.dtype
    return read_metadata(opts.path), tokenizer, max_length, dtype


class VllmEngine:
    """Scores token-id prompts with vLLM; its scheduler packs them without padding."""

    padded = False  # vLLM packs sequences: a batch costs the sum of its lengths

    def __init__(self, opts: LoadOptions, **engine_kwargs: Any) -> None:
        from vllm import LLM, PoolingParams  # here, so CPU installs never import vLLM

        meta, self.tokenizer, max_length, dtype = open_checkpoint(opts)
        self.score_bias = float(meta.get("score_bias", 0.0))
        common = {"model": str(opts.path), "dtype": dtype, "max_model_len": max_length,
                  "enforce_eager": not opts.torch_compile, **engine_kwargs}
        try:
            self.llm = LLM(runner="pooling", **common)
        except TypeError:  # vLLM < 0.10 selected pooling with `task`
            self.llm = LLM(task="classify", **common)
        try:  # raw rewards: no sigmoid/softmax on the classifier output
            self._params = PoolingParams(use_activation=False)
        except TypeError:  # older vLLM spelled it `activation`
            self._params = PoolingParams(activation=False)
        self.info = ModelInfo(
            name=opts.name, backend="vllm", dtype=dtype, device="cuda", max_length=max_length,
            parameters=count_parameters(self.llm), path=str(opts.path),
            chat_template=bool(getattr(self.tokenizer, "chat_template", None)))

    def prepare(self, batch: Sequence[Encoded]) -> list[dict[str, Any]]:
        return [{"prompt_token_ids": list(e.input_ids)} for e in batch]

    def run(self, prepared: list[dict[str, Any]]) -> list[float]:
        outputs = self.llm.classify(prepared, pooling_params=self._params, use_tqdm=False)
        return [float(out.outputs.probs[0]) + self.score_bias for out in outputs]

    def close(self) -> None:
        del self.llm


def count_parameters(llm: Any) -> int:
    """Parameter count of the loaded model, or 0 when vLLM hides it (multi-process engine)."""
    try:
        engine = llm.llm_engine
        model = engine.model_executor.driver_worker.worker.model_runner.model
        return int(sum(p.numel() for p in model.parameters()))
    except Exception:
        return 0

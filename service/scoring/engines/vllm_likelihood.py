"""vLLM engine for likelihood models: mean response-token log-probability from `prompt_logprobs`.

Each item is sent as a token-id prompt with `max_tokens=1` and `prompt_logprobs=0`; vLLM then
returns, for every prompt position but the first, the log-probability of the prompt's own
token there (plus the top-0 others: none). The reward is the mean over the scored span
(likelihood.scored_span), times `score_scale`, plus `score_bias`, as in the torch engine.

Prefix caching is off for this engine: vLLM V1 does not cache prompt log-probabilities and
recomputes the prefill of a request that asks for them, and an open vLLM bug (PR #42245)
returned stale values for cached positions. Imported lazily; needs CUDA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.scoring.engines.base import Encoded, LoadOptions, ModelInfo
from service.scoring.engines.likelihood import REWARD_KIND, causal_ids
from service.scoring.engines.vllm import count_parameters, open_checkpoint


def mean_logprob(enc: Encoded, prompt_logprobs: Sequence[Mapping[int, Any] | None]) -> float:
    """Mean log p of the scored span's tokens, read from vLLM's per-position dictionaries."""
    ids, span = causal_ids(enc)
    total = 0.0
    for i in span:
        entry = prompt_logprobs[i]
        if entry is None or ids[i] not in entry:
            raise RuntimeError(f"vLLM returned no log-probability for prompt position {i}")
        value = entry[ids[i]]
        total += float(getattr(value, "logprob", value))
    return total / len(span)


class VllmLikelihoodEngine:
    """Scores token-id prompts by their response tokens' mean log-probability with vLLM."""

    padded = False  # vLLM packs sequences: a batch costs the sum of its lengths

    def __init__(self, opts: LoadOptions, **engine_kwargs: Any) -> None:
        from vllm import LLM, SamplingParams

        meta, self.tokenizer, max_length, dtype = open_checkpoint(opts)
        self.score_bias = float(meta.get("score_bias", 0.0))
        self.score_scale = float(meta.get("score_scale", 1.0))
        # +1: the one token that max_tokens=1 generates after the longest prompt
        self.llm = LLM(model=str(opts.path), dtype=dtype, max_model_len=max_length + 1,
                       enforce_eager=not opts.torch_compile, enable_prefix_caching=False,
                       **engine_kwargs)
        self._params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        self.info = ModelInfo(
            name=opts.name, backend="vllm", dtype=dtype, device="cuda", max_length=max_length,
            parameters=count_parameters(self.llm), path=str(opts.path),
            chat_template=bool(getattr(self.tokenizer, "chat_template", None)),
            reward=REWARD_KIND)

    def prepare(self, batch: Sequence[Encoded]) -> tuple[list[Encoded], list[dict[str, Any]]]:
        return list(batch), [{"prompt_token_ids": causal_ids(e)[0]} for e in batch]

    def run(self, prepared: tuple[list[Encoded], list[dict[str, Any]]]) -> list[float]:
        items, prompts = prepared
        outputs = self.llm.generate(prompts, self._params, use_tqdm=False)
        return [self.score_scale * mean_logprob(e, out.prompt_logprobs) + self.score_bias
                for e, out in zip(items, outputs, strict=True)]

    def close(self) -> None:
        del self.llm

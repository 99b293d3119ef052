"""CTranslate2 int8 engine for likelihood models on CPU: `Generator.score_batch` log-probs.

A likelihood checkpoint may carry an int8 CTranslate2 conversion of its weights (built and
measured by training/models/int8.py, rotated, SmoothQuant-rescaled and GPTQ-rounded first:
`INT8_DIR` inside the checkpoint, described under `"int8"` in codereward.json with its
validation pair accuracy next to fp32's). Its log-probabilities differ from fp32's by about a
hundredth of a nat, enough to flip near-tied pairs, so `DTYPE=auto` serves it only where the
checkpoint records a pair accuracy within `INT8_MAX_DROP` of fp32's, measured on a CPU with the
same int8-relevant instruction sets as this one (`cpu_fingerprint`: the kernels CTranslate2
picks round differently); `DTYPE=int8` serves it wherever it exists. Speed against the torch
engine: BENCHMARKS.md §6. It has no prefix sharing: CTranslate2 keeps no KV cache between
calls. Imported lazily (`ctranslate2` is in the service extra).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from service.scoring.engines.base import (
    Encoded,
    LoadOptions,
    ModelInfo,
    model_max_length,
    read_metadata,
)
from service.scoring.engines.likelihood import REWARD_KIND, causal_ids

INT8_DIR = "ctranslate2-int8"
INT8_MAX_DROP = 0.005  # pair accuracy int8 may lose against fp32 and still be chosen by auto


# CPU features that pick CTranslate2's and oneDNN's int8 kernels, whose rounding differs: the
# int8 scores, and so the recorded accuracy, hold for one such set (BENCHMARKS.md §6). The
# checkpoint format: training/models/int8.py records the same fingerprint.
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_fingerprint() -> str:
    """`machine vendor flag...` of this host, e.g. `x86_64 AuthenticAMD avx avx2 fma`."""
    import platform

    vendor, flags = "", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id":
                vendor = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
                break
    return " ".join([platform.machine(), vendor, *(f for f in _ISA_FLAGS if f in flags)])


def int8_refusal(meta: dict[str, Any], cpu: str | None = None) -> str:
    """Why auto may not serve the checkpoint's int8 conversion on this CPU (`cpu`, default
    this host's fingerprint); "" when it was measured within INT8_MAX_DROP of fp32 here."""
    int8 = meta.get("int8")
    if not isinstance(int8, dict):
        return "it carries no measured int8 entry"
    acc, ref = int8.get("val_pair_accuracy"), int8.get("fp32_val_pair_accuracy")
    if not isinstance(acc, int | float) or not isinstance(ref, int | float):
        return "its int8 entry has no validation pair accuracy"
    if float(acc) < float(ref) - INT8_MAX_DROP:
        return (f"its validation pair accuracy ({float(acc):.3f}) is more than "
                f"{100 * INT8_MAX_DROP:.1f} points below fp32's ({float(ref):.3f})")
    measured, here = int8.get("cpu"), cpu or cpu_fingerprint()
    if measured != here:
        return f"it was measured on another kind of CPU ({measured!r}, this one: {here!r})"
    return ""


def has_int8(path: Path) -> bool:
    return (path / INT8_DIR / "model.bin").is_file()


class Ct2LikelihoodEngine:
    """Mean response-token log-probability under the checkpoint's int8 CTranslate2 model."""

    padded = False  # one item per call: a batch costs the sum of its lengths

    def __init__(self, opts: LoadOptions) -> None:
        import ctranslate2
        from transformers import AutoConfig, AutoTokenizer

        if not has_int8(opts.path):
            raise RuntimeError(f"model {opts.name!r}: {opts.path / INT8_DIR} holds no "
                               "CTranslate2 conversion (python -m training.models.int8 PATH)")
        meta = read_metadata(opts.path)
        self.score_bias = float(meta.get("score_bias", 0.0))
        self.score_scale = float(meta.get("score_scale", 1.0))
        self.tokenizer = AutoTokenizer.from_pretrained(str(opts.path), local_files_only=True)
        config = AutoConfig.from_pretrained(str(opts.path), local_files_only=True)
        # CTranslate2 takes token strings: the vocabulary must map ids to strings one to one
        self._tokens = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        if len(set(self._tokens)) != len(self._tokens):
            raise RuntimeError(f"model {opts.name!r}: its vocabulary repeats a token string")
        cores = len(os.sched_getaffinity(0))
        # one item per worker, each on its own core: 119 ms per HumanEval item against 181 ms
        # for one worker of two threads (BENCHMARKS.md §6)
        self.generator = ctranslate2.Generator(
            str(opts.path / INT8_DIR), device="cpu", compute_type="int8_float32",
            inter_threads=max(1, cores), intra_threads=1)
        self.info = ModelInfo(
            name=opts.name, backend="ctranslate2", dtype="int8", device="cpu",
            max_length=model_max_length(config, self.tokenizer, opts.max_length_tokens),
            parameters=int(meta.get("int8", {}).get("parameters", 0)), path=str(opts.path),
            chat_template=bool(getattr(self.tokenizer, "chat_template", None)),
            reward=REWARD_KIND)

    def prepare(self, batch: Sequence[Encoded]) -> list[tuple[list[str], range]]:
        out = []
        for enc in batch:
            ids, span = causal_ids(enc)
            out.append(([self._tokens[i] for i in ids], span))
        return out

    def run(self, prepared: list[tuple[list[str], range]]) -> list[float]:
        # max_input_length=0: the encoder already cut each item to info.max_length; CT2's own
        # default (1,024) would drop the end of a longer one
        futures: list[Future[Any]] = self.generator.score_batch(
            [tokens for tokens, _ in prepared], max_batch_size=1, max_input_length=0,
            asynchronous=True)
        means = []
        for (_, span), fut in zip(prepared, futures, strict=True):
            logps = fut.result().log_probs  # logps[i - 1] = log p(token i | tokens before it)
            means.append(sum(logps[i - 1] for i in span) / len(span))
        return [self.score_scale * m + self.score_bias for m in means]

    def close(self) -> None:
        del self.generator

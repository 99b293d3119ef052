"""An int8 CTranslate2 conversion of a likelihood checkpoint, measured before it may be served.

`python -m training.models.int8 CHECKPOINT` converts CHECKPOINT (a `mean_logprob` export) into
CHECKPOINT/ctranslate2-int8, its hidden states rotated (rotation.py), SmoothQuant-rescaled
(smoothquant.py) and GPTQ-rounded onto the int8 grid (gptq.py) first, the last two from one
calibration pass (calibration.py), scores the
checkpoint's validation pairs (val_pairs.jsonl) with it and records the result under `"int8"`
in codereward.json, next to fp32's accuracy. The service's `DTYPE=auto` serves the conversion
on CPU only where that accuracy is within 0.5 points of fp32's; `DTYPE=int8` serves it
wherever it exists (service/scoring/engines/ct2_likelihood.py). The entry records the CPU
features it was measured with (`cpu_fingerprint`): CTranslate2's int8 kernels, and so the
scores, differ between AVX2, AVX-512 and VNNI, and auto serves the conversion only on a CPU
like the one that measured it. The default build does not run this step: on the default model
int8 landed 1.0 point below fp32 on an AVX-512 CPU and 0.3 above on an AVX2 one (BENCHMARKS.md
§6), and the step takes 4 to 6 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from training.models import calibration, gptq, rotation, smoothquant
from training.models.export import METADATA, read_metadata
from training.models.lm_reward import encode_item, scored_span
from training.problems.loaders import load_bundled

INT8_DIR = "ctranslate2-int8"  # the service reads this name (engines/ct2_likelihood.py)
QUANTIZATION = "int8_float32"  # int8 weights, float32 activations between layers
VERSION = 4  # the recipe, in the entry: 2 SmoothQuant first; 3 and GPTQ rounding; 4 rotation first
CALIBRATION_ITEMS = 64  # items whose inputs set the SmoothQuant scales and GPTQ moments


def calibration_items(exclude: set[str], n: int | None = None) -> list[tuple[str, str]]:
    """(question, reference) of n (CALIBRATION_ITEMS) bundled problems, none of whose
    questions is in `exclude` (the validation questions), in a fixed seeded order."""
    rows = [(p.question, p.reference) for p in load_bundled()
            if p.reference and p.question not in exclude]
    random.Random(0).shuffle(rows)
    return rows[:CALIBRATION_ITEMS if n is None else n]


def convert(checkpoint: Path, items: Sequence[tuple[str, str]], *, tok: Any,
            max_length: int) -> Path:
    """checkpoint/INT8_DIR: the checkpoint's weights rotated (rotation.py), smoothed
    (smoothquant.py) and rounded (gptq.py), the last two from the inputs seen on `items`,
    then converted to int8 (atomic; replaces
    an old one)."""
    import ctranslate2
    import torch
    from transformers import AutoModelForCausalLM

    out = checkpoint / INT8_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{INT8_DIR}.", dir=checkpoint))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(checkpoint), dtype=torch.float32, local_files_only=True).eval()
        rotation.rotate(model)
        stats = calibration.collect(
            model, (encode_item(tok, q, p, max_length)[0] for q, p in items))
        divisors = smoothquant.smooth(model, stats.absmax)
        gptq.quantize(model, calibration.rescaled(stats.moments, divisors))
        smoothed = tmp / "smoothed"
        model.save_pretrained(str(smoothed))
        tok.save_pretrained(str(smoothed))
        del model
        ctranslate2.converters.TransformersConverter(str(smoothed)).convert(
            str(tmp / "ct2"), quantization=QUANTIZATION)
        shutil.rmtree(out, ignore_errors=True)
        (tmp / "ct2").rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def mean_logprobs_int8(ct2_dir: Path, tok: Any, items: Sequence[tuple[str, str]], *,
                       max_length: int, progress: bool = False, desc: str = "int8 scoring"
                       ) -> list[float]:
    """Mean log-probability of each (question, program)'s program tokens under the int8 model:
    the same tokens, span and one-token rule as lm_reward.mean_logprobs."""
    import ctranslate2

    gen = ctranslate2.Generator(str(ct2_dir), device="cpu", compute_type=QUANTIZATION,
                                inter_threads=len(os.sched_getaffinity(0)), intra_threads=1)
    prepared = []
    for q, p in items:
        ids, start = encode_item(tok, q, p, max_length)
        span = scored_span(len(ids), start)
        if len(ids) == 1:  # CT2 gives no log-probability for position 0: send the token twice
            ids, span = ids * 2, range(1, 2)
        prepared.append((tok.convert_ids_to_tokens(ids), span))
    futures = gen.score_batch([t for t, _ in prepared], max_batch_size=1, max_input_length=0,
                              asynchronous=True)  # 0: not cut at CT2's default of 1,024
    out = []
    for (_, span), fut in tqdm(zip(prepared, futures, strict=True), total=len(prepared),
                               desc=desc, unit="prog", disable=not progress):
        logps = fut.result().log_probs
        out.append(sum(logps[i - 1] for i in span) / len(span))
    return out


def measure(checkpoint: Path, val_pairs: Sequence[dict[str, Any]], fp32_accuracy: float, *,
            tok: Any, max_length: int, progress: bool = False) -> dict[str, Any]:
    """Convert, then the int8 model's validation pair accuracy: the `"int8"` metadata entry."""
    t = time.monotonic()
    cal = calibration_items({p["question"] for p in val_pairs})
    ct2_dir = convert(checkpoint, cal, tok=tok, max_length=max_length)
    items = sorted({(p["question"], p[k]) for p in val_pairs for k in ("chosen", "rejected")})
    means = dict(zip(items, mean_logprobs_int8(ct2_dir, tok, items, max_length=max_length,
                                               progress=progress, desc="int8 validation"),
                     strict=True))
    right = sum(means[(p["question"], p["chosen"])] > means[(p["question"], p["rejected"])]
                for p in val_pairs)
    return {"version": VERSION, "engine": "ctranslate2", "dir": INT8_DIR,
            "quantization": QUANTIZATION,
            "rotation": {"seed": rotation.SEED},
            "smoothquant": {"alpha": smoothquant.ALPHA, "calibration_items": len(cal)},
            "gptq": {"block": gptq.BLOCK, "damp": gptq.DAMP, "calibration_items": len(cal)},
            "val_pair_accuracy": right / max(1, len(val_pairs)), "cpu": cpu_fingerprint(),
            "fp32_val_pair_accuracy": fp32_accuracy, "val_pairs": len(val_pairs),
            "parameters": _parameters(checkpoint), "build_s": round(time.monotonic() - t, 1)}


# CPU features that pick CTranslate2's and oneDNN's int8 kernels: the scores measured here hold
# for CPUs with the same set. The checkpoint format: the service compares this fingerprint
# with its own host's (service/scoring/engines/ct2_likelihood.py) before auto serves int8.
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_fingerprint() -> str:
    """`machine vendor flag...` of this host, e.g. `x86_64 AuthenticAMD avx avx2 fma`."""
    import platform

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines()[:40] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return " ".join([platform.machine(), fields.get("vendor_id", ""),
                     *(f for f in _ISA_FLAGS if f in flags)])


def _parameters(checkpoint: Path) -> int:
    from safetensors import safe_open

    total = 0
    for f in checkpoint.glob("*.safetensors"):
        with safe_open(str(f), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 (safe_open is no mapping)
                n = 1
                for d in fh.get_slice(name).get_shape():
                    n *= d
                total += n
    return total


def add_to(checkpoint: Path, *, progress: bool = False) -> dict[str, Any]:
    """Convert and measure a likelihood checkpoint in place; its codereward.json gains "int8"."""
    from transformers import AutoTokenizer

    meta = read_metadata(checkpoint)
    if meta.get("reward_kind") != "mean_logprob":
        raise ValueError(f"{checkpoint}: not a likelihood (mean_logprob) checkpoint")
    fp32 = meta.get("eval", {}).get("val_pair_accuracy")
    pairs_file = checkpoint / "val_pairs.jsonl"
    if fp32 is None or not pairs_file.is_file():
        raise ValueError(f"{checkpoint}: no val_pairs.jsonl and fp32 val_pair_accuracy to "
                         "measure the int8 model against")
    pairs = [json.loads(line) for line in pairs_file.read_text().splitlines() if line.strip()]
    tok = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    meta["int8"] = measure(checkpoint, pairs, float(fp32), tok=tok,
                           max_length=int(meta.get("max_length", 1024)), progress=progress)
    tmp = checkpoint / f".{METADATA}.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp.replace(checkpoint / METADATA)
    return dict(meta["int8"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    args = ap.parse_args(argv)
    try:
        print(json.dumps(add_to(args.checkpoint, progress=True), indent=2))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()

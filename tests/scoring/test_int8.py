"""The int8 CPU path of likelihood models, with real SmolLM2 weights: SmoothQuant keeps the
model's outputs, the CTranslate2 conversion scores close to fp32 torch, `add_to` measures it,
and the registry serves it only where it may."""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from service.config import Settings
from service.metrics import Metrics
from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.base import Encoded
from service.scoring.engines.ct2_likelihood import (
    Ct2LikelihoodEngine,
    cpu_fingerprint,
    int8_refusal,
)
from service.scoring.engines.likelihood import LikelihoodEngine
from service.scoring.models import build_registry, load_engine
from tests.scoring.conftest import load_options
from training.models import calibration, int8, rotation, smoothquant
from training.models.export import METADATA
from training.models.lm_reward import encode_item

pytest.importorskip("ctranslate2")

QUESTION = "Write add(a, b) that returns the sum of a and b."
RIGHT, WRONG = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"


def linked_copy(src: Path, dst: Path, meta: dict[str, Any] | None = None) -> Path:
    """dst with src's files as symlinks (the weights are 540 MB) and its own codereward.json."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != METADATA:
            (dst / f.name).symlink_to(f)
    base = json.loads((src / METADATA).read_text())
    (dst / METADATA).write_text(json.dumps({**base, **(meta or {})}))
    return dst


@pytest.fixture(scope="module")
def int8_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 with validation pairs and its int8 conversion, built by int8.add_to."""
    ck = linked_copy(smollm2_dir, tmp_path_factory.mktemp("int8") / "smol",
                     {"eval": {"val_pair_accuracy": 1.0, "val_pairs": 3}})
    pairs = [{"question": QUESTION, "chosen": RIGHT, "rejected": WRONG},
             {"question": "Write neg(x) returning -x.", "chosen": "def neg(x):\n    return -x\n",
              "rejected": "def neg(x):\n    return x\n"},
             {"question": "Write sq(x) returning x squared.",
              "chosen": "def sq(x):\n    return x * x\n", "rejected": "def sq(x):\n    pass\n"}]
    (ck / "val_pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    int8.CALIBRATION_ITEMS, saved = 8, int8.CALIBRATION_ITEMS  # a short calibration
    try:
        int8.add_to(ck)
    finally:
        int8.CALIBRATION_ITEMS = saved
    return ck


def fp32_model(path: Path) -> tuple[Any, Any, list[int], torch.Tensor]:
    """(tokenizer, fp32 model, one item's ids, its logits) of the checkpoint at `path`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32,
                                                 local_files_only=True).eval()
    ids = encode_item(tok, QUESTION, RIGHT, 512)[0]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    return tok, model, ids, logits


def test_smoothquant_rescales_the_weights_but_keeps_the_outputs(smollm2_dir: Path) -> None:
    tok, model, ids, before = fp32_model(smollm2_dir)
    norm_before = model.model.layers[0].input_layernorm.weight.detach().clone()
    calib = [encode_item(tok, q, p, 512)[0] for q, p in int8.calibration_items(set(), 4)]
    divisors = smoothquant.smooth(model, calibration.collect(model, calib, moments=False).absmax)
    with torch.no_grad():
        after = model(torch.tensor([ids])).logits
    ratio = model.model.layers[0].input_layernorm.weight.detach() / norm_before
    assert float(ratio.max() / ratio.min()) > 10  # channels really were rescaled, unevenly
    assert not model.config.tie_word_embeddings  # the head was untied before its rescaling
    assert torch.allclose(before, after, atol=2e-3, rtol=0)
    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(divisors) == linears  # each layer's input divisor, for GPTQ's moments


def q_proj_peak_ratio(model: Any, ids: list[int]) -> float:
    """Mean over tokens and layers of max|x| / rms(x) of q_proj's input: how outlier-heavy
    the rows CTranslate2 rounds to int8 with one scale each are."""
    ratios: list[torch.Tensor] = []

    def hook(_mod: Any, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0][0]
        ratios.append(x.abs().amax(-1) / x.pow(2).mean(-1).sqrt())

    handles = [layer.self_attn.q_proj.register_forward_pre_hook(hook)
               for layer in model.model.layers]
    with torch.no_grad():
        model(torch.tensor([ids]))
    for h in handles:
        h.remove()
    return float(torch.cat(ratios).mean())


def test_rotation_keeps_the_outputs_and_spreads_the_outliers(smollm2_dir: Path) -> None:
    _, model, ids, before = fp32_model(smollm2_dir)
    peak_before = q_proj_peak_ratio(model, ids)
    embeddings = model.model.embed_tokens.weight.detach().clone()
    rotation.rotate(model)
    with torch.no_grad():
        after = model(torch.tensor([ids])).logits
    assert torch.allclose(before, after, atol=2e-3, rtol=0)
    assert not model.config.tie_word_embeddings
    assert not torch.allclose(model.model.embed_tokens.weight, embeddings, atol=1e-3)
    norms = [model.model.norm] + [n for layer in model.model.layers
                                  for n in (layer.input_layernorm, layer.post_attention_layernorm)]
    assert all(bool((n.weight == 1).all()) for n in norms)  # folded into the readers
    peak_after = q_proj_peak_ratio(model, ids)
    assert peak_after < 0.5 * peak_before, (peak_before, peak_after)


def test_random_orthogonal_is_orthogonal_and_seeded() -> None:
    a = rotation.random_orthogonal(576, torch.Generator().manual_seed(0))
    b = rotation.random_orthogonal(576, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert torch.allclose(a @ a.T, torch.eye(576, dtype=a.dtype), atol=1e-12)
    h = rotation.hadamard(64)
    assert torch.allclose(h @ h.T, torch.eye(64, dtype=h.dtype), atol=1e-12)
    with pytest.raises(ValueError):
        rotation.hadamard(48)


def test_add_to_records_a_measured_conversion(int8_dir: Path) -> None:
    entry = json.loads((int8_dir / METADATA).read_text())["int8"]
    assert (int8_dir / int8.INT8_DIR / "model.bin").is_file()
    assert entry["version"] == int8.VERSION and entry["val_pairs"] == 3
    assert entry["smoothquant"] == {"alpha": smoothquant.ALPHA, "calibration_items": 8}
    assert entry["gptq"]["calibration_items"] == 8
    assert entry["rotation"] == {"seed": rotation.SEED}
    assert entry["val_pair_accuracy"] in (0.0, 1 / 3, 2 / 3, 1.0)
    assert entry["fp32_val_pair_accuracy"] == 1.0 and entry["parameters"] > 100_000_000


def test_calibration_never_uses_validation_questions() -> None:
    every = int8.calibration_items(set(), 10_000)
    some = {q for q, _ in every[:5]}
    rest = int8.calibration_items(some, 10_000)
    assert rest and not some & {q for q, _ in rest}
    assert all(p for _, p in every)  # each item is a reference program


def test_int8_engine_scores_close_to_fp32_torch(int8_dir: Path) -> None:
    ct2 = Ct2LikelihoodEngine(load_options("smol", int8_dir, dtype="int8",
                                           max_length_tokens=512))
    ref = LikelihoodEngine(load_options("smol", int8_dir, max_length_tokens=512))
    enc = ItemEncoder(ref.tokenizer, 512, mark_response=True)
    items = [enc.encode(as_messages(QUESTION, RIGHT)), enc.encode(as_messages(QUESTION, WRONG)),
             enc.encode(as_messages(QUESTION * 40, "def add(a, b): return a+b")),  # truncated
             enc.encode([{"role": "user", "content": QUESTION}]),  # nothing marked: all scored
             Encoded([ref.pad_id + 7]),  # one token: scored against itself
             Encoded([11, 12, 13], score_from=9)]  # past the end: the last token only
    got, want = ct2.run(ct2.prepare(items)), ref.run(ref.prepare(items))
    # nats (the last item is at -21). A token or span off by one moves a mean by nats; the
    # rounding of this 8-item calibration moves it by < 0.1 where the CPU has AVX-512, and by
    # up to 0.3 through oneDNN's AVX2 int8 kernels (measured: BENCHMARKS.md §6)
    assert got == pytest.approx(want, abs=0.4, rel=0.02)
    assert got[0] > got[1]
    assert (ct2.info.backend, ct2.info.dtype, ct2.info.reward) == ("ctranslate2", "int8",
                                                                   "mean_logprob")
    assert ct2.info.max_length == ref.info.max_length


def test_int8_engine_scores_items_longer_than_ctranslate2s_default_cut(int8_dir: Path) -> None:
    # CTranslate2 cuts inputs at 1,024 tokens unless told otherwise; the server's cap may be more
    ct2 = Ct2LikelihoodEngine(load_options("smol", int8_dir, dtype="int8",
                                           max_length_tokens=2048))
    ref = LikelihoodEngine(load_options("smol", int8_dir, max_length_tokens=2048))
    enc = ItemEncoder(ref.tokenizer, 2048, mark_response=True)
    long = enc.encode(as_messages(QUESTION, RIGHT * 90))
    assert 1100 < len(long) <= 2048 and not long.truncated
    got, want = ct2.run(ct2.prepare([long])), ref.run(ref.prepare([long]))
    assert got == pytest.approx(want, abs=0.1, rel=0.02)


def with_int8_accuracy(src: Path, dst: Path, acc: float, **fields: Any) -> Path:
    entry = json.loads((src / METADATA).read_text())["int8"]
    return linked_copy(src, dst, {"int8": {**entry, "val_pair_accuracy": acc,
                                           "fp32_val_pair_accuracy": 0.86, **fields}})


def test_int8_accuracy_holds_only_for_the_cpu_it_was_measured_on(int8_dir: Path,
                                                                 tmp_path: Path) -> None:
    # the conversion records this host's int8-relevant CPU features; another set of them
    # (other kernels, other rounding) or an entry from before the field existed is refused
    meta = json.loads((int8_dir / METADATA).read_text())
    assert meta["int8"]["cpu"] == cpu_fingerprint() == int8.cpu_fingerprint()
    assert cpu_fingerprint().split()[0] == platform.machine()
    assert int8_refusal(meta, cpu=meta["int8"]["cpu"]) == ""
    other = "x86_64 GenuineIntel avx avx2 fma avx512f avx512bw avx512vl avx512_vnni amx_int8"
    assert "measured on another kind of CPU" in int8_refusal(meta, cpu=other)
    old = with_int8_accuracy(int8_dir, tmp_path / "old", 0.86, cpu=None)
    assert "another kind of CPU (None" in int8_refusal(json.loads((old / METADATA).read_text()))
    auto = {"dtype": "auto", "int8": True, "max_length_tokens": 256}
    assert isinstance(load_engine(load_options("o", old, **auto), "torch"), LikelihoodEngine)


def test_auto_serves_int8_only_where_measured_as_accurate(int8_dir: Path,
                                                          tmp_path: Path) -> None:
    good = with_int8_accuracy(int8_dir, tmp_path / "good", 0.857)
    bad = with_int8_accuracy(int8_dir, tmp_path / "bad", 0.842)
    assert int8_refusal(json.loads((good / METADATA).read_text())) == ""
    assert "more than 0.5 points below fp32's (0.860)" in int8_refusal(
        json.loads((bad / METADATA).read_text()))
    auto = {"dtype": "auto", "int8": True, "max_length_tokens": 256}
    assert isinstance(load_engine(load_options("g", good, **auto), "torch"),
                      Ct2LikelihoodEngine)
    assert isinstance(load_engine(load_options("b", bad, **auto), "torch"), LikelihoodEngine)
    # DTYPE=int8 insists: the conversion is served even where it lost accuracy
    explicit = {**auto, "dtype": "int8"}
    assert isinstance(load_engine(load_options("b", bad, **explicit), "torch"),
                      Ct2LikelihoodEngine)


def test_dtype_int8_without_a_conversion_is_a_clear_start_up_error(
        smollm2_dir: Path, tiny_qwen2_dir: Path, int8_dir: Path, tmp_path: Path) -> None:
    explicit = {"dtype": "int8", "int8": True, "max_length_tokens": 256}
    with pytest.raises(RuntimeError, match=r"holds no conversion .*training\.models\.int8"):
        load_engine(load_options("s", smollm2_dir, **explicit), "torch")
    with pytest.raises(RuntimeError, match="likelihood models only"):
        load_engine(load_options("q", tiny_qwen2_dir, **explicit), "torch")
    gpu = load_options("s", int8_dir, **explicit)
    with pytest.raises(RuntimeError, match="CPU only"):
        load_engine(dataclasses.replace(gpu, device="cuda"), "torch")
    # auto without a conversion: fp32 torch, no error
    plain = linked_copy(smollm2_dir, tmp_path / "plain")
    shutil.rmtree(plain / int8.INT8_DIR, ignore_errors=True)
    assert isinstance(load_engine(load_options("p", plain, dtype="auto", int8=True,
                                               max_length_tokens=256), "torch"),
                      LikelihoodEngine)


@pytest.mark.parametrize(("env", "want"), [
    ({}, True),
    ({"dtype": "int8"}, True),
    ({"dtype": "float32"}, False),
    ({"prefix_sharing": "on"}, False),  # the int8 engine has no prefix sharing
    ({"prefix_sharing": "off"}, True),
    ({"device": "cuda", "backend": "torch"}, False),
])
def test_registry_asks_for_int8_on_cpu_unless_told_otherwise(
        env: dict[str, str], want: bool, smollm2_dir: Path) -> None:
    settings = Settings(models=f"smol={smollm2_dir}", **{"device": "cpu", **env})
    registry = build_registry(settings, Metrics())
    assert [s.int8 for s in registry.specs] == [want]

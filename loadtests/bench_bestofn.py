"""Best-of-N and GRPO benchmark: prefix sharing on against off, same model, same run.

    python -m loadtests.bench_bestofn [--model DIR] [--n 4,16,64] [--rounds 2] [--groups 2]

HTTP only: two `python -m service` processes on the same checkpoint (the built-in default
unless --model), one with CODEREWARD_PREFIX_SHARING=on and one with =off, started one after
the other so they never share the CPU. Loads:
- `/rerank` of N HumanEval candidates (the problem's correct solution and mutants, each with
  a distinct comment) to one HumanEval prompt, `rounds` requests per N, one at a time;
- GRPO-shaped `/get_reward` (mode rm): `groups` groups of 8 responses to one prompt, each
  response its own request, all 8 of a group sent at once, groups one after the other.
Prints candidates/s for each load with sharing on and off, their ratio, and the largest score
difference between the two servers (they must agree within 1e-4).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from codereward_client import AsyncCodeRewardClient
from loadtests.bench_rl import _default_model, make_samples, start_server

_GROUP = 8


def _groups(n: int, count: int, seed: int) -> list[list[dict[str, Any]]]:
    """`count` groups of n samples, each group n responses to one HumanEval prompt."""
    pool = make_samples(n * count * 4, seed=seed, tag="bon")
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for s in pool:
        by_prompt.setdefault(s["prompt"], []).append(s)
    groups = []
    for samples in by_prompt.values():
        while len(samples) < n:  # top up with the same prompt's samples, re-tagged
            samples = samples + [{**s, "response": s["response"] + f"\n# {len(samples)}"}
                                 for s in samples]
        groups.append(samples[:n])
        if len(groups) == count:
            break
    return groups


async def _rerank(url: str, groups: list[list[dict[str, Any]]]) -> tuple[float, list[float]]:
    async with AsyncCodeRewardClient(url, max_connections=4) as client:
        start, scores = time.perf_counter(), []
        for g in groups:
            results = await client.rerank(g[0]["prompt"], [s["response"] for s in g])
            scores += [r["score"] for r in sorted(results, key=lambda r: int(r["index"]))]
        return time.perf_counter() - start, scores


async def _grpo(url: str, groups: list[list[dict[str, Any]]]) -> tuple[float, list[float]]:
    async with AsyncCodeRewardClient(url, max_connections=_GROUP) as client:
        start, scores = time.perf_counter(), []
        for g in groups:
            bodies = await asyncio.gather(*[
                client.get_reward([s["prompt"] + s["response"] + "<|im_end|>"], [s["prompt"]],
                                  mode="rm") for s in g])
            scores += [float(b["rewards"][0]) for b in bodies]
        return time.perf_counter() - start, scores


Groups = list[list[dict[str, Any]]]


def _run_server(model: Path, sharing: str, port: int,
                loads: dict[str, Groups]) -> dict[str, tuple[float, list[float]]]:
    with tempfile.TemporaryDirectory() as logs:
        proc = start_server(model, port, Path(logs), {"CODEREWARD_PREFIX_SHARING": sharing})
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(_rerank(url, loads["warm-up"]))
            out = {}
            for name, groups in loads.items():
                if name == "warm-up":
                    continue
                run = _grpo if name.startswith("grpo") else _rerank
                out[name] = asyncio.run(run(url, groups))
                print(f"[bench_bestofn] sharing={sharing} {name}: {out[name][0]:.1f} s",
                      file=sys.stderr, flush=True)
            return out
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model dir (default: the built-in default model)")
    ap.add_argument("--n", default="4,16,64", help="candidates per /rerank, comma-separated")
    ap.add_argument("--rounds", type=int, default=2, help="/rerank requests per N")
    ap.add_argument("--groups", type=int, default=2, help="GRPO groups of 8")
    ap.add_argument("--port", type=int, default=8471)
    args = ap.parse_args(argv)
    model = Path(args.model) if args.model else _default_model()
    if model is None:
        raise SystemExit("no model: build the default (make default-model) or give --model")
    loads = {"warm-up": _groups(2, 1, seed=99)}
    for n in (int(x) for x in args.n.split(",")):
        loads[f"rerank N={n}"] = _groups(n, args.rounds, seed=n)
    loads[f"grpo {args.groups}x{_GROUP}"] = _groups(_GROUP, args.groups, seed=7)
    on = _run_server(model, "on", args.port, loads)
    off = _run_server(model, "off", args.port + 1, loads)
    print("| load | candidates | off cand/s | on cand/s | on/off | max abs score diff |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in on:
        count = len(on[name][1])
        diff = max(abs(a - b) for a, b in zip(on[name][1], off[name][1], strict=True))
        rate_on, rate_off = count / on[name][0], count / off[name][0]
        print(f"| {name} | {count} | {rate_off:.2f} | {rate_on:.2f} | "
              f"{rate_on / rate_off:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()

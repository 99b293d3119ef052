"""Bounded soak run: the RL-like mix against `python -m service` on loopback for a while,
recording throughput, latency percentiles and the service's memory over time.

    python -m loadtests.soak [--duration 600] [--concurrency 16] [--model DIR]
                             [--set CODEREWARD_X=value ...] [--out bench-results]

The service runs as a subprocess (HTTP only; with --model it loads that checkpoint, else its
built-in default model). Writes soak.csv (one row per window), soak.png (throughput, p50/p95/
p99, RSS), soak.md (summary) under --out. Exit status 1 when any request failed other than a
designed 429, or when the service's RSS grew more than --rss-bound-mib after the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from loadtests.scenarios import execute_body, get_reward_body, rerank_body, score_body

MIB = 1024 * 1024
# the RL-like mix: (path, body builder, weight)
MIX = [("/get_reward", lambda r: get_reward_body(r, queries=16), 5),
       ("/score", lambda r: score_body(r, items=8), 2),
       ("/execute-tests", lambda r: execute_body(r, submissions=8), 2),
       ("/rerank", lambda r: rerank_body(r, candidates=8, with_tests=True), 1)]


@dataclass
class Window:
    """Requests finished in one window of the run."""

    start_s: float
    latencies: list[float] = field(default_factory=list)  # seconds, 200s only
    statuses: dict[str, int] = field(default_factory=dict)
    rss_mib: float = 0.0  # service main process
    tree_rss_mib: float = 0.0  # service + its sandbox children


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_service(args: argparse.Namespace, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CODEREWARD_HOST="127.0.0.1", CODEREWARD_PORT=str(port),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if args.model:
        env["CODEREWARD_MODELS"] = f"soak={args.model}"
    for item in args.set:
        key, _, value = item.partition("=")
        env[key] = value
    return subprocess.Popen([sys.executable, "-m", "service"], env=env,
                            stdout=log_path.open("wb"), stderr=subprocess.STDOUT)


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit("the service exited during start-up; see its log")
            try:
                if (await client.get(url + "/readyz", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("the service did not become ready")


async def run_load(url: str, args: argparse.Namespace, windows: list[Window],
                   t0: float) -> None:
    stop_at = t0 + args.duration
    paths, builders, weights = zip(*MIX, strict=True)

    def window_at(now: float) -> Window:
        index = int((now - t0) // args.window)
        while len(windows) <= index:
            windows.append(Window(start_s=len(windows) * args.window))
        return windows[index]

    async def user(seed: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            i = rng.choices(range(len(paths)), weights=weights)[0]
            began = time.monotonic()
            try:
                response = await client.post(paths[i], json=builders[i](rng))
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            now = time.monotonic()
            w = window_at(now)
            w.statuses[status] = w.statuses.get(status, 0) + 1
            if status == "200":
                w.latencies.append(now - began)
            elif status == "429":
                await asyncio.sleep(0.5)  # honour backpressure, as a client should

    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(user(s, client) for s in range(args.concurrency)))


async def sample_memory(pid: int, windows: list[Window], t0: float, stop_at: float,
                        window_s: float) -> None:
    proc = psutil.Process(pid)
    while time.monotonic() < stop_at:
        await asyncio.sleep(min(5.0, window_s / 2))
        now = time.monotonic()
        index = int((now - t0) // window_s)
        while len(windows) <= index:
            windows.append(Window(start_s=len(windows) * window_s))
        main = proc.memory_info().rss
        tree = main + sum(c.memory_info().rss for c in proc.children(recursive=True)
                          if c.is_running())
        w = windows[index]
        w.rss_mib = max(w.rss_mib, main / MIB)
        w.tree_rss_mib = max(w.tree_rss_mib, tree / MIB)


def write_outputs(windows: list[Window], args: argparse.Namespace, out: Path) -> bool:
    """CSV, PNG and markdown; True when the run passed (no failures, memory within bound)."""
    rows = []
    for w in windows:
        n = sum(w.statuses.values())
        rows.append({"t_s": w.start_s, "requests": n, "rps": n / args.window,
                     "ok": w.statuses.get("200", 0), "r429": w.statuses.get("429", 0),
                     "failed": n - w.statuses.get("200", 0) - w.statuses.get("429", 0),
                     "p50_ms": _pct(w.latencies, 0.50) * 1000,
                     "p95_ms": _pct(w.latencies, 0.95) * 1000,
                     "p99_ms": _pct(w.latencies, 0.99) * 1000,
                     "rss_mib": w.rss_mib, "tree_rss_mib": w.tree_rss_mib})
    with (out / "soak.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out / "soak.png")

    all_lat = [x for w in windows for x in w.latencies]
    statuses: dict[str, int] = {}
    for w in windows:
        for k, v in w.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    total = sum(statuses.values())
    failed = total - statuses.get("200", 0) - statuses.get("429", 0)
    warm = [r for r in rows if r["t_s"] >= args.warmup and r["rss_mib"] > 0]
    rss_start = warm[0]["rss_mib"] if warm else float("nan")
    rss_max = max((r["rss_mib"] for r in warm), default=float("nan"))
    rss_end = warm[-1]["rss_mib"] if warm else float("nan")
    growth = rss_max - rss_start
    slope = _slope([(r["t_s"], r["rss_mib"]) for r in warm]) * 3600  # MiB per hour
    ok = failed == 0 and growth <= args.rss_bound_mib
    lines = [
        f"# Soak: {args.duration / 60:.0f} min, {args.concurrency} concurrent clients, "
        f"RL-like mix ({', '.join(f'{p} x{w}' for p, _, w in MIX)})",
        "",
        "| metric | value |", "| --- | --- |",
        f"| requests | {total} ({total / args.duration:.1f} req/s) |",
        f"| statuses | {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} |",
        f"| failed (not 200, not designed 429) | {failed} |",
        f"| latency p50 / p95 / p99 (200s) | {_pct(all_lat, .5) * 1000:.0f} / "
        f"{_pct(all_lat, .95) * 1000:.0f} / {_pct(all_lat, .99) * 1000:.0f} ms |",
        f"| per-window p99, min..max | {min(r['p99_ms'] for r in rows):.0f}..."
        f"{max(r['p99_ms'] for r in rows):.0f} ms |",
        f"| service RSS after warm-up ({args.warmup:.0f} s): start / max / end | "
        f"{rss_start:.0f} / {rss_max:.0f} / {rss_end:.0f} MiB |",
        f"| RSS growth after warm-up (bound {args.rss_bound_mib:.0f} MiB) | {growth:.1f} MiB |",
        f"| RSS trend (least squares) | {slope:+.1f} MiB/hour |",
        f"| service + sandbox children RSS, max | "
        f"{max(r['tree_rss_mib'] for r in rows):.0f} MiB |",
        f"| verdict | {'PASS' if ok else 'FAIL'} |",
        "", f"Windows of {args.window:.0f} s: soak.csv; plot: soak.png.", "",
    ]
    (out / "soak.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return ok


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def _plot(rows: list[dict[str, float]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_s"] / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    axes[0].plot(t, [r["rps"] for r in rows], label="requests/s")
    axes[0].plot(t, [r["r429"] / max(1, r["requests"]) * 100 for r in rows], label="429 %")
    axes[0].legend()
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        axes[1].plot(t, [r[key] for r in rows], label=key.removesuffix("_ms"))
    axes[1].set_ylabel("latency (ms)")
    axes[1].legend()
    axes[2].plot(t, [r["rss_mib"] for r in rows], label="service RSS")
    axes[2].plot(t, [r["tree_rss_mib"] for r in rows], label="service + sandbox children")
    axes[2].set_ylabel("MiB")
    axes[2].set_xlabel("minutes")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


async def main_async(args: argparse.Namespace) -> bool:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_service(args, port, out / "soak-service.log")
    try:
        await wait_ready(url, proc, args.start_timeout)
        windows: list[Window] = []
        t0 = time.monotonic()
        await asyncio.gather(run_load(url, args, windows, t0),
                             sample_memory(proc.pid, windows, t0, t0 + args.duration,
                                           args.window))
        if proc.poll() is not None:
            print("the service died during the soak", file=sys.stderr)
            return False
        return write_outputs([w for w in windows if w.start_s < args.duration], args, out)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--window", type=float, default=30.0, help="seconds per CSV row")
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds before the memory baseline is taken")
    parser.add_argument("--rss-bound-mib", type=float, default=64.0,
                        help="allowed growth of the service RSS after the warm-up")
    parser.add_argument("--model", help="checkpoint dir (default: the built-in model)")
    parser.add_argument("--set", action="append", default=[], metavar="CODEREWARD_X=V",
                        help="extra service setting (repeatable)")
    parser.add_argument("--start-timeout", type=float, default=600.0)
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    ok = asyncio.run(main_async(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

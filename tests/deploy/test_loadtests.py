"""The locust scenarios run clean against the real app (a short headless run)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USERS = ["ScoreUser", "RerankUser", "ExecuteUser", "RewardUser", "RLUser"]


def test_every_locust_scenario_succeeds(live: str, tmp_path: Path) -> None:
    locust = shutil.which("locust", path=str(Path(sys.executable).parent)) or "locust"
    run = subprocess.run(
        [locust, "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
         "-u", str(len(USERS)), "-r", str(len(USERS)), "-t", "8s", "--host", live,
         "--csv", str(tmp_path / "run"), "--only-summary", "--stop-timeout", "30", *USERS],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with (tmp_path / "run_stats.csv").open() as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    for name in ("/score", "/execute-tests", "/get_reward"):
        assert int(stats[name]["Request Count"]) > 0, name
        assert int(stats[name]["Failure Count"]) == 0, name
    assert any(n.startswith("/rerank") for n in stats)
    assert int(stats["Aggregated"]["Failure Count"]) == 0

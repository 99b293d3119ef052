"""The whole service: registry built from settings in the lifespan, real sandbox, real HTTP."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from service.http.app import create_app
from service.metrics import Metrics
from service.scoring.models import build_registry
from tests.servers import run_uvicorn


def test_missing_default_model_fails_with_the_build_command(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path)
    with pytest.raises(RuntimeError, match=r"python -m training\.default_model"):
        build_registry(settings, Metrics())
    bad = Settings(_env_file=None, models=f"m={tmp_path / 'nowhere'}")
    with pytest.raises(RuntimeError, match="not a checkpoint dir"):
        build_registry(bad, Metrics())


def test_default_model_comes_from_home(tmp_path: Path, tiny_bert_dir: Path) -> None:
    shutil.copytree(tiny_bert_dir, tmp_path / "default-model")
    (tmp_path / "default-model" / "codereward.json").write_text(json.dumps({"name": "dflt"}))
    registry = build_registry(Settings(_env_file=None, home=tmp_path, device="cpu"), Metrics())
    assert registry.names() == ["dflt"] and registry.backend == "torch"
    assert not registry.ready()


@pytest.mark.parametrize(("pack", "device", "packed"),
                         [("auto", "cpu", True), ("off", "cpu", False), ("on", "cpu", True)])
def test_packing_and_cpu_budget_come_from_settings(tiny_bert_dir: Path, pack: str, device: str,
                                                    packed: bool) -> None:
    settings = Settings(_env_file=None, models=f"m={tiny_bert_dir}", device=device,
                        pack_sequences=pack, max_batch_tokens_cpu=1000)
    registry = build_registry(settings, Metrics())
    assert registry.specs[0].packed is packed
    assert registry.limits.max_batch_tokens_cpu == 1000


def wait_ready(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while httpx.get(url + "/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "service never became ready"
        time.sleep(0.2)


def test_served_end_to_end_with_real_sandbox(tiny_bert_dir: Path, tiny_qwen2_dir: Path) -> None:
    settings = Settings(_env_file=None, models=f"qwen={tiny_qwen2_dir},bert={tiny_bert_dir}",
                        device="cpu", backend="auto", sandbox_workers=2, max_queue_items=3)
    with run_uvicorn(create_app(settings)) as url:
        wait_ready(url)
        models = httpx.get(url + "/models", timeout=10).json()
        assert models["default"] == "qwen" and [m["name"] for m in models["models"]] == [
            "qwen", "bert"]
        candidates = ["def double(x):\n    return x + x", "def double(x):\n    return x",
                      "def double(x):\n    return 2 * x"]
        r = httpx.post(url + "/rerank", timeout=60, json={
            "prompt": "Write double(x).", "candidates": candidates,
            "tests": ["assert double(2) == 4", "assert double(0) == 0", "assert double(-1) == -2"]})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["pass_rate"] for x in results] == [1.0, 1.0, pytest.approx(1 / 3)]
        assert results[2]["index"] == 1
        assert results[0]["score"] >= results[1]["score"]
        # the queue holds 3 items: a 4-item request is refused at once with Retry-After
        item = {"prompt": "p", "response": "r"}
        over = httpx.post(url + "/score", json={"items": [item] * 4}, timeout=30)
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
        ok = httpx.post(url + "/score", json={"items": [item] * 3, "model": "bert"}, timeout=30)
        assert ok.status_code == 200 and len(ok.json()["scores"]) == 3
        text = httpx.get(url + "/metrics", timeout=10).text
        for name in ("codereward_score_batch_size", "codereward_score_padding_ratio",
                     'codereward_score_stage_seconds_count{model="bert",stage="queue"}',
                     "codereward_score_queue_items", "codereward_score_model_seconds"):
            assert name in text

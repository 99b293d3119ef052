"""CODEREWARD_MODELS=none: an execution-only service (real sandbox, no reward model)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sandbox_worker.executor import Executor
from service.config import Settings
from service.execution.sandbox import LocalSandbox
from service.http.app import create_app
from service.metrics import Metrics
from service.scoring.models import model_paths

GOOD = "def add(a, b):\n    return a + b"
TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]


@pytest.fixture
def http(executor: Executor) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, models="none")
    metrics = Metrics()
    sandbox = LocalSandbox(executor, workers=2, max_pending=100, metrics=metrics)
    app = create_app(settings, sandbox=sandbox, metrics=metrics)  # registry from settings
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.05)
        yield client


def test_none_means_no_model_not_the_default() -> None:
    assert Settings(_env_file=None, models="none").models_disabled()
    assert Settings(_env_file=None, models=" None ").model_specs() == []
    assert model_paths(Settings(_env_file=None, models="none")) == []
    assert not Settings(_env_file=None).models_disabled()


def test_execution_works_and_scoring_is_a_clear_404(http: TestClient) -> None:
    ready = http.get("/readyz").json()
    assert ready["models"] is True and ready["sandbox"]["ready"] is True
    body = {"submissions": [{"id": "a", "code": GOOD, "tests": TESTS}]}
    r = http.post("/execute-tests", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["pass_rate"] == 1.0
    reward = http.post("/get_reward", json={"query": [f"```python\n{GOOD}\n```"],
                                             "labels": [TESTS], "mode": "tests"})
    assert reward.status_code == 200, reward.text
    assert reward.json()["rewards"] == [1.0]
    for path, payload in [
        ("/score", {"items": [{"prompt": "p", "response": "r"}]}),
        ("/get_reward", {"query": ["x"], "labels": [TESTS], "mode": "hybrid"}),
        ("/rerank", {"prompt": "p", "candidates": ["a", "b"]}),
    ]:
        r = http.post(path, json=payload)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert "CODEREWARD_MODELS=none" in r.text
    models = http.get("/models")
    assert models.status_code == 200
    assert models.json() == {"default": None, "models": []}

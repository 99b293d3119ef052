"""Fixtures for deployment checks: rendered kustomize overlays."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.kustomize import render

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

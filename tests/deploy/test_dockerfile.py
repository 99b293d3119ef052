"""The Dockerfile: targets exist, copies resolve, ports and healthchecks match the code."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest

from service.config import Settings
from service.http.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    name: str
    base: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (instruction, arguments)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.lines if i == instruction]


def parse_dockerfile(path: Path) -> dict[str, Stage]:
    """Stages by name; continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = rest.split()
            assert len(parts) == 3 and parts[1].upper() == "AS", f"unnamed stage: {line}"
            current = stages[parts[2]] = Stage(parts[2], parts[0])
        elif current is not None:
            current.lines.append((instruction, rest.strip()))
    return stages


def dockerignored(relpath: str) -> bool:
    """Whether .dockerignore keeps `relpath` out of the context (last matching rule wins)."""
    ignored = False
    for rule in (ROOT / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        parts = relpath.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern == "**" or any(fnmatch(p, pattern) or fnmatch(p, pattern.replace("**/", ""))
                                  for p in prefixes):
            ignored = not negate
    return ignored


STAGES = parse_dockerfile(ROOT / "Dockerfile")


def test_targets_exist_and_run_as_non_root() -> None:
    assert {"service", "worker"} <= set(STAGES)
    for target in ("service", "worker"):
        users = STAGES[target].args("USER")
        assert users and not users[-1].startswith(("0", "root")), target
        assert STAGES[target].args("HEALTHCHECK"), target
        assert STAGES[target].args("ENTRYPOINT") == ['["tini", "--"]'], "SIGTERM reaches python"


def test_every_copy_source_is_in_the_build_context() -> None:
    copies = 0
    for stage in STAGES.values():
        for args in stage.args("COPY"):
            words = shlex.split(args)
            if any(w.startswith("--from") for w in words):
                source_stage = next(w for w in words if w.startswith("--from")).split("=")[1]
                assert source_stage in STAGES, f"COPY from unknown stage {source_stage}"
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
            for source in sources:
                copies += 1
                assert (ROOT / source).exists(), f"{stage.name}: COPY {source} missing"
                assert not dockerignored(source), f"{source} is excluded by .dockerignore"
    assert copies >= 5


def test_dockerignore_keeps_junk_out() -> None:
    assert dockerignored(".venv/bin/python")
    assert dockerignored("service/__pycache__/app.cpython-311.pyc")
    assert not dockerignored("service/http/app.py")


def test_stage_bases_are_known() -> None:
    for stage in STAGES.values():
        assert stage.base in STAGES or stage.base.startswith("${PYTHON_IMAGE}"), stage.name


def test_service_port_and_healthcheck_match_the_app() -> None:
    service = STAGES["service"]
    env = " ".join(service.args("ENV"))
    port = int(re.search(r"CODEREWARD_PORT=(\d+)", env).group(1))  # type: ignore[union-attr]
    assert service.args("EXPOSE") == [str(port)]
    assert port == Settings.model_fields["port"].default
    assert "CODEREWARD_HOST=0.0.0.0" in env
    paths = create_app(Settings()).openapi()["paths"]
    (healthcheck,) = service.args("HEALTHCHECK")
    path = re.search(r"(/[a-z]+)'", healthcheck).group(1)  # type: ignore[union-attr]
    assert "get" in paths[path]
    assert path == "/healthz", "liveness, not readiness: a loading model is not a dead one"
    assert service.args("CMD") == ['["python", "-m", "service"]']
    assert (ROOT / "service" / "__main__.py").exists()


def test_worker_port_and_healthcheck_match_the_worker() -> None:
    from sandbox_worker.config import WorkerSettings
    worker = STAGES["worker"]
    default_port = WorkerSettings.model_fields["worker_metrics_port"].default
    assert worker.args("EXPOSE") == [str(default_port)]
    (healthcheck,) = worker.args("HEALTHCHECK")
    assert "CODEREWARD_WORKER_METRICS_PORT" in healthcheck and f"'{default_port}'" in healthcheck
    assert worker.args("CMD") == ['["python", "-m", "sandbox_worker"]']
    assert (ROOT / "sandbox_worker" / "__main__.py").exists()


def _extra_requirements(extra: str, seen: set[str] | None = None) -> set[str]:
    """Requirement names an extra pulls, following codereward[...] self-references."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    seen = seen or set()
    names = {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in project["dependencies"]}
    for req in project["optional-dependencies"][extra]:
        nested = re.fullmatch(r"codereward\[(.+)\]", req)
        if nested:
            for sub in nested.group(1).split(","):
                if sub not in seen:
                    seen.add(sub)
                    names |= _extra_requirements(sub.strip(), seen)
        else:
            names.add(re.split(r"[<>=\[ ;]", req, maxsplit=1)[0].lower())
    return names


@pytest.mark.parametrize("heavy", ["torch", "transformers", "fastapi", "vllm"])
def test_worker_image_installs_no_heavy_packages(heavy: str) -> None:
    runs = " ".join(STAGES["worker-build"].args("RUN"))
    installs = " ".join(re.findall(r"pip install ([^&]+)", runs))
    assert installs.strip() == '"/src[worker]"'
    assert heavy not in _extra_requirements("worker")
    assert f"'{heavy}'" in runs, "the build itself fails if a heavy package sneaks in"


def test_service_image_installs_torch_and_the_service_extra() -> None:
    installs = " ".join(STAGES["service-build"].args("RUN"))
    assert "torch==${TORCH_VERSION}" in installs and '"/src[service]"' in installs
    assert {"torch", "fastapi", "uvicorn"} <= _extra_requirements("service")


def test_make_image_builds_both_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--target service" in makefile and "--target worker" in makefile

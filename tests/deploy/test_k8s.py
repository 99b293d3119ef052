"""deploy/k8s: every overlay renders, validates against the Kubernetes schemas, and is wired
to the real code (settings names, routes, ports, labels, queue names)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
from kubernetes_validate.utils import ValidationError

from service.config import Settings
from service.http.app import create_app
from tests.deploy.conftest import K8S, OVERLAYS, kubectl_render
from tests.deploy.kustomize import render

Obj = dict[str, Any]
# oldest supported (appArmorProfile in securityContext is 1.30+) and the newest schemas
K8S_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
WORKLOADS = {"Deployment", "StatefulSet"}


def by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def pod_specs(objs: list[Obj]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o["spec"]["template"] for o in objs if o["kind"] in WORKLOADS}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def container(objs: list[Obj], deployment: str) -> Obj:
    return by_kind(objs, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"][0]


# --- rendering and schema validation ---------------------------------------------------------

@pytest.mark.parametrize("name", OVERLAYS)
def test_our_renderer_matches_kubectl_kustomize(name: str) -> None:
    """The fallback renderer (for CI without kubectl) gives what the real kustomize gives."""
    directory = K8S / "overlays" / name
    real = kubectl_render(directory)
    if real is None:
        pytest.skip("kubectl not installed: the fallback renderer is what the other tests use")
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, real)) == sorted(map(key, render(directory)))
    ours = {key(o): o for o in render(directory)}
    for obj in real:
        assert ours[key(obj)] == obj, key(obj)


def validate_keda(obj: Obj) -> None:
    """KEDA CRDs have no bundled schema: check the fields KEDA requires and the trigger shape."""
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    spec = obj["spec"]
    if obj["kind"] == "TriggerAuthentication":
        for ref in spec["secretTargetRef"]:
            assert set(ref) == {"parameter", "name", "key"}
        return
    assert obj["kind"] == "ScaledObject"
    assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount",
                         "pollingInterval", "cooldownPeriod", "triggers", "advanced",
                         "fallback", "idleReplicaCount", "initialCooldownPeriod"}
    assert spec["scaleTargetRef"]["name"]
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["triggers"]
    for trigger in spec["triggers"]:
        assert set(trigger) <= {"type", "metadata", "authenticationRef", "name", "metricType"}
        assert trigger["type"] == "redis-streams"
        meta = trigger["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata values are strings"
        allowed = {"address", "host", "port", "stream", "consumerGroup", "pendingEntriesCount",
                   "streamLength", "lagCount", "activationLagCount", "databaseIndex",
                   "enableTLS", "usernameFromEnv", "passwordFromEnv", "addressFromEnv"}
        assert set(meta) <= allowed, set(meta) - allowed
        assert meta["stream"] and meta["consumerGroup"]
        modes = {"pendingEntriesCount", "streamLength", "lagCount"} & set(meta)
        assert len(modes) == 1, "one scaling mode per trigger"
        assert int(meta[modes.pop()]) > 0


def test_every_object_validates(overlay: tuple[str, list[Obj]]) -> None:
    name, objs = overlay
    assert objs, name
    for obj in objs:
        if obj["apiVersion"].startswith("keda.sh/"):
            validate_keda(obj)
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_validation_catches_a_misspelled_field() -> None:
    """Negative control: strict schema validation is not a no-op."""
    deployment = copy.deepcopy(by_kind(render(K8S / "overlays" / "cpu"), "Deployment")
                               ["codereward-service"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


# --- wiring: labels, ports, routes, settings -------------------------------------------------

def test_selectors_match_pod_labels(overlay: tuple[str, list[Obj]]) -> None:
    _, objs = overlay
    pods = pod_specs(objs)
    for workload in (o for o in objs if o["kind"] in WORKLOADS):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selects(workload["spec"]["selector"]["matchLabels"], labels)
    selectors = [o["spec"]["selector"] for o in objs if o["kind"] == "Service"]
    selectors += [o["spec"]["selector"]["matchLabels"]
                  for o in objs if o["kind"] == "PodDisruptionBudget"]
    selectors += [o["spec"]["podSelector"]["matchLabels"]
                  for o in objs if o["kind"] == "NetworkPolicy"]
    for selector in selectors:
        assert any(selects(selector, p["metadata"]["labels"]) for p in pods.values()), selector
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for obj in by_kind(objs, kind).values():
            ref = obj["spec"]["scaleTargetRef"]
            assert ref["name"] in by_kind(objs, ref.get("kind", "Deployment"))


def test_service_ports_reach_container_ports(overlay: tuple[str, list[Obj]]) -> None:
    _, objs = overlay
    pods = pod_specs(objs)
    for svc in by_kind(objs, "Service").values():
        targets = [p for p in pods.values() if selects(svc["spec"]["selector"],
                                                      p["metadata"]["labels"])]
        for port in svc["spec"]["ports"]:
            declared = [(cp["name"], cp["containerPort"]) for p in targets
                        for c in p["spec"]["containers"] for cp in c.get("ports", [])]
            assert any(port["targetPort"] in pair for pair in declared), (svc, declared)


def test_api_port_is_the_configured_port(overlay: tuple[str, list[Obj]]) -> None:
    _, objs = overlay
    service = container(objs, "codereward-service")
    config = by_kind(objs, "ConfigMap")["codereward-service-config"]["data"]
    port = int(config.get("CODEREWARD_PORT", Settings.model_fields["port"].default))
    assert [p["containerPort"] for p in service["ports"] if p["name"] == "http"] == [port]
    annotations = by_kind(objs, "Deployment")["codereward-service"]["spec"]["template"][
        "metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port
    assert config["CODEREWARD_HOST"] == "0.0.0.0", "pods must listen beyond loopback"


def test_probes_hit_real_routes(overlay: tuple[str, list[Obj]]) -> None:
    _, objs = overlay
    paths = create_app(Settings()).openapi()["paths"]
    routes = {path for path, ops in paths.items() if "get" in ops}
    service = container(objs, "codereward-service")
    assert service["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert service[probe]["httpGet"]["path"] in routes
        assert service[probe]["httpGet"]["port"] == "http"
    annotations = by_kind(objs, "Deployment")["codereward-service"]["spec"]["template"][
        "metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in routes


def env_of(objs: list[Obj], deployment: str) -> dict[str, str]:
    """The environment a Deployment's first container gets from its ConfigMaps and Secrets."""
    env: dict[str, str] = {}
    for source in container(objs, deployment).get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_kind(objs, "ConfigMap")[source["configMapRef"]["name"]]["data"])
        else:
            env.update(by_kind(objs, "Secret")[source["secretRef"]["name"]]["stringData"])
    for var in container(objs, deployment).get("env", []):
        env[var["name"]] = var.get("value", "")
    return env


def settings_from(cls: type[Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build a settings class from exactly `env` (values are type-checked by pydantic)."""
    for key in [k for k in os.environ if k.startswith("CODEREWARD_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cls(_env_file=None)


def test_service_env_names_are_settings(overlay: tuple[str, list[Obj]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _, objs = overlay
    env = env_of(objs, "codereward-service")
    fields = set(Settings.model_fields)
    unknown = {k for k in env if k.removeprefix("CODEREWARD_").lower() not in fields}
    assert not unknown, f"not service settings: {unknown}"
    assert all(k.startswith("CODEREWARD_") for k in env)
    settings = settings_from(Settings, env, monkeypatch)
    assert settings.redis_url, "in a cluster, execution goes to the worker fleet"
    assert settings.production


def test_grace_periods_nest(overlay: tuple[str, list[Obj]]) -> None:
    """preStop sleep + the service's drain must end before the kubelet's SIGKILL."""
    _, objs = overlay
    pod = by_kind(objs, "Deployment")["codereward-service"]["spec"]["template"]["spec"]
    env = env_of(objs, "codereward-service")
    grace = float(env.get("CODEREWARD_SHUTDOWN_GRACE_S",
                          Settings.model_fields["shutdown_grace_s"].default))
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > float(command[1]) + grace


def test_containers_are_locked_down(overlay: tuple[str, list[Obj]]) -> None:
    _, objs = overlay
    for name, pod in pod_specs(objs).items():
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["spec"]["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert "privileged" not in sc, name
            assert c["resources"]["limits"]["memory"], name


def test_gpu_only_in_the_gpu_overlay(overlay: tuple[str, list[Obj]]) -> None:
    name, objs = overlay
    resources = container(objs, "codereward-service")["resources"]
    has_gpu = "nvidia.com/gpu" in resources.get("limits", {})
    assert has_gpu == (name == "gpu")
    env = env_of(objs, "codereward-service")
    if name == "gpu":
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
        assert env["CODEREWARD_DEVICE"] == "cuda"
    for image in (container(objs, d)["image"] for d in ("codereward-service",
                                                        "codereward-worker")):
        assert not image.endswith(":latest"), "overlays pin image tags"


def test_workers_reach_only_redis_and_dns(overlay: tuple[str, list[Obj]]) -> None:
    name, objs = overlay
    policy = by_kind(objs, "NetworkPolicy")["codereward-worker"]["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    metrics_port = int(env_of(objs, "codereward-worker")["CODEREWARD_WORKER_METRICS_PORT"])
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": metrics_port}]}]
    redis_rule, dns_rule = policy["egress"]
    assert {p["port"] for p in dns_rule["ports"]} == {53}
    assert dns_rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    redis_port = urlparse(redis_url(objs, "codereward-worker")).port or 6379
    assert [p["port"] for p in redis_rule["ports"]] == [redis_port]
    if name != "external-redis":
        redis_pods = pod_specs(objs)["codereward-redis"]["metadata"]["labels"]
        assert selects(redis_rule["to"][0]["podSelector"]["matchLabels"], redis_pods)


def redis_url(objs: list[Obj], deployment: str) -> str:
    return env_of(objs, deployment)["CODEREWARD_REDIS_URL"]


def test_everyone_uses_the_same_redis(overlay: tuple[str, list[Obj]]) -> None:
    name, objs = overlay
    url = redis_url(objs, "codereward-service")
    assert redis_url(objs, "codereward-worker") == url
    trigger = by_kind(objs, "ScaledObject")["codereward-worker"]["spec"]["triggers"][0]
    parsed = urlparse(url)
    assert trigger["metadata"]["address"] == f"{parsed.hostname}:{parsed.port}"
    assert trigger["metadata"].get("databaseIndex", "0") == (parsed.path.strip("/") or "0")
    if name != "external-redis":
        assert parsed.hostname in by_kind(objs, "Service")


def test_redis_persists(overlay: tuple[str, list[Obj]]) -> None:
    name, objs = overlay
    if name == "external-redis":
        assert "codereward-redis" not in by_kind(objs, "StatefulSet")
        return
    sts = by_kind(objs, "StatefulSet")["codereward-redis"]
    claims = [c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]]
    mounts = [m["name"] for m in sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]]
    assert "data" in claims and "data" in mounts
    conf = by_kind(objs, "ConfigMap")["codereward-redis-config"]["data"]["redis.conf"]
    assert "appendonly yes" in conf and "dir /data" in conf


def test_paths_exist() -> None:
    """Every file a kustomization names exists (kustomize fails late on a typo)."""
    import yaml
    for kust in Path(K8S).rglob("kustomization.yaml"):
        spec = yaml.safe_load(kust.read_text())
        for item in spec.get("resources", []) + [p["path"] for p in spec.get("patches", [])]:
            assert (kust.parent / item).exists(), (kust, item)


def test_worker_env_names_are_worker_settings(overlay: tuple[str, list[Obj]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox_worker.config import WorkerSettings
    _, objs = overlay
    env = env_of(objs, "codereward-worker")
    unknown = {k for k in env
               if k.removeprefix("CODEREWARD_").lower() not in WorkerSettings.model_fields}
    assert not unknown, f"not worker settings: {unknown}"
    settings = settings_from(WorkerSettings, env, monkeypatch)
    assert settings.production and settings.redis_url
    worker = container(objs, "codereward-worker")
    metrics = [p["containerPort"] for p in worker["ports"] if p["name"] == "metrics"]
    assert metrics == [settings.worker_metrics_port]
    assert worker["livenessProbe"]["httpGet"]["port"] == "metrics"


def test_keda_watches_the_workers_stream_and_group(overlay: tuple[str, list[Obj]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox_worker.config import WorkerSettings
    from sandbox_worker.queue import GROUP, QueueKeys
    _, objs = overlay
    settings = settings_from(WorkerSettings, env_of(objs, "codereward-worker"), monkeypatch)
    trigger = by_kind(objs, "ScaledObject")["codereward-worker"]["spec"]["triggers"][0]
    assert trigger["metadata"]["stream"] == QueueKeys(settings.queue_prefix).stream
    assert trigger["metadata"]["consumerGroup"] == GROUP
    assert "lagCount" in trigger["metadata"]


def test_only_the_worker_loosens_seccomp_for_user_namespaces(
        overlay: tuple[str, list[Obj]]) -> None:
    """The sandbox's needs (see worker.yaml) are granted to the worker pod and nobody else."""
    _, objs = overlay
    for name, pod in pod_specs(objs).items():
        spec = pod["spec"]
        seccomp = spec["securityContext"]["seccompProfile"]["type"]
        if name == "codereward-worker":
            assert seccomp == "Unconfined" and spec["hostUsers"] is False
            assert spec["containers"][0]["securityContext"]["procMount"] == "Unmasked"
        else:
            assert seccomp == "RuntimeDefault", name
            assert "procMount" not in spec["containers"][0]["securityContext"], name

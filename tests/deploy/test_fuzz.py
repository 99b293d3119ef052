"""Schemathesis against the live app's OpenAPI: no 5xx, and every documented status reachable.

The app is real: a tiny random BERT reward model and the real LocalSandbox (bubblewrap).
Fuzzing (positive and negative bodies) finds most statuses; targeted requests reach the ones a
fuzzer cannot (401 needs keys, 413 a big body, 503 a draining server).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from service.http.app import create_app
from tests.deploy.conftest import app_settings
from tests.servers import run_uvicorn

EXAMPLES = 20  # per operation and mode: ~8 operations x 2 modes, well under a minute
KEY = "fuzz-key"
# the error table of API.md: statuses a route may answer beyond what its OpenAPI lists
API_ERRORS = {400, 401, 404, 413, 422, 429, 503, 504}


def fuzz_operation(url: str, operation: schemathesis.APIOperation, mode: GenerationMode,
                   seen: set[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, timeout=60)
        seen.add(response.status_code)
        assert response.status_code < 500, (case.path, case.body, response.text[:500])
        if response.status_code >= 400 and response.status_code != 422:
            assert set(response.json()) <= {"detail", "request_id"}, response.text[:300]

    run()


def documented(url: str) -> dict[tuple[str, str], set[int]]:
    spec = httpx.get(url + "/openapi.json").json()
    return {(method.upper(), path): {int(s) for s in op["responses"]}
            for path, ops in spec["paths"].items() for method, op in ops.items()}


def test_fuzz_finds_no_5xx_and_reaches_documented_statuses(live: str, tiny_model: Path) -> None:
    schema = schemathesis.openapi.from_url(live + "/openapi.json")
    observed: dict[tuple[str, str], set[int]] = defaultdict(set)
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        has_input = operation.method.upper() == "POST"
        for mode in ([GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if has_input
                     else [GenerationMode.POSITIVE]):
            fuzz_operation(live, operation, mode, observed[key])

    docs = documented(live)
    targeted(tiny_model, docs, observed)
    for key, statuses in docs.items():
        assert statuses <= observed[key], f"{key}: documented {statuses - observed[key]} unseen"
        extra = observed[key] - statuses - {200}
        assert extra <= API_ERRORS, f"{key}: undocumented statuses {extra}"


def targeted(model: Path, docs: dict[tuple[str, str], set[int]],
             observed: dict[tuple[str, str], set[int]]) -> None:
    """401, 413 and 503 on an app with keys and a small body limit, then draining."""
    app = create_app(app_settings(model, api_keys=KEY, max_body_bytes=1024))
    big = json.dumps({"pad": "x" * 2048})
    auth = {"Authorization": f"Bearer {KEY}"}
    with run_uvicorn(app, ready_path="/readyz") as url, httpx.Client(base_url=url,
                                                                     timeout=30) as client:
        for (method, path), statuses in docs.items():
            api = 401 in statuses
            if api:
                observed[(method, path)].add(client.request(method, path).status_code)
                wrong = {"Authorization": "Bearer nope"}
                assert client.request(method, path, headers=wrong).status_code == 401
            if 413 in statuses:
                r = client.request(method, path, content=big, headers={
                    **auth, "content-type": "application/json"})
                observed[(method, path)].add(r.status_code)
            if method == "POST":
                r = client.request(method, path, json=[], headers=auth)
                observed[(method, path)].add(r.status_code)
        app.state.draining = True
        for method, path in docs:
            r = client.request(method, path, headers=auth,
                               json={} if method == "POST" else None)
            observed[(method, path)].add(r.status_code)
            if path != "/readyz" and r.status_code == 503:
                assert r.headers.get("retry-after"), (method, path)
        app.state.draining = False

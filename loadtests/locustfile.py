"""Locust scenarios for codereward (HTTP only).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000            # web UI, all users
    locust -f loadtests/locustfile.py --host URL --headless -u 32 -r 8 -t 2m RLUser

User classes: ScoreUser (/score), RerankUser (/rerank, half with tests), ExecuteUser
(/execute-tests), RewardUser (/get_reward) and RLUser, a mixed RL-like profile: bursts of
rollout scoring (/get_reward), pass rates for the same rollouts (/execute-tests) and the odd
best-of-N (/rerank). 429 (backpressure) is designed behaviour: counted as success, and
reported separately at the end. CODEREWARD_API_KEY, when set, is sent as the bearer key.
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import HttpUser, between, events, task

from loadtests.scenarios import (
    execute_body,
    get_reward_body,
    rerank_body,
    score_body,
)

BACKPRESSURE = {"429": 0}


class _Api(HttpUser):
    abstract = True
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        self.rng = random.Random(id(self))
        key = os.environ.get("CODEREWARD_API_KEY")
        if key:
            self.client.headers["Authorization"] = f"Bearer {key}"

    def post(self, path: str, body: dict[str, Any], name: str | None = None) -> None:
        with self.client.post(path, json=body, name=name or path, catch_response=True) as r:
            if r.status_code == 429:
                BACKPRESSURE["429"] += 1
                r.success()
            elif r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")


class ScoreUser(_Api):
    @task
    def score(self) -> None:
        self.post("/score", score_body(self.rng, items=self.rng.choice([1, 4, 16])))


class RerankUser(_Api):
    @task
    def rerank(self) -> None:
        with_tests = self.rng.random() < 0.5
        self.post("/rerank", rerank_body(self.rng, candidates=8, with_tests=with_tests),
                  name="/rerank+tests" if with_tests else "/rerank")


class ExecuteUser(_Api):
    @task
    def execute(self) -> None:
        self.post("/execute-tests", execute_body(self.rng, submissions=4, slow_fraction=0.02))


class RewardUser(_Api):
    @task
    def reward(self) -> None:
        self.post("/get_reward", get_reward_body(self.rng, queries=8))


class RLUser(_Api):
    """One RL trainer's view: mostly reward scoring of rollouts, then pass rates, some rerank."""

    wait_time = between(0.0, 0.1)

    @task(6)
    def rollout_rewards(self) -> None:
        self.post("/get_reward", get_reward_body(self.rng, queries=16))

    @task(3)
    def rollout_pass_rates(self) -> None:
        self.post("/execute-tests", execute_body(self.rng, submissions=8))

    @task(1)
    def best_of_n(self) -> None:
        self.post("/rerank", rerank_body(self.rng, candidates=8, with_tests=True),
                  name="/rerank+tests")


@events.test_stop.add_listener
def _report_backpressure(**_: Any) -> None:
    print(f"designed 429 (backpressure) answers: {BACKPRESSURE['429']}")

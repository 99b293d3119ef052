"""Request bodies for load and soak runs (HTTP only: no project imports, stdlib only).

A few small coding problems, each with a correct and a buggy solution and its asserts; bodies
are drawn from them with a seeded RNG so runs are repeatable.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    prompt: str
    good: str
    bad: str
    tests: tuple[str, ...]


PROBLEMS = (
    Problem("Write a function add(a, b) that returns the sum of a and b.",
            "def add(a, b):\n    return a + b\n",
            "def add(a, b):\n    return a - b\n",
            ("assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(0, 0) == 0")),
    Problem("Write a function is_palindrome(s) that tells whether s reads the same backwards.",
            "def is_palindrome(s):\n    return s == s[::-1]\n",
            "def is_palindrome(s):\n    return s == sorted(s)\n",
            ("assert is_palindrome('abba')", "assert not is_palindrome('abc')",
             "assert is_palindrome('')")),
    Problem("Write a function fib(n) returning the n-th Fibonacci number, fib(0) == 0.",
            "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
            "    return a\n",
            "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 3)\n",
            ("assert fib(0) == 0", "assert fib(1) == 1", "assert fib(10) == 55")),
    Problem("Write a function count_vowels(s) that counts the vowels (aeiou) in s.",
            "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s.lower())\n",
            "def count_vowels(s):\n    return len([c for c in s if c in 'aeiouy'])\n",
            ("assert count_vowels('hello') == 2", "assert count_vowels('sky') == 0",
             "assert count_vowels('AEIOU') == 5")),
    Problem("Write a function flatten(xs) that flattens a list of lists one level.",
            "def flatten(xs):\n    return [y for x in xs for y in x]\n",
            "def flatten(xs):\n    return sum(xs)\n",
            ("assert flatten([[1], [2, 3]]) == [1, 2, 3]", "assert flatten([]) == []")),
)

# a program that runs into its time limit: keeps the sandbox's timeout path under load too
SLOW = "import time\n\ndef add(a, b):\n    time.sleep(30)\n"


def _solution(rng: random.Random, problem: Problem) -> str:
    return problem.good if rng.random() < 0.5 else problem.bad


def score_body(rng: random.Random, items: int = 8) -> dict[str, Any]:
    """POST /score: prompt/response pairs, half correct, with some longer padding comments."""
    out = []
    for _ in range(items):
        p = rng.choice(PROBLEMS)
        pad = "# " + "explanation " * rng.randint(0, 40) + "\n"
        out.append({"prompt": p.prompt, "response": pad + _solution(rng, p)})
    return {"items": out}


def rerank_body(rng: random.Random, candidates: int = 4, with_tests: bool = False
                ) -> dict[str, Any]:
    """POST /rerank: best-of-N candidates for one problem, optionally executed too."""
    p = rng.choice(PROBLEMS)
    body: dict[str, Any] = {"prompt": p.prompt,
                            "candidates": [_solution(rng, p) for _ in range(candidates)],
                            "top_k": 2}
    if with_tests:
        body["tests"] = list(p.tests)
    return body


def execute_body(rng: random.Random, submissions: int = 4, slow_fraction: float = 0.0
                 ) -> dict[str, Any]:
    """POST /execute-tests: correct, buggy and (optionally) time-limit-hitting programs."""
    subs = []
    for i in range(submissions):
        p = rng.choice(PROBLEMS)
        code = SLOW if rng.random() < slow_fraction else _solution(rng, p)
        tests = list(p.tests) if code is not SLOW else ["assert add(1, 2) == 3"]
        subs.append({"id": str(i), "code": code, "tests": tests})
    return {"submissions": subs, "timeout_s": 1.0}


def chatml(prompt: str, response: str) -> str:
    """A rollout as a Qwen/ChatML policy decodes it (special tokens kept)."""
    return (f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
            f"```python\n{response}```<|im_end|>")


def get_reward_body(rng: random.Random, queries: int = 8, with_tests: bool = False
                    ) -> dict[str, Any]:
    """POST /get_reward: OpenRLHF-style decoded rollouts, labels carrying tests when asked."""
    problems = [rng.choice(PROBLEMS) for _ in range(queries)]
    body: dict[str, Any] = {"query": [chatml(p.prompt, _solution(rng, p)) for p in problems]}
    if with_tests:
        body["labels"] = [json.dumps(list(p.tests)) for p in problems]
    return body

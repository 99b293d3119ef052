"""Turn trainer-side prompts/completions into /get_reward texts the server parses exactly."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Messages = Sequence[Mapping[str, Any]]


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, list):  # multimodal-style parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return str(content)


def prompt_text(prompt: str | Messages | None) -> str:
    """A plain prompt as is; a message list rendered as ChatML up to an open assistant turn."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    turns = [f"<|im_start|>{m.get('role', 'user')}\n{_content(m)}<|im_end|>\n" for m in prompt]
    return "".join(turns) + "<|im_start|>assistant\n"


def completion_text(completion: str | Messages) -> str:
    """A completion string, or the text of the assistant messages of a conversational one."""
    if isinstance(completion, str):
        return completion
    return "".join(_content(m) for m in completion if m.get("role", "assistant") == "assistant")


def as_query(prompt: str | Messages | None, completion: str | Messages) -> tuple[str, str]:
    """(query, prompt) for /get_reward: the query starts with the prompt, so the cut is exact."""
    head = prompt_text(prompt)
    return head + completion_text(completion), head


def as_label(tests: Any) -> Any:
    """Tests as /get_reward takes them: a list of asserts, an AceCode row, or JSON text."""
    if tests is None:
        return None
    if isinstance(tests, str | list | dict):
        return tests
    if hasattr(tests, "tolist"):  # numpy arrays from parquet datasets
        return tests.tolist()
    return json.loads(json.dumps(tests, default=list))

"""Recover chat turns from a policy's full decoded text (prompt + response, special tokens kept).

OpenRLHF decodes each rollout with special tokens and posts that text as `query`. We find the
turns so the reward model can re-render them with its own chat template:

1. When `prompt` is given and the query starts with it, the rest of the query is the response
   (the most reliable cut: the response may itself contain template-looking text). The
   prompt's own turns are parsed from it when it is chat-formatted, else it is one user turn.
2. Else a known chat format is parsed from the query: ChatML/Qwen (`<|im_start|>`), Llama-3
   (`<|start_header_id|>`), Gemma (`<start_of_turn>`), DeepSeek (`<｜User｜>`) or
   Mistral (`[INST]`).
3. Else (unknown format) the fallback is explicit: format `unknown`, the given prompt (or an
   empty user turn) as the user turn, and the whole query as the response.

Pad, BOS and EOS tokens are stripped from the ends of every turn. System turns are dropped
unless asked for (AceCoder reward models are trained on user + assistant turns only).
This module never raises on any input text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

Message = dict[str, str]

# Tokens that only pad or delimit; stripped from the ends of the query and of every turn.
_EDGE_TOKENS = (
    "<|endoftext|>", "<|end_of_text|>", "<|begin_of_text|>", "<|im_end|>", "<|eot_id|>",
    "<|eom_id|>", "<|end|>", "<|pad|>", "<|finetune_right_pad_id|>", "</s>", "<s>", "<pad>",
    "[PAD]", "<eos>", "<bos>", "<end_of_turn>", "<｜end▁of▁sentence｜>",
    "<｜begin▁of▁sentence｜>", "<|fim_pad|>",
)
_EDGE = "|".join(re.escape(t) for t in _EDGE_TOKENS)
_LEADING = re.compile(rf"^(?:\s|{_EDGE})+")


class ChatFormat(StrEnum):
    """How the turns were recovered."""

    PROMPT_PREFIX = "prompt_prefix"
    CHATML = "chatml"
    LLAMA3 = "llama3"
    GEMMA = "gemma"
    DEEPSEEK = "deepseek"
    MISTRAL = "mistral"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Conversation:
    """Recovered turns (user/assistant, last one the response) and the format they came from."""

    messages: list[Message] = field(default_factory=list)
    format: ChatFormat = ChatFormat.UNKNOWN

    @property
    def prompt(self) -> str:
        """The last user turn (the question)."""
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else ""

    @property
    def response(self) -> str:
        """The final assistant turn (the policy's answer)."""
        last = self.messages[-1] if self.messages else None
        return last["content"] if last and last["role"] == "assistant" else ""


def _clean(text: str) -> str:
    text = _LEADING.sub("", text)
    # a loop, not a `...+$` regex: that backtracks quadratically on long whitespace runs
    while True:
        stripped = text.rstrip()
        for token in _EDGE_TOKENS:
            if stripped.endswith(token):
                stripped = stripped[: -len(token)]
                break
        if stripped == text:
            return text
        text = stripped


# (format, pattern with groups role+content, role renames); a turn ends at its end token,
# at the next turn's start, or at the end of the text (a response cut at max length).
_TURN_PATTERNS: list[tuple[ChatFormat, re.Pattern[str], dict[str, str]]] = [
    (ChatFormat.CHATML, re.compile(
        r"<\|im_start\|>(\w+)\n?(.*?)(?:<\|im_end\|>|(?=<\|im_start\|>)|\Z)", re.DOTALL), {}),
    (ChatFormat.LLAMA3, re.compile(
        r"<\|start_header_id\|>(\w+)<\|end_header_id\|>(.*?)"
        r"(?:<\|eot_id\|>|<\|eom_id\|>|(?=<\|start_header_id\|>)|\Z)", re.DOTALL), {}),
    (ChatFormat.GEMMA, re.compile(
        r"<start_of_turn>(\w+)\n?(.*?)(?:<end_of_turn>|(?=<start_of_turn>)|\Z)", re.DOTALL),
     {"model": "assistant"}),
    (ChatFormat.DEEPSEEK, re.compile(
        r"<｜(User|Assistant)｜>(.*?)(?:<｜end▁of▁sentence｜>|(?=<｜(?:User|Assistant)｜>)|\Z)",
        re.DOTALL), {"User": "user", "Assistant": "assistant"}),
]


def _parse_chat(text: str, keep_system: bool) -> tuple[list[Message], ChatFormat] | None:
    """Turns of a chat-formatted text, or None when no known format is present."""
    for fmt, pattern, renames in _TURN_PATTERNS:
        found = pattern.findall(text)
        if not found:
            continue
        messages: list[Message] = []
        for role, content in found:
            role = renames.get(role, role)
            if role in ("user", "assistant") or (role == "system" and keep_system):
                messages.append({"role": role, "content": _clean(content)})
        return messages, fmt
    if "[INST]" in text and "[/INST]" in text:
        messages = []  # str.split, linear: a lazy regex is quadratic on many open [INST]
        for part in text.split("[INST]")[1:]:
            user, sep, answer = part.partition("[/INST]")
            messages.append({"role": "user", "content": _clean(user)})
            if sep:
                messages.append({"role": "assistant", "content": _clean(answer)})
        return messages, ChatFormat.MISTRAL
    return None


def _open_assistant(messages: list[Message]) -> list[Message]:
    """Drop a trailing empty assistant turn (a generation prompt)."""
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        return messages[:-1]
    return messages


def _with_response(messages: list[Message], response: str) -> list[Message]:
    return [*messages, {"role": "assistant", "content": _clean(response)}]


def split_turns(query: str, prompt: str | None = None, *,
                keep_system: bool = False) -> Conversation:
    """Recover the conversation in `query`; `prompt` is the exact prompt text when known."""
    if prompt:
        start = _LEADING.sub("", query)
        bare_prompt = _LEADING.sub("", prompt)
        if bare_prompt and start.startswith(bare_prompt):
            parsed = _parse_chat(bare_prompt, keep_system)
            if parsed is not None and parsed[0]:
                turns = _open_assistant(parsed[0])
            else:
                turns = [{"role": "user", "content": _clean(bare_prompt)}]
            response = start[len(bare_prompt):]
            return Conversation(_with_response(turns, response), ChatFormat.PROMPT_PREFIX)
    parsed = _parse_chat(query, keep_system)
    if parsed is not None and any(m["role"] == "user" for m in parsed[0]):
        messages, fmt = parsed
        if messages[-1]["role"] != "assistant":
            messages.append({"role": "assistant", "content": ""})  # nothing generated
        return Conversation(messages, fmt)
    user = _clean(prompt) if prompt else ""
    return Conversation(_with_response([{"role": "user", "content": user}], query),
                        ChatFormat.UNKNOWN)

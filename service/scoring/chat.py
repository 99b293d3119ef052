"""Render score items to token ids: the model's chat template, or a plain pair format.

Templated models: the chat-template text, tokenized with the tokenizer's own special tokens
(e.g. BERT's [CLS]/[SEP]) unless the text already starts with BOS — as the trainer does.

Plain format (models without a chat template, e.g. BERT cross-encoders): the item becomes a
tokenizer *pair* (prompt side, response side). The response side is the content of the last
message when it is an assistant turn (else empty). The prompt side is the content of a single
user turn, or for longer conversations every earlier turn as `role: content` joined by blank
lines. Truncation drops tokens from the start, so the end of the response (where decoders
read the score) is always kept.

Likelihood models (`mark_response`) also get `score_from`, the index of the first token of
the final assistant turn: the tokens they average over. Without a final assistant turn every
token is scored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from service.errors import Unprocessable
from service.scoring.engines.base import Encoded

Message = Mapping[str, str]
ScoreItem = Sequence[Message]


def as_messages(prompt: str, response: str) -> list[dict[str, str]]:
    """A prompt + response item as a user turn and an assistant turn."""
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def plain_pair(messages: ScoreItem) -> tuple[str, str]:
    """(prompt side, response side) of the documented plain format."""
    msgs = list(messages)
    response = ""
    if msgs and msgs[-1]["role"] == "assistant":
        response = msgs.pop()["content"]
    if len(msgs) == 1 and msgs[0]["role"] == "user":
        return msgs[0]["content"], response
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in msgs), response


class ItemEncoder:
    """Tokenizes items for one model; thread-safe (tokenizers' Rust encoder takes &self)."""

    def __init__(self, tokenizer: Any, max_length: int, *, mark_response: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.mark_response = mark_response
        self.templated = bool(getattr(tokenizer, "chat_template", None))
        # a private copy without the padding/truncation a checkpoint may have configured
        self._backend = copy.deepcopy(tokenizer.backend_tokenizer)
        self._backend.no_padding()
        self._backend.no_truncation()
        self._pair_specials = int(tokenizer.num_special_tokens_to_add(pair=True))
        self._single_specials = int(tokenizer.num_special_tokens_to_add(pair=False))

    def render(self, messages: ScoreItem) -> str:
        """The chat-template text of an item (templated models only)."""
        try:
            text = self.tokenizer.apply_chat_template(
                [dict(m) for m in messages], tokenize=False, add_generation_prompt=False)
        except Exception as exc:  # templates raise on role orders they do not support
            raise Unprocessable(f"the model's chat template rejected the item: {exc}") from exc
        return str(text)

    def encode(self, messages: ScoreItem) -> Encoded:
        """Token ids of one item, cut from the start to `max_length`."""
        if self.templated:
            text = self.render(messages)
            bos = getattr(self.tokenizer, "bos_token", None)
            # as HF and our trainer do: the tokenizer's specials unless the template put BOS in
            specials = not (bos and text.startswith(bos))
            body = self._backend.encode(text, add_special_tokens=False)
            start = self._response_start(messages, text, body.offsets)
            budget = max(1, self.max_length - (self._single_specials if specials else 0))
            dropped = max(0, len(body) - budget)
            if dropped:
                body.truncate(budget, direction="left")
            enc = self._backend.post_process(body, None, add_special_tokens=specials)
            lead = _leading_specials(enc.special_tokens_mask)
            return Encoded(input_ids=list(enc.ids), truncated=dropped > 0,
                           score_from=max(0, start - dropped) + lead if start else 0)
        prompt, response = plain_pair(messages)
        first = self._backend.encode(prompt, add_special_tokens=False)
        second = self._backend.encode(response, add_special_tokens=False)
        budget = max(1, self.max_length - self._pair_specials)
        truncated = len(first) + len(second) > budget
        if truncated:
            if len(second) >= budget:
                second.truncate(budget, direction="left")
                first.truncate(0, direction="left")
            else:
                first.truncate(budget - len(second), direction="left")
        enc = self._backend.post_process(first, second, add_special_tokens=True)
        score_from = 0
        if self.mark_response and response:
            score_from = next((i for i, s in enumerate(enc.sequence_ids) if s == 1), 0)
        return Encoded(input_ids=list(enc.ids), token_type_ids=list(enc.type_ids),
                       truncated=truncated, score_from=score_from)

    def _response_start(self, messages: ScoreItem, text: str,
                        offsets: Sequence[tuple[int, int]]) -> int:
        """Token index (in the untruncated body) where the final assistant turn starts."""
        msgs = [dict(m) for m in messages]
        if not self.mark_response or not msgs or msgs[-1]["role"] != "assistant":
            return 0
        try:
            prefix = str(self.tokenizer.apply_chat_template(
                msgs[:-1], tokenize=False, add_generation_prompt=True)) if msgs[:-1] else ""
        except Exception:  # e.g. a template that rejects a conversation ending on a user turn
            prefix = ""
        if prefix and text.startswith(prefix):
            cut = len(prefix)
        else:  # templates whose generation prompt differs from the rendered turn
            cut = max(0, text.rfind(msgs[-1]["content"]))
        return sum(1 for lo, _ in offsets if lo < cut)


def _leading_specials(mask: Sequence[int]) -> int:
    """Special tokens the post-processor put before the text (e.g. BOS, [CLS])."""
    lead = 0
    for flag in mask:
        if not flag:
            break
        lead += 1
    return lead

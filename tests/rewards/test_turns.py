"""split_turns: recover (user, assistant) turns from policy texts in common chat formats."""

from __future__ import annotations

import pytest

from service.rewards.turns import ChatFormat, split_turns

QWEN_PROMPT = ("<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWrite add(a, b)."
               "<|im_end|>\n<|im_start|>assistant\n")
RESPONSE = "```python\ndef add(a, b):\n    return a + b\n```"


def _pair(conv_messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in conv_messages]


def test_chatml_with_eos_and_padding() -> None:
    conv = split_turns(QWEN_PROMPT + RESPONSE + "<|im_end|><|endoftext|><|endoftext|>")
    assert conv.format is ChatFormat.CHATML
    assert _pair(conv.messages) == [("user", "Write add(a, b)."), ("assistant", RESPONSE)]


def test_system_turn_kept_on_request() -> None:
    conv = split_turns(QWEN_PROMPT + RESPONSE, keep_system=True)
    assert [m["role"] for m in conv.messages] == ["system", "user", "assistant"]


def test_prompt_prefix_cut_is_exact_even_with_template_text_in_response() -> None:
    tricky = "print('<|im_start|>user\\nhi')"
    conv = split_turns(QWEN_PROMPT + tricky + "<|im_end|>", QWEN_PROMPT)
    assert conv.format is ChatFormat.PROMPT_PREFIX
    assert conv.prompt == "Write add(a, b)."
    assert conv.response == tricky


def test_plain_prompt_prefix() -> None:
    conv = split_turns("Write add.\ndef add(a, b): return a + b</s>", "Write add.")
    assert conv.format is ChatFormat.PROMPT_PREFIX
    assert _pair(conv.messages) == [("user", "Write add."),
                                    ("assistant", "def add(a, b): return a + b")]


def test_prompt_prefix_ignores_leading_bos() -> None:
    conv = split_turns("<s>Q?\nA.", "Q?")
    assert (conv.prompt, conv.response) == ("Q?", "A.")


def test_llama3() -> None:
    text = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWrite f.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\ndef f(): pass<|eot_id|>"
            "<|end_of_text|><|end_of_text|>")
    conv = split_turns(text)
    assert conv.format is ChatFormat.LLAMA3
    assert _pair(conv.messages) == [("user", "Write f."), ("assistant", "def f(): pass")]


def test_gemma_deepseek_mistral() -> None:
    gemma = split_turns("<bos><start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>")
    assert (gemma.format, gemma.prompt, gemma.response) == (ChatFormat.GEMMA, "Q", "A")
    deepseek = split_turns("<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜>A<｜end▁of▁sentence｜>")
    assert (deepseek.format, deepseek.prompt, deepseek.response) == (ChatFormat.DEEPSEEK, "Q", "A")
    mistral = split_turns("<s>[INST] Q [/INST] A</s>")
    assert (mistral.format, mistral.prompt, mistral.response) == (ChatFormat.MISTRAL, "Q", "A")


def test_multi_turn_keeps_order_and_last_answer_is_response() -> None:
    text = ("<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2")
    conv = split_turns(text)
    assert _pair(conv.messages) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2"),
                                    ("assistant", "A2")]
    assert (conv.prompt, conv.response) == ("Q2", "A2")


def test_response_cut_at_max_length_has_no_end_token() -> None:
    conv = split_turns(QWEN_PROMPT + "def add(a, b):\n    return (a")
    assert conv.response == "def add(a, b):\n    return (a"


def test_empty_generation_gives_empty_response() -> None:
    conv = split_turns(QWEN_PROMPT)
    assert (conv.prompt, conv.response) == ("Write add(a, b).", "")


def test_unknown_format_falls_back_to_whole_text() -> None:
    conv = split_turns("just some code\nx = 1")
    assert conv.format is ChatFormat.UNKNOWN
    assert _pair(conv.messages) == [("user", ""), ("assistant", "just some code\nx = 1")]


def test_unknown_format_with_non_prefix_prompt_keeps_prompt() -> None:
    conv = split_turns("x = 1", "a prompt that is not a prefix")
    assert conv.format is ChatFormat.UNKNOWN
    assert (conv.prompt, conv.response) == ("a prompt that is not a prefix", "x = 1")


@pytest.mark.parametrize("text", ["", " " * 200_000 + "x", "[INST]" * 30_000,
                                  "<|im_start|>" * 20_000, "<|im_start|>user" * 10_000,
                                  "<|start_header_id|>" * 20_000, "\x00\udcff"])
def test_hostile_texts_never_raise(text: str) -> None:
    for prompt in (None, text[:100]):
        conv = split_turns(text, prompt)
        assert conv.messages[-1]["role"] == "assistant"

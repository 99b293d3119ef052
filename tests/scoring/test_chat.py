"""Chat rendering (template and plain pair format) and truncation that keeps the response end."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from service.scoring.chat import ItemEncoder, as_messages, plain_pair

CHAT = as_messages("Write add(a, b).", "def add(a, b):\n    return a + b")


def test_templated_item_renders_with_the_models_chat_template(tiny_qwen2_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_qwen2_dir))
    encoder = ItemEncoder(tok, 4096)
    text = encoder.render(CHAT)
    assert text == ("<|im_start|>user\nWrite add(a, b).<|im_end|>\n"
                    "<|im_start|>assistant\ndef add(a, b):\n    return a + b<|im_end|>\n")
    enc = encoder.encode(CHAT)
    assert enc.input_ids == tok(text, add_special_tokens=False)["input_ids"]
    assert not enc.truncated and enc.token_type_ids is None


def test_plain_format_is_a_tokenizer_pair(tiny_bert_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    enc = ItemEncoder(tok, 128).encode(CHAT)
    expected = tok("Write add(a, b).", "def add(a, b):\n    return a + b")
    assert enc.input_ids == expected["input_ids"]
    assert enc.token_type_ids == expected["token_type_ids"]


def test_plain_pair_of_longer_conversations() -> None:
    msgs = [{"role": "system", "content": "be terse"}, {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "final"}]
    assert plain_pair(msgs) == ("system: be terse\n\nuser: q\n\nassistant: a1\n\nuser: q2", "final")
    assert plain_pair([{"role": "user", "content": "only"}]) == ("only", "")


def test_truncation_keeps_the_end_of_the_response(tiny_qwen2_dir: Path,
                                                  tiny_bert_dir: Path) -> None:
    long_code = "".join(f"x{i} = {i}\n" for i in range(400)) + "return the_end"
    item = as_messages("a long prompt " * 50, long_code)
    qwen = AutoTokenizer.from_pretrained(str(tiny_qwen2_dir))
    full = ItemEncoder(qwen, 100_000).encode(item)
    cut = ItemEncoder(qwen, 64).encode(item)
    assert cut.truncated and len(cut) == 64 and cut.input_ids == full.input_ids[-64:]
    assert qwen.decode(cut.input_ids).endswith("return the_end<|im_end|>\n")

    bert = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    cut = ItemEncoder(bert, 32).encode(item)
    assert cut.truncated and len(cut) == 32
    text = bert.decode(cut.input_ids)
    assert text.startswith("[CLS]") and text.endswith("return the _ end [SEP]")
    # a short response keeps the end of the prompt and all of the response
    short = ItemEncoder(bert, 32).encode(as_messages("word " * 100 + "LAST", "ok"))
    assert bert.decode(short.input_ids).endswith("last [SEP] ok [SEP]")


def test_a_template_that_rejects_the_item_is_a_422(tiny_qwen2_dir: Path) -> None:
    import pytest

    from service.errors import Unprocessable

    tok = AutoTokenizer.from_pretrained(str(tiny_qwen2_dir))
    tok.chat_template = ("{% if messages[0]['role'] != 'user' %}"
                         "{{ raise_exception('first turn must be the user') }}{% endif %}x")
    with pytest.raises(Unprocessable) as err:
        ItemEncoder(tok, 64).encode([{"role": "assistant", "content": "hi"}])
    assert err.value.status_code == 422 and "first turn" in err.value.detail

"""extract_code: fenced, several, unterminated, indented and bare responses."""

from __future__ import annotations

import ast

import pytest

from sandbox_worker.extract import extract_code

F = "```"


def test_single_python_block_with_prose_around() -> None:
    text = f"Here is my solution:\n{F}python\ndef add(a, b):\n    return a + b\n{F}\nIt adds."
    assert extract_code(text) == "def add(a, b):\n    return a + b"


@pytest.mark.parametrize("tag", ["python", "py", "Python3", "", "python {linenos}"])
def test_fence_tags(tag: str) -> None:
    assert extract_code(f"{F}{tag}\nx = 1\n{F}") == "x = 1"


def test_tilde_fence_and_longer_backtick_fence() -> None:
    assert extract_code("~~~python\nx = 1\n~~~") == "x = 1"
    assert extract_code("````python\ns = '```'\n````") == "s = '```'"


def test_last_defining_block_wins_over_usage_example() -> None:
    text = (f"{F}python\ndef f(x):\n    return x\n{F}\nBetter:\n{F}python\ndef f(x):\n"
            f"    return x + 1\n{F}\nUsage:\n{F}python\nprint(f(1))\n{F}")
    assert extract_code(text) == "def f(x):\n    return x + 1"


def test_helper_block_is_prepended_when_used() -> None:
    text = (f"{F}python\nimport math\n\ndef helper(x):\n    return math.sqrt(x)\n{F}\n"
            f"{F}python\ndef solve(x):\n    return helper(x) * 2\n{F}")
    code = extract_code(text)
    assert code.startswith("import math")
    namespace: dict[str, object] = {}
    exec(compile(code, "<test>", "exec"), namespace)
    assert namespace["solve"](4) == 4.0  # type: ignore[operator]


def test_unrelated_earlier_block_is_not_prepended() -> None:
    text = f"{F}python\ndef other():\n    pass\n{F}\n{F}python\ndef solve():\n    return 1\n{F}"
    assert extract_code(text) == "def solve():\n    return 1"


def test_python_blocks_beat_other_languages() -> None:
    text = f"{F}bash\npip install x\n{F}\n{F}python\ndef f():\n    return 1\n{F}\n{F}text\nout\n{F}"
    assert extract_code(text) == "def f():\n    return 1"


def test_only_other_language_blocks_fall_back_to_them() -> None:
    assert extract_code(f"{F}cpp\nint main() {{}}\n{F}") == "int main() {}"


def test_unterminated_fence_runs_to_end() -> None:
    text = f"Sure.\n{F}python\ndef f(x):\n    return x * 2\n"
    assert extract_code(text) == "def f(x):\n    return x * 2"


def test_indented_fence_in_list_item_is_dedented() -> None:
    text = f"1. Do it:\n   {F}python\n   def f():\n       return 1\n   {F}\n"
    assert extract_code(text) == "def f():\n    return 1"


def test_bare_code_is_whole_text() -> None:
    code = "def f(x):\n    return x\n"
    assert extract_code(code) == code.strip("\n")


def test_bare_code_with_leading_and_trailing_prose() -> None:
    text = "Here is the function:\ndef f(x):\n    return x\n\nThis returns its input."
    code = extract_code(text)
    assert code == "def f(x):\n    return x"
    ast.parse(code)


def test_think_section_is_ignored() -> None:
    text = (f"<think>maybe {F}python\ndef bad(): pass\n{F}</think>\n"
            f"{F}python\ndef good():\n    return 1\n{F}")
    assert extract_code(text) == "def good():\n    return 1"


def test_crlf_and_empty_inputs() -> None:
    assert extract_code(f"{F}python\r\nx = 1\r\n{F}\r\n") == "x = 1"
    assert extract_code("") == ""
    assert extract_code(f"{F}python\n{F}") == ""


def test_prose_only_is_returned_as_is() -> None:
    assert extract_code("I cannot solve this.") == "I cannot solve this."


@pytest.mark.parametrize("text", ["`" * 10_000, "~~~\n" * 5000, "def (" * 10_000, "(" * 100_000,
                                  "\n".join(["x = 1", "prose here"] * 2000)])
def test_hostile_inputs_never_raise(text: str) -> None:
    assert isinstance(extract_code(text), str)

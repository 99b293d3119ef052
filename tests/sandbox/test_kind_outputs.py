"""Output comparison of the stdio kind (pure, no sandbox)."""

from __future__ import annotations

import pytest

from sandbox_worker.kinds import outputs


@pytest.mark.parametrize(("got", "want", "mode", "ok"), [
    ("3\n", "3", "tokens", True),
    ("1  2\n3\n", "1 2 3", "tokens", True),
    ("1 2", "1 2 3", "tokens", False),
    ("12", "1 2", "tokens", False),
    ("a \nb\n\n\n", "a\nb", "lines", True),
    ("a b\n", "a  b", "lines", False),  # spacing inside a line counts for `lines`
    ("a\r\nb\r\n", "a\nb\n", "lines", True),
    ("3\n", "3", "exact", False),
    ("3", "3", "exact", True),
    ("0.3333333", "0.333333333", "float", True),
    ("0.34", "0.333333333", "float", False),
    ("1000000.5", "1000000.0", "float", True),  # relative 5e-7
    ("nan", "nan", "float", True),  # equal tokens are equal, numeric or not
    ("inf", "1e308", "float", False),
    ("YES 1.0", "YES 1.0000001", "float", True),
    ("NO 1.0", "YES 1.0", "float", False),
    ("1.0", "1.0 2.0", "float", False),
])
def test_modes(got: str, want: str, mode: str, ok: bool) -> None:
    assert (outputs.mismatch(got, want, mode) is None) is ok


def test_mismatch_says_where() -> None:
    why = outputs.mismatch("1 2 4", "1 2 3", "tokens")
    assert why is not None and "token 3" in why and "'3'" in why and "'4'" in why


def test_tolerance_is_a_parameter() -> None:
    assert outputs.mismatch("1.01", "1.0", "float", tol=0.02) is None
    assert outputs.mismatch("1.01", "1.0", "float", tol=1e-3) is not None


def test_extract_program_per_language() -> None:
    from sandbox_worker.extract import extract_program

    text = "draft:\n```c++\nint a;\n```\nfinal:\n```cpp\nint main(){}\n```\n```python\nx=1\n```"
    assert extract_program(text, "cpp") == "int main(){}"
    assert extract_program("```\nfn main() {}\n```", "rust") == "fn main() {}"
    assert extract_program("<think>```go\nbad\n```</think>package main", "go") == "package main"
    assert extract_program("```python\nx = 1\n```", "python") == "x = 1"
    assert extract_program("```python\nx = 1\n```", "java") == ""  # only another language

"""AST mutations: parseable, distinct, spliced into the original text."""

from __future__ import annotations

import ast

from training.candidates.mutate import all_mutants, sample_mutants

CODE = '''def f(xs, k):
    # keep the comment
    total = 0
    for i in range(len(xs)):
        if xs[i] > k and i % 2 == 0:
            total += xs[i] * 2
        else:
            continue
    return total
'''


def test_mutants_parse_differ_and_keep_formatting() -> None:
    muts = all_mutants(CODE)
    assert len(muts) >= 15
    kinds = {k for k, _ in muts}
    assert {"binop", "compare", "constant", "boolop", "range", "augassign",
            "drop_stmt"} <= kinds
    texts = [m for _, m in muts]
    assert len(set(texts)) == len(texts) and CODE not in texts
    for m in texts:
        ast.parse(m)
        assert "# keep the comment" in m or "drop" in m
    # one-site mutants change few lines: the rest is byte-identical to the original
    for kind, m in muts:
        if "drop" not in kind:
            changed = [a for a, b in zip(CODE.splitlines(), m.splitlines(), strict=True) if a != b]
            assert len(changed) == 1, (kind, m)


def test_sample_is_deterministic_and_spread() -> None:
    a = sample_mutants(CODE, 8, seed=3)
    assert a == sample_mutants(CODE, 8, seed=3)
    assert len(a) == 8
    assert len({k.split("+")[0] for k, _ in a}) >= 4
    assert sample_mutants(CODE, 8, seed=4) != a


def test_annotations_and_docstrings_untouched() -> None:
    code = 'def g(x: list[int]) -> int:\n    """Doc 1."""\n    return x[0] + 1\n'
    for _, m in all_mutants(code):
        assert "list[int]" in m and '"""Doc 1."""' in m


def test_unparseable_input_gives_nothing() -> None:
    assert all_mutants("def broken(:\n") == []

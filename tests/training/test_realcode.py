"""Real-code pairs: stdlib functions against their own mutants (training side only)."""

from __future__ import annotations

import ast

from training.pairs.realcode import RealCodeConfig, realcode_pairs, stdlib_functions, stdlib_root


def test_functions_are_real_stdlib_code() -> None:
    funcs = []
    for item in stdlib_functions(4, 25):
        funcs.append(item)
        if len(funcs) == 200:
            break
    assert len(funcs) == 200
    for fid, question, code in funcs:
        rel, name, line = fid.rsplit(":", 2)
        source = (stdlib_root() / rel).read_text("utf-8")
        tree = ast.parse(code)
        fn = tree.body[0]
        assert isinstance(fn, ast.FunctionDef) and fn.name == name
        assert 4 <= len(code.splitlines()) <= 25 and question
        # dedented, but line for line the stdlib's own text
        first = code.splitlines()[0]
        assert source.splitlines()[int(line) - 1].strip() == first.strip()
        assert not {"test", "tests", "idlelib"} & set(rel.split("/"))


def test_pairs_are_mutants_of_their_original_and_deterministic() -> None:
    cfg = RealCodeConfig(n=60, group=8, seed=3)
    pairs = realcode_pairs(cfg)
    assert pairs == realcode_pairs(cfg)  # same interpreter, same seed: same pairs
    assert pairs != realcode_pairs(RealCodeConfig(n=60, group=8, seed=4))
    assert len(pairs) == 60
    assert len({p["chosen_origin"] for p in pairs}) == 60  # one pair per function
    for i, p in enumerate(pairs):
        assert p["problem_id"] == f"stdlib/{i // 8:05d}"
        assert p["rejected"] != p["chosen"]
        assert ast.dump(ast.parse(p["rejected"])) != ast.dump(ast.parse(p["chosen"]))
        assert p["chosen_origin"].startswith("stdlib:")
        assert p["rejected_origin"].startswith("mutant:")
    assert realcode_pairs(RealCodeConfig(n=0)) == []

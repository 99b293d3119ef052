"""Test layouts as RL code datasets publish them, read into this protocol's test kinds.

- APPS / TACO `input_output` (JSON text or object): `inputs`, `outputs`, optional `fn_name`
  (call-based when present; outputs are often wrapped in one-element lists);
- CodeContests `public_tests` / `private_tests` / `generated_tests`: `{input: [..], output: [..]}`;
- LiveCodeBench `public_test_cases` / `private_test_cases`: a JSON list of
  `{input, output, testtype: stdin|functional}` (private ones may be base64(zlib(pickle(json))):
  read with an unpickler that refuses every global, so only plain strings come out), with
  `metadata.func_name` for functional cases (one JSON argument per input line);
- verl-style `reward_model.ground_truth` (or a bare `ground_truth`): any of the above, as JSON;
- KodCode / BigCodeBench test modules (`test` / `test_code` holding `def test_*` or a
  `unittest.TestCase`): a `ModuleTests` (kinds/modules.py runs them).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from typing import Any

from sandbox_worker.protocol import CallTests, ModuleTests, StdioTests, TestSpec

MAX_DECOMPRESSED = 256 << 20  # LiveCodeBench private cases, bytes


class LayoutError(ValueError):
    """The value looks like a known layout but is malformed."""


def _text(value: Any) -> str:
    if isinstance(value, list):  # TACO sometimes stores an output as a list of lines
        return "\n".join(str(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise LayoutError(f"refusing a pickled {module}.{name}: only plain data is read")


def _lcb_private(value: str) -> Any:
    """LiveCodeBench's compressed private cases, without running any pickled code."""
    raw = zlib.decompressobj().decompress(base64.b64decode(value), MAX_DECOMPRESSED)
    inner = _NoGlobals(io.BytesIO(raw)).load()
    return json.loads(inner) if isinstance(inner, str | bytes) else inner


def _input_output(obj: dict[str, Any]) -> TestSpec:
    inputs, outputs = obj.get("inputs"), obj.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
        raise LayoutError("input_output needs `inputs` and `outputs` lists of equal length")
    fn_name = obj.get("fn_name")
    if fn_name:
        args = [a if isinstance(a, list) else [a] for a in inputs]
        return CallTests(kind="call", fn_name=str(fn_name), inputs=args, outputs=outputs)
    return StdioTests(kind="stdio", cases=[{"input": _text(i), "output": _text(o)}  # type: ignore[misc]
                                           for i, o in zip(inputs, outputs, strict=True)])


def _code_contests(obj: dict[str, Any], keys: tuple[str, ...]) -> StdioTests:
    cases: list[dict[str, str]] = []
    for key in keys:
        part = obj.get(key) or {}
        ins, outs = part.get("input", []), part.get("output", [])
        if len(ins) != len(outs):
            raise LayoutError(f"{key} has {len(ins)} inputs and {len(outs)} outputs")
        cases += [{"input": _text(i), "output": _text(o)} for i, o in zip(ins, outs, strict=True)]
    return StdioTests(kind="stdio", cases=cases)  # type: ignore[arg-type]


def _lcb(obj: dict[str, Any]) -> TestSpec:
    cases: list[dict[str, Any]] = []
    for key in ("public_test_cases", "private_test_cases"):
        value = obj.get(key)
        if isinstance(value, str):
            parsed = _maybe_json(value)
            value = _lcb_private(value) if parsed is value and value else parsed
        cases += list(value or [])
    if not cases:
        raise LayoutError("no LiveCodeBench test cases")
    if all(c.get("testtype") == "functional" for c in cases):
        meta = _maybe_json(obj.get("metadata") or {})
        fn_name = meta.get("func_name") if isinstance(meta, dict) else None
        if not fn_name:
            raise LayoutError("functional LiveCodeBench cases need metadata.func_name")
        inputs = [[json.loads(line) for line in str(c["input"]).splitlines() if line.strip()]
                  for c in cases]
        outputs = [json.loads(str(c["output"])) for c in cases]
        return CallTests(kind="call", fn_name=str(fn_name), inputs=inputs, outputs=outputs)
    return StdioTests(kind="stdio", cases=[{"input": str(c["input"]),  # type: ignore[misc]
                                            "output": str(c["output"])} for c in cases])


def _module(source: str) -> ModuleTests | None:
    if "unittest" in source and "TestCase" in source:
        return ModuleTests(kind="unittest", module=source)
    if "def test" in source:
        return ModuleTests(kind="pytest", module=source)
    return None


def read_tests(value: Any, *, contests: tuple[str, ...] = (
        "public_tests", "private_tests", "generated_tests")) -> TestSpec | None:
    """The test kind a dataset row (or its test field) carries; None when no layout matches.

    `contests`: which CodeContests splits to use (all by default)."""
    value = _maybe_json(value)
    if not isinstance(value, dict):
        return None
    for key in ("reward_model", "ground_truth", "input_output"):
        if key in value:
            inner = value[key]
            if key == "reward_model" and isinstance(inner, dict):
                inner = inner.get("ground_truth")
            found = read_tests(inner, contests=contests)
            if found is not None:
                return found
    if "inputs" in value and "outputs" in value:
        return _input_output(value)
    if any(k in value for k in contests):
        return _code_contests(value, contests)
    if "public_test_cases" in value or "private_test_cases" in value:
        return _lcb(value)
    for key in ("test", "test_code", "tests"):
        if isinstance(value.get(key), str):
            found_module = _module(value[key])
            if found_module is not None:
                return found_module
    return None

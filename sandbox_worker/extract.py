"""Pull the program out of an LLM response: fenced blocks, several blocks, or bare code.

Rules, in order (all deterministic, stdlib only, never raises):

1. A closed `<think>...</think>` section is dropped when text follows it (reasoning models).
2. Fenced blocks: ```` ``` ```` or ``~~~`` fences of 3+ characters, optionally indented
   (list items) and tagged (```` ```python ````, ```` ```py ````, ``` ``` ``` plain...).
   A fence left open (the response was cut at max length) runs to the end of the text.
3. Which block: python-tagged blocks (python, py, python3, py3) beat untagged ones, which beat
   blocks tagged with another language. Among those, the *last* block that defines a function
   or class wins (the final answer; earlier ones are drafts, later ones are usage examples).
   Top-level names that block uses but does not define are taken from earlier blocks (a
   helper or an import in its own block), prepended in their original order. With no
   defining block, the last candidate block is the program.
4. No fence: the whole text, minus leading prose before the first line that starts code
   (``def``, ``class``, ``import``, ``from``, ``@``) and trailing prose after the last point
   where the text still parses, when the whole text is not valid Python.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

_PY_TAGS = frozenset({"python", "py", "python3", "py3", "python2", "sage", "pycon"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$",
                    re.MULTILINE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_DEFINES = re.compile(r"^(?:async[ \t]+def|def|class)[ \t]+\w", re.MULTILINE)
_CODE_START = re.compile(r"^(?:async[ \t]+def|def|class|import|from|@)\b|^[A-Za-z_]\w*[ \t]*=",
                         re.MULTILINE)
# trailing-prose trimming tries at most this many cut points (each is one ast.parse)
_MAX_TRIM_TRIES = 64


@dataclass(frozen=True)
class _Block:
    lang: str
    code: str


def _blocks(text: str) -> list[_Block]:
    """Fenced blocks in order; an unterminated last fence runs to the end of the text."""
    blocks: list[_Block] = []
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:
            return blocks
        fence = opening.group("fence")
        lang = opening.group("info").strip().split(" ")[0].lower() if opening.group("info") else ""
        body_start = opening.end() + 1
        closing_re = re.compile(
            rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        closing = closing_re.search(text, body_start) if body_start <= len(text) else None
        body_end = closing.start() if closing else len(text)
        body = text[body_start:body_end] if body_start <= len(text) else ""
        blocks.append(_Block(lang=lang, code=textwrap.dedent(body).strip("\n")))
        if closing is None:
            return blocks
        pos = closing.end()


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _defined(tree: ast.Module) -> set[str]:
    """Top-level names a module binds (functions, classes, imports, assignments)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _used(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _with_dependencies(chosen: int, blocks: list[_Block]) -> str:
    """The chosen block, preceded by earlier blocks that define names it needs."""
    main = blocks[chosen].code
    if chosen == 0:
        return main  # the common case: nothing earlier to pull in, no parse needed
    tree = _parses(main)
    if tree is None:
        return main
    missing = _used(tree) - _defined(tree)
    needed: list[str] = []
    for block in blocks[:chosen]:
        earlier = _parses(block.code)
        if earlier is not None and _defined(earlier) & missing:
            needed.append(block.code)
    return "\n\n".join([*needed, main])


def _from_blocks(blocks: list[_Block]) -> str:
    python = [b for b in blocks if b.lang in _PY_TAGS]
    plain = [b for b in blocks if not b.lang]
    candidates = python or plain or blocks
    for i in range(len(candidates) - 1, -1, -1):
        if _DEFINES.search(candidates[i].code):
            return _with_dependencies(i, candidates)
    return candidates[-1].code


def _from_bare(text: str) -> str:
    """Unfenced text: the whole of it if it parses, else the code-looking span that parses."""
    if _parses(text) is not None:
        return text.strip("\n")
    start = _CODE_START.search(text)
    if start is None:
        return text.strip("\n")
    code = text[start.start():]
    if _parses(code) is not None:
        return code.strip("\n")
    lines = code.split("\n")
    # cut before an unindented line (where prose resumes), latest cut first
    cuts = [i for i in range(len(lines) - 1, 0, -1)
            if lines[i] and not lines[i][0].isspace()]
    for cut in cuts[:_MAX_TRIM_TRIES]:
        head = "\n".join(lines[:cut])
        if _parses(head) is not None:
            return head.strip("\n")
    return code.strip("\n")


def extract_code(text: str) -> str:
    """The program in an LLM response (see the module docstring for the rules)."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    after_think = _THINK.sub("", text)
    if after_think.strip():
        text = after_think
    fenced = _blocks(text)
    blocks = [b for b in fenced if b.code.strip()]
    if blocks:
        return _from_blocks(blocks)
    return "" if fenced else _from_bare(text)  # only empty fences: there is no program


# fence tags per language of sandbox_worker.languages (Python uses extract_code's rules)
FENCE_TAGS = {"c": {"c", "h"}, "cpp": {"cpp", "c++", "cxx", "cc", "hpp"},
              "java": {"java"}, "go": {"go", "golang"}, "rust": {"rust", "rs"},
              "javascript": {"javascript", "js", "node", "nodejs", "jsx", "mjs"}}


def extract_program(text: str, language: str = "python") -> str:
    """The program in an LLM response for `language`: extract_code for Python; otherwise
    the last fenced block tagged with that language, else the last untagged block, else
    (no fence at all) the whole text after any closed <think> section."""
    if language == "python":
        return extract_code(text)
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    after_think = _THINK.sub("", text)
    if after_think.strip():
        text = after_think
    blocks = [b for b in _blocks(text) if b.code.strip()]
    tags = FENCE_TAGS.get(language, {language})
    for group in ([b for b in blocks if b.lang in tags], [b for b in blocks if not b.lang]):
        if group:
            return group[-1].code
    return "" if blocks else text.strip("\n")

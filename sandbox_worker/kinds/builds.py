"""Compiled programs, built once: a sandboxed compile per (source, compiler, flags), cached.

The compile runs in a fresh sandboxed child (same isolation as the program, its own time and
memory limits); the artefacts come back as bytes and are kept in a bounded LRU keyed by
sha256(language, compiler version, flags, source). Concurrent jobs with the same key (a GRPO
group of identical programs) wait for the one compile in flight instead of starting their own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox_worker import languages, wire
from sandbox_worker.session import Child

COMPILE_TIMEOUT_S = 30.0
COMPILE_MEMORY_MB = 2048
COMPILE_OUTPUT_CAP = 64 * 1024  # compiler messages kept; beyond: "over the cap"
MAX_ARTEFACT_BYTES = 64 * 1024 * 1024
CACHE_BYTES = 256 * 1024 * 1024
ERROR_CHARS = 1200  # longest compile error in a result


@dataclass(frozen=True)
class Build:
    """A compile's outcome: artefacts (name -> base64) or a bounded error."""

    files: dict[str, str] | None
    error: str | None
    size: int = 0
    cached: bool = False


class BuildCache:
    """Thread-safe LRU of builds by key, with single-flight compiles."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self._max = max_bytes
        self._items: OrderedDict[str, Build] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Event] = {}
        self.hits = self.misses = 0

    def get_or_build(self, key: str, build: Callable[[], Build]) -> Build:
        """The cached build for `key`, or the result of `build()` (run once per key)."""
        while True:
            with self._lock:
                found = self._items.get(key)
                if found is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return Build(found.files, found.error, found.size, cached=True)
                waiting = self._inflight.get(key)
                if waiting is None:
                    self._inflight[key] = threading.Event()
                    self.misses += 1
                    break
            waiting.wait()
        try:
            result = build()
        except BaseException:
            with self._lock:
                self._inflight.pop(key).set()
            raise
        with self._lock:
            if result.error is None or result.error.startswith("compile error:"):  # not load
                self._put(key, result)
            self._inflight.pop(key).set()
        return result

    def _put(self, key: str, build: Build) -> None:
        if build.size > self._max:
            return
        self._items[key] = build
        self._bytes += build.size
        while self._bytes > self._max:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.size


CACHE = BuildCache()


def cache_key(lang: languages.Language, source: str) -> str:
    """sha256 over what decides the artefact: language, compiler version, flags, source."""
    blob = json.dumps([lang.name, languages.version(lang.name), list(lang.compile), source])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_LOCAL = threading.local()


def compiling() -> bool:
    """Whether this thread is forking a compile's child (its memory limit is the compile's)."""
    return bool(getattr(_LOCAL, "compiling", False))


def _compile(spawn: Callable[[], Child], lang: languages.Language, source: str) -> Build:
    _LOCAL.compiling = True
    try:
        child = spawn()
    finally:
        _LOCAL.compiling = False
    deadline = child.clock.start(COMPILE_TIMEOUT_S + 5.0)
    msg: dict[str, Any] = {
        "kind": "stdio", "mode": "compile", "sources": {lang.source: source},
        "argv": languages.resolved(lang, lang.compile), "artefacts": list(lang.artefacts),
        "timeout_s": COMPILE_TIMEOUT_S, "cap": COMPILE_OUTPUT_CAP,
        "memory_mb": COMPILE_MEMORY_MB, "cpu_s": int(COMPILE_TIMEOUT_S) + 5, "env": lang.env}
    try:
        child.send(msg, deadline)
        answer = wire.recv(child.resp_r, max_bytes=MAX_ARTEFACT_BYTES * 2,
                           deadline=child.clock.wait(child.resp_r, deadline))
    except wire.Deadline:
        return Build(None, "compile timed out")
    except (wire.WireError, OSError) as exc:
        return Build(None, f"compiler sandbox ended: {exc}"[:ERROR_CHARS])
    finally:
        child.kill()
    if not isinstance(answer, dict):
        return Build(None, "compiler sandbox broke the protocol")
    if answer.get("t") == "compile":
        return Build(None, f"compile error: {answer.get('e', '')}"[:ERROR_CHARS])
    files = answer.get("files")
    if answer.get("t") != "ok" or not isinstance(files, dict):
        return Build(None, "compiler sandbox broke the protocol")
    size = sum(len(str(v)) for v in files.values())
    for value in files.values():
        base64.b64decode(str(value), validate=True)  # garbage raises here, not in a child
    return Build({str(k): str(v) for k, v in files.items()}, None, size)


def build(spawn: Callable[[], Child], lang: languages.Language, source: str) -> Build:
    """The artefacts of `source` (interpreted languages: the source itself)."""
    if not lang.compile:
        data = base64.b64encode(source.encode("utf-8")).decode()
        return Build({lang.source: data}, None, len(data))
    return CACHE.get_or_build(cache_key(lang, source), lambda: _compile(spawn, lang, source))

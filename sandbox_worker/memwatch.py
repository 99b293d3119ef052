"""Fallback aggregate memory bound where no cgroup can be had: a watcher thread sums the
resident memory of each program's process tree (its sandboxed child and every descendant,
found through the ppid links in /proc) every `interval_s`, and kills the program when the
sum is over its limit. Coarser than a cgroup (a program can overshoot for one interval, by
what it can touch in 50 ms), but it bounds what one program holds in total, which
RLIMIT_AS alone does not.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable

log = logging.getLogger("codereward.sandbox")

PAGE = os.sysconf("SC_PAGE_SIZE")


def _table() -> tuple[dict[int, list[int]], dict[int, int]]:
    """ppid -> children and pid -> resident bytes, for every process we can read."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(name)
        children[int(fields[1])].append(pid)  # field 4: ppid
        rss[pid] = int(fields[21]) * PAGE  # field 24: rss pages
    return children, rss


def tree_bytes(root: int, children: dict[int, list[int]], rss: dict[int, int]) -> int:
    """Resident bytes of `root` and all its descendants."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


class MemoryWatch:
    """Kills a watched program whose whole process tree holds more than its limit."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self._watched: dict[int, tuple[int, int, Callable[[], None]]] = {}
        self.killed: set[int] = set()  # tokens of programs killed over their limit
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self.kills = 0
        self._thread = threading.Thread(target=self._loop, name="sandbox-memwatch", daemon=True)
        self._thread.start()

    def watch(self, host_pid: int, limit_bytes: int, kill: Callable[[], None]) -> int:
        """Start watching the tree under `host_pid`; returns a token for `unwatch`."""
        token = next(self._ids)
        with self._lock:
            self._watched[token] = (host_pid, limit_bytes, kill)
        self._wake.set()
        return token

    def unwatch(self, token: int) -> bool:
        """Stop watching; True when the program was killed over its limit."""
        with self._lock:
            self._watched.pop(token, None)
            if token in self.killed:
                self.killed.discard(token)
                return True
            return False

    def _loop(self) -> None:
        while not self._stop:
            with self._lock:
                watched = dict(self._watched)
            if not watched:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            children, rss = _table()
            for token, (pid, limit, kill) in watched.items():
                if tree_bytes(pid, children, rss) > limit:
                    log.info("program over its memory limit: killed", extra={"pid": pid})
                    self.kills += 1
                    with self._lock:
                        self._watched.pop(token, None)
                        self.killed.add(token)
                    with contextlib.suppress(Exception):
                        kill()
            self._wake.wait(self.interval_s)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=2)

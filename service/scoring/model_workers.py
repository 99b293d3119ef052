"""The model threads of one device, shared by every model loaded on it.

On GPU one thread drives the device. On CPU several model threads run batches side by side,
and each run sizes its intra-op (OpenMP) team to the cores left: a lone run gets every core,
two concurrent runs get half each. Two single-threaded forwards keep 2 cores busier than one
forward over 2 OpenMP threads: no barrier waits on a preempted partner, and one run's Python
parts (per-item attention loop, layer glue) overlap the other's matrix work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

SetThreads = Callable[[int], None]


class DeviceWorkers:
    """`workers` model threads for one device; `set_threads` sizes each CPU run's team."""

    def __init__(self, device: str, *, workers: int = 1, cores: int = 1,
                 set_threads: SetThreads | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.cores = max(1, cores)
        self._set_threads = set_threads
        self._busy = 0
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix=f"model-{device}")

    def call(self, fn: Callable[[T], R], arg: T) -> R:
        """Run `fn(arg)` on the calling model thread, its team sized to the cores left."""
        with self._lock:
            self._busy += 1
            share = max(1, self.cores // self._busy)
        try:
            if self._set_threads is not None:
                # the calling thread's OpenMP team (torch also makes it the default of new threads)
                self._set_threads(share)
            return fn(arg)
        finally:
            with self._lock:
                self._busy -= 1

    def shutdown(self) -> None:
        """Wait for running batches and stop the threads."""
        self.executor.shutdown(wait=True)

"""Length-prefixed JSON frames over pipes, with deadlines and size caps."""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct(">I")  # 4-byte big-endian frame length, bytes


class WireError(Exception):
    """The peer closed, sent garbage, or went over a size cap."""


class Deadline(WireError):
    """No complete frame before the deadline."""


def send(fd: int, obj: Any, deadline: float | None = None) -> None:
    """Write one frame; with a deadline the fd must be non-blocking (a peer that stops
    reading cannot block the writer past it)."""
    data = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise Deadline("peer stopped reading")
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise Deadline("no answer before the deadline")
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise WireError("peer closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(fd: int, *, max_bytes: int, deadline: float | None = None) -> Any:
    """Read one frame; `deadline` is a time.monotonic() value (None: wait forever)."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > max_bytes:
        raise WireError(f"frame of {size} bytes over the cap of {max_bytes}")
    data = _read_exact(fd, size, deadline)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"unreadable frame: {type(exc).__name__}") from exc

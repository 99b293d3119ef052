"""pytest's capture fixtures as child code (pytest_builtins.py binds them): `capsys` and
`capfd` (what a program prints, `readouterr()`) and `caplog` (the log records it emits:
`records`, `text`, `messages`, `record_tuples`, `set_level`, `at_level`, `clear`).

- `capsys`: `sys.stdout` / `sys.stderr` swapped for text buffers (with `.buffer` for bytes);
  `readouterr()` returns `(out, err)` with `.out` / `.err` and clears them; `disabled()`.
- `capfd`: file descriptors 1 and 2 redirected to temporary files (output of `os.write`,
  C code and child processes too); same `readouterr()`.
- `caplog`: a handler on the root logger, as pytest's; levels it set are restored after.
"""

from __future__ import annotations

from sandbox_worker.kinds.fixtures import PREFIX

CAPTURE_HELPERS = f'''
class {PREFIX}Capture:
    # what capsys and capfd share: readouterr() returns and clears, disabled() suspends
    def readouterr(self):
        import collections
        result = collections.namedtuple("CaptureResult", ["out", "err"])
        out = []
        for f in self._files:
            out.append(self._read(f))
            f.seek(0)
            f.truncate()
        return result(*out)

    def disabled(self):
        import contextlib

        @contextlib.contextmanager
        def suspended():
            self._suspend()
            try:
                yield
            finally:
                self._resume()
        return suspended()


def {PREFIX}captured(capture):
    {PREFIX}on_reset(capture._suspend)
    yield capture
    {PREFIX}undo(capture._suspend)
'''

CAPTURES = {
    "capsys": f'''
def {PREFIX}capsys():
    import io, sys

    class CaptureIO(io.TextIOWrapper):
        def __init__(self):
            super().__init__(io.BytesIO(), encoding="UTF-8", newline="", write_through=True)

        def getvalue(self):
            return self.buffer.getvalue().decode("UTF-8")

    class CaptureFixture({PREFIX}Capture):
        def __init__(self):
            self._saved = (sys.stdout, sys.stderr)
            self._files = (CaptureIO(), CaptureIO())
            self._resume()

        def _resume(self):
            sys.stdout, sys.stderr = self._files

        def _suspend(self):
            sys.stdout, sys.stderr = self._saved

        def _read(self, f):
            return f.getvalue()

    yield from {PREFIX}captured(CaptureFixture())
''',
    "capfd": f'''
def {PREFIX}capfd():
    import io, os, sys, tempfile

    def writer(fd):  # writes reach the descriptor at once, in order with os.write's
        return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="UTF-8",
                                newline="", write_through=True)

    class CaptureFixture({PREFIX}Capture):
        def __init__(self):
            self._files = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
            self._saved = (os.dup(1), os.dup(2))
            self._streams = (sys.stdout, sys.stderr)
            self._writers = (writer(1), writer(2))
            self._resume()

        def _flush(self):
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass

        def _resume(self):
            self._flush()
            for fd, f in zip((1, 2), self._files):
                os.dup2(f.fileno(), fd)
            sys.stdout, sys.stderr = self._writers

        def _suspend(self):
            self._flush()
            for fd, saved in zip((1, 2), self._saved):
                os.dup2(saved, fd)
            sys.stdout, sys.stderr = self._streams

        def _read(self, f):
            self._flush()
            f.seek(0)
            return f.read().decode("UTF-8", "replace")

    yield from {PREFIX}captured(CaptureFixture())
''',
    "caplog": f'''
def {PREFIX}caplog():
    import contextlib, logging
    root = logging.getLogger()

    class LogCaptureFixture(logging.Handler):
        def __init__(self):
            super().__init__(0)
            self.records = []
            self._levels = []
            self.setFormatter(logging.Formatter(
                "%(levelname)-8s %(name)s:%(filename)s:%(lineno)d %(message)s"))

        def emit(self, record):
            self.records.append(record)

        @property
        def text(self):
            return "".join(self.format(r) + "\\n" for r in self.records)

        @property
        def messages(self):
            return [r.getMessage() for r in self.records]

        @property
        def record_tuples(self):
            return [(r.name, r.levelno, r.getMessage()) for r in self.records]

        def clear(self):
            self.records = []

        def set_level(self, level, logger=None):
            target = logging.getLogger(logger)
            self._levels.append((target, target.level))
            target.setLevel(level)

        @contextlib.contextmanager
        def at_level(self, level, logger=None):
            target = logging.getLogger(logger)
            saved = target.level
            target.setLevel(level)
            try:
                yield
            finally:
                target.setLevel(saved)

        def _stop(self):
            root.removeHandler(self)
            while self._levels:
                target, level = self._levels.pop()
                target.setLevel(level)

    capture = LogCaptureFixture()
    root.addHandler(capture)
    {PREFIX}on_reset(capture._stop)
    yield capture
    {PREFIX}undo(capture._stop)
''',
}

"""Evaluates a `Skeleton` (a whole assert) in a clean child and brokers its program parts.

The clean child never loaded the program: it has pristine builtins and imports its modules
afresh. When its evaluation reaches a program part it asks this side (`{"hole": k, "env"}`);
this side asks the program's child for that part, checks the answer is plain data, and hands
it over. So the test's own logic (comprehensions, `all`, `sorted(key=...)`, `re`, `numpy`)
never runs where the program could patch it, and the program sees only its own inputs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Protocol

from sandbox_worker import values, wire
from sandbox_worker.skeleton import Hole, Skeleton


class Raised(Exception):
    """Evaluation raised (`name` is the exception type), in the program's or a clean child."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(text)
        self.name, self.text = name, text


class Refuted(Raised):
    """The test's own trusted code raised AssertionError in the clean child (a numpy
    `assert_allclose` on the program's values): the test failed, it did not error."""


class Channel(Protocol):
    """What the broker needs of a child (session.Child)."""

    def send(self, msg: dict[str, Any], deadline: float) -> None: ...

    def frame(self, deadline: float) -> Any: ...

    def exited(self) -> bool: ...

    def kill(self) -> None: ...


Ask = Callable[[Hole, dict[str, Any]], Any]  # program part, encoded env -> encoded value


def evaluate(skel: Skeleton, helper: Channel, ask: Ask, deadline: float,
             cut: Callable[[object], str]) -> Any:
    """Value of `skel`, evaluated in `helper` (a clean child), program parts from `ask`."""
    nonce = secrets.token_hex(8)
    helper.send({"op": "eval", "src": skel.src, "imports": list(skel.imports), "hook": True,
                 "ns": "g", "t": -2, "n": nonce}, deadline)
    raised: Raised | None = None
    while True:
        msg = helper.frame(deadline)
        if not (isinstance(msg, dict) and "hole" in msg):
            break
        k, env = msg.get("hole"), msg.get("env")
        if not (isinstance(k, int) and 0 <= k < len(skel.holes) and isinstance(env, dict)):
            raise wire.WireError("clean child broke the protocol")
        try:
            reply: dict[str, Any] = {"v": ask(skel.holes[k], env)}
        except Raised as exc:
            raised = raised or exc
            reply = {"e": exc.text or exc.name}
        helper.send(reply, deadline)
    if raised is not None:
        raise raised
    if not isinstance(msg, dict) or msg.get("n") != nonce:
        raise wire.WireError("answer does not match the request")
    if not msg.get("ok"):
        error = Refuted if msg.get("x") == "AssertionError" else Raised
        raise error(cut(msg.get("x")), cut(msg.get("e")))
    return values.decode(msg.get("v"))


class CleanChild:
    """The job's clean child: it never loads the program and evaluates skeletons (whole
    asserts, and expected sides the service cannot compute, such as `'abc'.upper()`: a
    program that took over its own child could answer those with anything). Started on
    first need by `load`, replaced when it ended, shared by the job's tests."""

    def __init__(self, load: Callable[[], Channel]) -> None:
        self.load = load
        self.child: Channel | None = None

    def _get(self) -> Channel:
        if self.child is not None and not self.child.exited():
            return self.child
        self.drop()
        self.child = self.load()
        return self.child

    def drop(self) -> None:
        if self.child is not None:
            self.child.kill()
            self.child = None

    def skeleton(self, skel: Skeleton, ask: Ask, deadline: float,
                 cut: Callable[[object], str]) -> Any:
        helper = self._get()
        try:
            return evaluate(skel, helper, ask, deadline, cut)
        except Raised:
            raise
        except BaseException:
            self.drop()  # it may be mid-request
            raise

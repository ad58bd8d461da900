"""A clean stop on SIGTERM or SIGINT (Ctrl-C), the same for both.

What CI timeouts, Slurm preemption and ``docker stop`` send is SIGTERM; a terminal's Ctrl-C
sends SIGINT. Either one stops a run the same way: a cell stops between two training steps,
never inside one. While a process trains (``deferred``), the signal only sets a flag, and
suite.training.train looks at it after every step: it writes the cell's resume checkpoint there and
raises Stopped. Anywhere else (loading data, measuring, waiting) the signal raises Stopped at
once: nothing is lost there that the rerun would not redo. The --jobs parent defers too, and
passes the signal on to its workers (suite.run.parallel).

Stopped is a KeyboardInterrupt, so no ``except Exception`` records a stopped cell as failed:
nothing partial is recorded. A second signal while stopping changes nothing (a worker gets
the terminal's Ctrl-C and its parent's signal both). The command exits 128 + the signal's
number (143 for SIGTERM, 130 for SIGINT), as a shell reports a process the signal ended.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_received: int | None = None  # the first stop signal this process received
_deferring = 0  # how many deferred() blocks this process is in


class Stopped(KeyboardInterrupt):
    """The run was stopped by ``signum``; ``done`` of ``total`` cells were recorded (set on
    the way up, by whoever counts them)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.done: int | None = None
        self.total: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def code(self) -> int:
        return 128 + self.signum

    def line(self) -> str:
        done = f"{self.done} of {self.total} cells done" if self.total is not None else "finished cells are recorded"
        return f"stopped by {self.name}: {done}, run the same command to resume"


def _handler(signum: int, frame) -> None:
    global _received
    if _received is not None:
        return  # already stopping
    _received = signum
    if not _deferring:
        raise Stopped(signum)


def install() -> None:
    """Stop cleanly on SIGTERM and SIGINT from now on (in the main thread). A signal this
    process was started with ignored stays ignored: a job started in the background of a
    shell without job control ignores SIGINT, and so does Python then."""
    for sig in SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _handler)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """``install`` meanwhile; then the handlers before, and no stop remembered (a command
    run inside a longer-lived process, as the tests do, leaves it as it was)."""
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    install()
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        reset()


def requested() -> int | None:
    """The stop signal received, if any."""
    return _received


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Meanwhile a stop signal only sets the flag (``requested``); the block looks at it where
    stopping loses nothing. Leaving the block with the flag set raises Stopped."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if _received is not None and not _deferring:
        raise Stopped(_received)


def reset() -> None:
    """Forget a stop (a test's, after it has been handled)."""
    global _received
    _received = None


def request(signum: int) -> None:
    """Stop as if ``signum`` had arrived (what the handler does; a test calls it from inside
    training to stop at a chosen step)."""
    _handler(signum, None)

"""The worker processes of a --jobs run (suite.run.parallel): one call at a time over a pipe.

Each worker is spawned (a CUDA context does not survive a fork) and first makes itself die
with its parent, whatever kills that (suite.system.lifeline), and stop cleanly on SIGTERM and
SIGINT (suite.system.stopping). The parent reads each answer, or the worker's end with its exit
status, so a worker the kernel's OOM killer (or anyone) killed is named with its signal;
concurrent.futures' pool could only say that "a process terminated abruptly".

An answer is ("done", result), ("failed", error, traceback) for an exception the call
raised, ("stopped", signal) when a stop signal ended the call (the worker then exits), or,
made up by the parent, ("died", how) when the process ended without answering.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from suite.system import lifeline, stopping


class Worker:
    """One worker process; ``task`` is what it was given (None: idle), since ``since``."""

    def __init__(self, context: Any, setup: Callable, args: tuple) -> None:
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, os.getpid(), setup, args), name="rpg-bench worker")
        self.process.start()  # from the main thread: the parent-death signal follows the starting thread
        theirs.close()
        self.task: Any = None
        self.since = 0.0

    def give(self, task: Any, fn: Callable, *args: Any) -> None:
        self.conn.send((fn, args))
        self.task, self.since = task, time.monotonic()

    def answer(self) -> tuple | None:
        """The answer to the call under way, once there is one (the worker is idle again)."""
        if self.task is None:
            return None
        if not self.conn.poll() and self.process.is_alive():
            return None
        try:
            answer = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(5)
            answer = ("died", ended(self.process.exitcode))
        self.task = None
        return answer

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, sig)

    def close(self, timeout: float = 10.0) -> None:
        """End the worker: its pipe closes, which it takes as the end; killed if still there
        after ``timeout`` seconds."""
        self.conn.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def wait(workers: list[Worker], timeout: float) -> None:
    """Until a busy worker answers or ends, or ``timeout`` seconds."""
    busy = [w for w in workers if w.task is not None]
    ends = [w.conn for w in busy] + [w.process.sentinel for w in busy]
    if ends:
        multiprocessing.connection.wait(ends, timeout)
    else:
        time.sleep(timeout)


def ended(code: int | None) -> str:
    """How a process with exit status ``code`` ended, in words."""
    if code is None:
        return "did not end"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _serve(conn: multiprocessing.connection.Connection, parent: int, setup: Callable, args: tuple) -> None:
    """The worker's loop: ``setup(*args)`` once, then each call it is sent, until the pipe closes."""
    lifeline.die_with_parent(parent)
    stopping.install()
    setup(*args)
    code = 0
    try:
        _loop(conn)
    except BaseException:  # noqa: BLE001 - said, and the parent sees the worker end
        traceback.print_exc()
        code = 1
    # What exiting does, without tearing down the interpreter: with torch loaded that took
    # 5-11 s here (a loaded 2-core machine), which a stop's minute, and docker stop's 10 s,
    # cannot spare. The exit handlers (multiprocessing's finalizers, the memory probe's
    # server) run; then the process ends.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _loop(conn: multiprocessing.connection.Connection) -> None:
    try:
        while True:
            fn, call = conn.recv()
            try:
                answer = ("done", fn(*call))
            except stopping.Stopped as e:
                answer = ("stopped", e.signum)
            except Exception as e:  # noqa: BLE001 - answered, and recorded by the parent
                answer = ("failed", f"{type(e).__name__}: {e}", traceback.format_exc())
            with stopping.deferred():  # a signal meanwhile must not cut an answer in half
                try:
                    conn.send(answer)
                except Exception as e:  # noqa: BLE001 - an unpicklable result, say
                    conn.send(("failed", f"its result could not be sent back: {type(e).__name__}: {e}", ""))
            if answer[0] == "stopped":
                return
    except (EOFError, OSError, stopping.Stopped):
        return  # the parent closed the pipe (or is gone), or a stop came between two calls

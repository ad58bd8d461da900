"""A run's processes die with the process that started them, whatever kills it.

A --jobs worker (suite.run.workers), a memory probe's server and its probes (suite.measure.memprobe)
and a launched shard's rpg-bench (suite.run.launch) each call ``die_with_parent(parent)`` as
soon as they run code of ours (a spawned worker has imported torch by then: a parent that
dies in those seconds is caught by the check below). On Linux the kernel then sends the
child ``sig`` the moment its parent dies (``prctl(PR_SET_PDEATHSIG)``), SIGKILL and the OOM
killer included, which no handler in the parent could do. Two traps:

- The kernel ties the signal to the parent *thread* that started the child, not to its
  process: a child started from a thread that then ends is signalled though its parent
  lives. rpg-bench starts its children from the main thread, which lives as long as its process.
- A parent that died before the call leaves the child re-parented and no signal will come.
  So the child compares ``getppid()`` with the parent it was given (not with 1: in a
  container, or under a subreaper, the new parent is another process) and, if they differ,
  sends itself the signal at once.

Where there is no prctl, a daemon thread watches the parent instead (``watch``, twice a
second). ``watch`` also serves a process that must die with one that is not its parent: a
launched task watches the rpg-bench that launched it, two generations up (suite.run.launch).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL = 0.5  # seconds between two looks of a watching thread
ENV = "RPG_BENCH_PARENT_PID"  # a child's parent, for a child started as a command (from_environment)


def die_with_parent(parent: int, sig: int = signal.SIGKILL, *, kernel: bool = True) -> str:
    """Receive ``sig`` when ``parent`` (this process's parent, by pid) dies; if it already
    has, now. Returns how: "prctl" (the kernel's) or "watch" (a thread's; ``kernel=False``
    forces it, as a test does)."""
    how = "watch"
    if kernel and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
                how = "prctl"
    if how == "watch":
        watch(lambda: os.getppid() == parent, sig)
    if os.getppid() != parent:  # the parent died before the kernel (or the thread) looked
        os.kill(os.getpid(), sig)
    return how


def child_environment() -> dict[str, str]:
    """What a child started with it in its environment finds to die with this process
    (``from_environment``): for a child that is not Python code of ours until it runs ours."""
    return {ENV: str(os.getpid())}


def from_environment(sig: int = signal.SIGTERM) -> None:
    """Die with the parent ``child_environment`` named (SIGTERM: a clean stop, suite.system.stopping),
    if one did; the name is taken out of the environment, so that this process's own
    children do not mistake it for theirs."""
    parent = os.environ.pop(ENV, None)
    if parent:
        die_with_parent(int(parent), sig)


def watch(alive: Callable[[], bool], sig: int = signal.SIGKILL) -> threading.Thread:
    """A daemon thread that sends this process ``sig`` once ``alive()`` turns false."""

    def run() -> None:
        while alive():
            time.sleep(POLL)
        os.kill(os.getpid(), sig)

    thread = threading.Thread(target=run, name="rpg-bench lifeline", daemon=True)
    thread.start()
    return thread


def identity(pid: int) -> str:
    """``pid`` with its start time ("pid:ticks"), so that a pid the system reuses after the
    process ended is not mistaken for it; just the pid where there is no /proc."""
    started = _stat(pid)
    return f"{pid}:{started[1]}" if started else str(pid)


def alive(ident: str) -> bool:
    """Whether the process ``identity`` named still runs (a zombie does not)."""
    pid, _, ticks = ident.partition(":")
    if not ticks:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _stat(int(pid))
    return stat is not None and stat[1] == ticks and stat[0] != "Z"


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) from /proc/<pid>/stat, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]  # state and starttime (fields 3 and 22 of proc(5))


def descendants(pid: int) -> list[int]:
    """Every living process under ``pid`` (children, theirs, ...), from /proc; [] without it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found

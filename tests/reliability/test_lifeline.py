"""suite.system.lifeline: a child dies with its parent whatever kills the parent, by the kernel's
parent-death signal or by the watching thread where there is none; real processes."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite.system import lifeline

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's prctl and /proc")
# The child: dies with the parent it is given, says so, and would otherwise live ten minutes.
CHILD = """
import sys, time
from suite.system import lifeline
how = lifeline.die_with_parent(int(sys.argv[1]), kernel=sys.argv[2] == "prctl")
print(how, flush=True)
time.sleep(600)
"""
# The parent: starts the child, passes on its first line and its pid, and waits to be killed.
PARENT = """
import os, subprocess, sys, time
argv = [sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2]]
child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), child.pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by whoever inherited it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@linux
@pytest.mark.parametrize("how", ["prctl", "watch"])
def test_a_child_dies_within_a_second_of_its_parent_killed_by_sigkill(how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, how], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        said, pid = parent.stdout.readline().split()
        child = int(pid)
        assert said == how and _running(child)
        time.sleep(lifeline.POLL * 2)
        assert _running(child), "the child lives while its parent does"
        parent.kill()  # SIGKILL: the parent runs no code of its own
        parent.wait()
        end = time.monotonic() + 1 + lifeline.POLL
        while _running(child) and time.monotonic() < end:
            time.sleep(0.02)
        assert not _running(child), "the child outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("how", ["prctl", "watch"])
def test_a_parent_that_died_before_the_call_is_found_at_once(how):
    """The race: the given parent is not this process's parent (any more), so the signal is
    sent now (here the parent given is none that could be: pid 0)."""
    if how == "prctl" and not sys.platform.startswith("linux"):
        pytest.skip("Linux's prctl")
    done = subprocess.run([sys.executable, "-c", CHILD, "0", how], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr


@linux
def test_a_process_is_known_by_its_pid_and_start_time():
    me = lifeline.identity(os.getpid())
    assert lifeline.alive(me)
    pid, _, ticks = me.partition(":")
    assert ticks and not lifeline.alive(f"{pid}:{int(ticks) + 1}"), "another process under a reused pid"
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = lifeline.identity(ended.pid)
    ended.wait()
    assert not lifeline.alive(ident)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert child.pid in lifeline.descendants(os.getpid())
    finally:
        child.kill()
        child.wait()

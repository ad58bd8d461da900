"""suite.system.allocator: glibc keeps what a step frees for the next one (as CUDA's
caching allocator does), unless the user's MALLOC_* environment says otherwise."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt, on Linux"
)

# Resident memory before and after a 20 MB tensor is written and freed, in MB, and the state.
PROBE = """
import sys, torch
from suite.system import allocator
def rss():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmRSS"))
    return int(line.split()[1]) / 1024
if sys.argv[1] == "keep":
    allocator.keep_freed()
before = rss()
t = torch.ones(5_000_000)
del t
print(rss() - before, allocator.state(), sep="|")
"""


def _probe(mode: str, **env: str) -> tuple[float, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=clean | env, capture_output=True, text=True, check=True
    ).stdout
    kept, state = out.strip().split("|")
    return float(kept), state


def test_freed_memory_is_kept_for_the_next_step_only_once_asked():
    returned, state = _probe("default")
    assert returned < 5 and state == "default"  # glibc gave the 20 MB back on free
    kept, state = _probe("keep")
    assert kept > 15 and state.startswith("glibc, freed memory kept")


def test_the_users_malloc_environment_wins():
    kept, state = _probe("keep", MALLOC_ARENA_MAX="2")
    assert kept < 5 and "environment" in state


def test_records_say_which_allocator_trained_them():
    from suite.system import allocator, env

    assert env.fingerprint(__import__("torch").device("cpu"))["allocator"] == allocator.state()

"""The memory probe's server lives no longer than what started it, and a stop does not wait
for a probe under way; real processes."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from suite import methods
from suite.measure import memprobe
from suite.run import runner
from suite.system import stopping

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the probe is Linux's")
STARTER = """
from suite.measure import memprobe
prober = memprobe.Prober()
print(prober.proc.pid, flush=True)
import time; time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@linux
def test_the_server_dies_within_a_second_of_the_process_that_started_it():
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    try:
        server = int(starter.stdout.readline())
        time.sleep(1)
        assert _running(server)
        starter.kill()
        starter.wait()
        end = time.monotonic() + 1
        while _running(server) and time.monotonic() < end:
            time.sleep(0.02)
        assert not _running(server), "the probe server outlived the process that started it"
    finally:
        starter.kill()
        starter.wait()
        starter.stdout.close()


@pytest.mark.slow
@linux
def test_a_stop_during_a_probe_ends_its_server_and_the_next_probe_starts_afresh(monkeypatch):
    cell = runner.Cell("t", "t", "digits", "resnet18-cifar", 0.25, "plain", 20_000, 0, "smoke")
    method = methods.get(cell.method)
    model = methods.build(method, cell.net(), cell.budget, cell.seed).model
    setting = method.setting(cell.net(), cell.budget)
    batch = (torch.randn(8, 1, 8, 8), torch.randint(10, (8,)))

    def probe() -> dict:
        return memprobe.probe(cell.config(), setting, model.state_dict(), batch, form="training", workload="inference")

    assert probe()["peak_mb"] is not None
    server = memprobe._prober.proc

    def stopped(*args):
        raise stopping.Stopped(signal.SIGTERM)  # what the handler raises, while the probe runs

    monkeypatch.setattr(memprobe.select, "select", stopped)
    with pytest.raises(stopping.Stopped):
        probe()
    assert server.poll() is not None and not _running(server.pid), "the server was not left running"
    monkeypatch.undo()
    assert probe()["peak_mb"] is not None
    assert memprobe._prober.proc is not server

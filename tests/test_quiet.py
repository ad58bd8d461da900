"""Measurement in quiet under --jobs (suite.system.quiet): real worker processes share a run
folder; no training step of one may run while another measures, and the measuring one
gets every thread a serial run would have."""

import json
import subprocess
import sys

import pytest
import torch

from suite.system import quiet

TRAINER = """
import json, sys, time
from pathlib import Path
from suite.system import quiet
run, started, steps_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
quiet.join(run, threads=1)
steps = []
while not (run / "stop").exists():
    with quiet.cell():  # cells of 50 steps, with idle time between them, as a worker runs
        for _ in range(50):
            quiet.pause()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.002:  # a training step's work
                pass
            steps.append((t0, time.monotonic()))
            started.touch()
    time.sleep(0.01)
steps_file.write_text(json.dumps(steps))
"""

IDLE = """
import sys, time
from pathlib import Path
from suite.system import quiet
quiet.join(Path(sys.argv[1]), threads=1)
with quiet.cell():  # one cell, then waits for work that never comes
    quiet.pause()
Path(sys.argv[2]).touch()
time.sleep(8)
"""

MEASURER = """
import json, sys, time
from pathlib import Path
import torch
from suite.system import quiet
run, started = Path(sys.argv[1]), [Path(p) for p in sys.argv[3:]]
torch.set_num_threads(1)
quiet.join(run, threads=2)
while not all(p.exists() for p in started):  # both trainers are stepping
    time.sleep(0.01)
spans = []
for _ in range(3):
    with quiet.cell():
        for _ in range(20):  # trains a little, then measures, as a cell does
            quiet.pause()
            time.sleep(0.002)
        asked = time.monotonic()
        with quiet.measuring():
            t0 = time.monotonic()
            threads = torch.get_num_threads()
            time.sleep(0.3)
            spans.append((t0, time.monotonic(), threads, t0 - asked))
        for _ in range(20):
            quiet.pause()
            time.sleep(0.002)
    time.sleep(0.5)  # idle between cells: the others must not wait for us now
Path(sys.argv[2]).write_text(json.dumps({"spans": spans, "after": torch.get_num_threads()}))
(run / "stop").touch()
"""


@pytest.mark.slow
def test_no_worker_trains_while_another_measures(tmp_path):
    run = tmp_path / "out"
    run.mkdir()
    started = [tmp_path / f"started{i}" for i in range(3)]
    idle = subprocess.Popen([sys.executable, "-c", IDLE, str(run), str(started[2])])
    trainers = [
        subprocess.Popen([sys.executable, "-c", TRAINER, str(run), str(started[i]), str(tmp_path / f"steps{i}.json")])
        for i in range(2)
    ]
    measurer = subprocess.run(
        [sys.executable, "-c", MEASURER, str(run), str(tmp_path / "m.json"), *map(str, started)], timeout=300
    )
    assert measurer.returncode == 0
    assert all(t.wait(timeout=120) == 0 for t in [*trainers, idle])
    measured = json.loads((tmp_path / "m.json").read_text())
    spans = measured["spans"]
    assert len(spans) == 3 and all(s[2] == 2 for s in spans), "a measurement gets every thread"
    # A worker waiting for its next cell holds nothing: nobody waits for it (it idles 8 s).
    assert all(s[3] < 2.0 for s in spans), [s[3] for s in spans]
    assert measured["after"] == 1, "and gives them back"
    for i in range(2):
        steps = json.loads((tmp_path / f"steps{i}.json").read_text())
        overlapping = [s for s in steps for m0, m1, *_ in spans if s[0] < m1 and m0 < s[1]]
        assert not overlapping, f"trainer {i} stepped during a measurement: {overlapping[:3]}"
        assert any(s[1] < spans[0][0] for s in steps) and any(s[0] > spans[-1][1] for s in steps)


def test_a_serial_run_has_no_gate():
    threads = torch.get_num_threads()
    quiet.pause()  # no gate: returns at once
    with quiet.measuring():
        assert torch.get_num_threads() == threads

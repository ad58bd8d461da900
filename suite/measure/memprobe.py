"""Peak CPU memory of inference and of one training step, measured in a fresh process.

The CPU allocator keeps no peak statistic, and a long-lived process reuses the heap that
earlier cells freed, so resident-set growth there says little. Instead a small server
(``SERVER``, a ``python -c`` command) imports torch and rpg-bench once and forks a fresh child
per request. The child rebuilds the cell's model from its configuration, loads the
trained state dict (``weights_only=True``: nothing is unpickled), resets the kernel's
high-water mark (``/proc/self/clear_refs``), runs the workload and reports ``VmHWM`` (the
peak) against ``VmRSS`` before it (the model, runtime and optimiser state already
resident, after one untimed warm-up call). glibc is
told to serve every allocation over 64 KiB by mmap and to return it on free, so freed
memory cannot be silently reused: the growth is what the workload's tensors needed.
Linux only; elsewhere callers record null with the reason.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from suite.system import lifeline

TIMEOUT = 600  # seconds one probe may take before the server is killed and null recorded
# The server's command: first of all, before torch's seconds of imports, it dies with the
# process that started it (a killed rpg-bench or worker must not leave its server, or a
# probe, running); then it serves.
SERVER = (
    f"import suite.system.lifeline as l; l.from_environment({int(signal.SIGKILL)}); "
    "import suite.measure.memprobe as m; m.serve()"
)
_ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _model(request: dict) -> nn.Module:
    import rpg
    from suite import methods
    from suite.cells import Cell

    cell = Cell.from_config(request["config"])
    state = torch.load(request["state"], weights_only=True)
    # The parent's knob setting: rebuilding needs no second budget solve.
    model = methods.get(cell.method).rebuild(cell.net(), request["setting"], cell.seed, state)
    return rpg.materialize(model) if request["form"] == "deployed" else model


def _measure(request: dict) -> dict:
    from suite import tasks

    model = _model(request)
    x, y = torch.load(request["batch"], weights_only=True)
    task = tasks.get(request["config"]["task"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)

    def run():
        if request["workload"] == "inference":
            model.eval()
            with torch.inference_mode():
                model(x)
        else:  # one SGD step
            model.train()
            task.loss(model(x), y).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    # One untimed call first: the runtime's one-time set-up (thread pools, kernel caches)
    # and the optimiser's momentum buffers are not the workload's peak.
    run()
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts from here
    run()
    peak = _status_kb("VmHWM")
    return {"rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024, "peak_mb": (peak - before) / 1024}


def serve() -> None:
    """Answer one JSON request per stdin line, each in a freshly forked child."""
    import torch._dynamo  # noqa: F401  (an optimiser's first use imports it: 3 s in every child otherwise)

    import suite.cells  # noqa: F401
    import suite.methods  # noqa: F401  (imported once here, inherited by every child)

    server = os.getpid()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            lifeline.die_with_parent(server)
            # One thread: a forked child's OpenMP team can spin forever in oneDNN's
            # convolution backward (torch 2.14.1; seen on 1x1 convolutions, for minutes,
            # at full CPU, outliving a killed run). Peak memory hardly depends on threads.
            torch.set_num_threads(1)
            try:
                result = _measure(request)
            except BaseException as e:  # the child must never return into the loop
                result = {"error": f"{type(e).__name__}: {e}"}
            Path(request["result"]).write_text(json.dumps(result))
            os._exit(0)
        os.waitpid(pid, 0)
        print("done", flush=True)


class Prober:
    """A client for the server; one per process, started on first use."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **_ALLOCATOR_ENV, **lifeline.child_environment()},
            start_new_session=True,  # so a hung probe and its forked child are killed together
        )
        atexit.register(self.close)

    def measure(self, config: dict, setting: dict, state: dict, batch: tuple, form: str, workload: str) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            request = {
                "config": config,
                "setting": setting,
                "state": f"{tmp}/state.pt",
                "batch": f"{tmp}/batch.pt",
                "result": f"{tmp}/result.json",
                "form": form,
                "workload": workload,
            }
            torch.save(state, request["state"])
            torch.save(batch, request["batch"])
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            try:
                ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
                if not ready:
                    raise RuntimeError(f"the memory probe took over {TIMEOUT} s and was stopped")
                if self.proc.stdout.readline().strip() != "done":
                    raise RuntimeError("the memory probe server exited")
            except BaseException:
                # Timed out, or a stop signal came meanwhile (suite.system.stopping): the probe is not
                # waited for, and the server, now out of step, is not used again.
                self.kill()
                raise
            result = json.loads(Path(request["result"]).read_text())
        if "error" in result:
            raise RuntimeError(result["error"])
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """The server and its probe, at once (they share a session: one process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


_prober: Prober | None = None


def probe(config: dict, setting: dict, state: dict, batch: tuple, *, form: str, workload: str) -> dict:
    """Peak memory of ``workload`` ('inference' or 'train_step') on the cell's model in
    ``form`` ('deployed' or 'training'), in a fresh process."""
    global _prober
    if _prober is None or _prober.proc.poll() is not None:
        _prober = Prober()
    state = {k: v.cpu() if torch.is_tensor(v) else v for k, v in state.items()}
    return _prober.measure(config, setting, state, batch, form, workload)

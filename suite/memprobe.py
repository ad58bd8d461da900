"""Peak CPU memory of inference, measured in a fresh process.

The CPU allocator keeps no peak statistic, and a long-lived process reuses the heap that
earlier cells freed, so resident-set growth there says little. Instead a small server
(``python -m suite.memprobe``) imports torch once and forks a fresh child per request; the
child loads the model, resets the kernel's high-water mark (``/proc/self/clear_refs``),
runs inference and reports ``VmHWM`` (the peak) against ``VmRSS`` before it (the model
and runtime already resident). Linux only; elsewhere callers record "n/a".
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _measure(request: dict) -> dict:
    model = torch.load(request["model"], weights_only=False)  # our own file, written just now
    example = torch.load(request["input"], weights_only=True)
    model.eval()
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts from here
    with torch.inference_mode():
        for _ in range(request["repeats"]):
            model(example)
    peak = _status_kb("VmHWM")
    return {"rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024}


def serve() -> None:
    """Answer one JSON request per stdin line, each in a freshly forked child."""
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
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
            [sys.executable, "-m", "suite.memprobe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        atexit.register(self.close)

    def measure(self, model: nn.Module, example: torch.Tensor, repeats: int) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            request = {
                "model": f"{tmp}/model.pt",
                "input": f"{tmp}/input.pt",
                "result": f"{tmp}/result.json",
                "repeats": repeats,
            }
            torch.save(model, request["model"])
            torch.save(example.cpu(), request["input"])
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            if self.proc.stdout.readline().strip() != "done":
                raise RuntimeError("the memory probe server exited")
            result = json.loads(Path(request["result"]).read_text())
        if "error" in result:
            raise RuntimeError(result["error"])
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


_prober: Prober | None = None


def probe(model: nn.Module, example: torch.Tensor, repeats: int = 3) -> dict:
    global _prober
    if _prober is None or _prober.proc.poll() is not None:
        _prober = Prober()
    return _prober.measure(model, example, repeats)


if __name__ == "__main__":
    serve()

"""The environment fingerprint stored on every record: enough to tell two runs' machines apart."""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

import suite
from suite.system import nvml

_ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=_ROOT, capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def code_version() -> dict:
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    if commit is None:  # an installed copy, as in the image: the commit it was built from
        commit = os.environ.get("RPG_BENCH_GIT_COMMIT") or None
    return {"rpg_bench": suite.__version__, "git_commit": commit, "git_dirty": dirty}


# Read when the code is imported, not when the first cell asks: a run records the commit
# of the code it loaded, even if a commit lands on disk while it runs.
code_version()


# What the extras install (pyproject.toml), by the module the code imports and the
# distributions that provide it: every record says which measurements its machine could make.
OPTIONAL = {
    "onnx": ("onnx",),
    "onnxscript": ("onnxscript",),
    "onnxruntime": ("onnxruntime-gpu", "onnxruntime"),
    "pynvml": ("nvidia-ml-py",),
    "matplotlib": ("matplotlib",),
}


def _version(module: str, dists: tuple[str, ...]) -> str:
    if importlib.util.find_spec(module) is None:
        return "not installed"
    for dist in dists:
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "installed (version unknown)"


def optional() -> dict[str, str]:
    """Each optional module: '<distribution> <version>', or 'not installed'."""
    return {module: _version(module, dists) for module, dists in OPTIONAL.items()}


def fingerprint(device: torch.device) -> dict:
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": metadata.version("torchvision"),  # importing it costs seconds
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "image_digest": os.environ.get("RPG_BENCH_IMAGE_DIGEST"),
        "gpu": nvml.fingerprint(device),
        "optional": optional(),
    }
    info.update(code_version())
    return info

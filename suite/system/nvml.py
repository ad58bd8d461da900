"""NVIDIA's management library (nvidia-ml-py), where there is one: null numbers (and "not
available" in the environment record) everywhere else.

pynvml raises NVMLError without a GPU or driver; nothing here lets that escape.
"""

from __future__ import annotations

import functools
import importlib.util

import torch

NA = None  # a number NVML cannot give


@functools.cache
def _handle(index: int):
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # NVMLError, ImportError, no driver: all mean "not available"
        return None


def _read(device: torch.device, fn) -> object:
    if device.type != "cuda":
        return NA
    found = _handle(device.index if device.index is not None else torch.cuda.current_device())
    if found is None:
        return NA
    try:
        return fn(*found)
    except Exception:
        return NA


def used_mb(device: torch.device) -> object:
    return _read(device, lambda nv, h: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20)


def fingerprint(device: torch.device) -> dict:
    """Driver, clocks and limits of the device, for the environment record."""

    def read(nv, h):
        return {
            "driver": nv.nvmlSystemGetDriverVersion(),
            "sm_clock_mhz": nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
            "sm_clock_max_mhz": nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),
            "power_limit_w": nv.nvmlDeviceGetPowerManagementLimit(h) / 1000,
            "memory_total_mb": nv.nvmlDeviceGetMemoryInfo(h).total / 2**20,
        }

    found = _read(device, read)
    if isinstance(found, dict):
        return found
    return {"nvml": "not available" if installed() else "not installed (pip install 'rpg-bench[gpu]')"}


def installed() -> bool:
    """Whether nvidia-ml-py is there to ask (the ``[gpu]`` extra)."""
    return importlib.util.find_spec("pynvml") is not None

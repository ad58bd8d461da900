"""8-bit post-training quantisation (the paper's Appendix A) with PyTorch's own tools.

A trained model is first made plain (``rpg.materialize``: an RPG network's generated
weights become ordinary ones), then quantised by FX graph mode: observers from the x86
backend's default mapping (per-channel int8 weights, int8 activations), calibrated on
training batches, converted. Quantised kernels run on the CPU only; ``OnCpu`` lets the
rest of the pipeline hand it batches from any device.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

import rpg

BACKEND = "x86"
CALIBRATION = 1024  # training images the observers see


class OnCpu(nn.Module):
    """A CPU-only (quantised) model behind the interface of one on any device."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.cpu()).to(x.device)


def quantise(model: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    """An int8 copy of ``model``, its activation ranges calibrated on ``batches``."""
    torch.backends.quantized.engine = BACKEND
    plain = rpg.materialize(model).cpu().eval()
    example = (batches[0][:1].cpu(),)
    prepared = prepare_fx(copy.deepcopy(plain), get_default_qconfig_mapping(BACKEND), example)
    with torch.no_grad():
        for x in batches:
            prepared(x.cpu())
    return OnCpu(convert_fx(prepared)).eval()

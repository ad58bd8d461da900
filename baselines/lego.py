"""LegoNet (Yang et al., ICCV 2019): every conv built from a few shared "lego" filters.

A conv with C_in inputs, C_out outputs and a k x k kernel splits its inputs into ``o``
groups of C_in / o channels. The layer owns ``m`` lego filters of shape (C_in / o, k, k).
For each output channel c and each split i, one lego is selected and scaled by a learned
coefficient, so the kernel slice ``K[c, split i] = coef[i, c] * lego[sel[i, c]]``. We build
the full kernel this way and run one ordinary conv: the same function as the paper's
lego-feature-then-1x1 formulation, and any stride or padding of the original conv is kept
(LegoNet had none; a ResNet needs both).

The selection ``sel = argmax(logits)`` is learned with a straight-through estimator: the
forward uses the one-hot argmax, the backward hands its gradient to the logits. A balance
term pushes the logits of over-used legos down and of under-used ones up, so every lego is
picked about (o * C_out) / m times. After a warm-up (``freeze_at``, a fraction of the
epochs; ours, since the paper does not fix one) the selection is frozen: the logits stop
training and the network trains legos and coefficients only.

Counting rule: lego filters plus one coefficient per (split, output channel). The logits
are a training-time proxy for a discrete choice (log2(m) bits per coefficient in the
deployed model), so the ledger skips them (they carry ``ledger_proxy = True``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from baselines.phases import Phased

BALANCE = 1e-4  # the balance term's weight per lego of excess use


def split_of(in_channels: int, split: int) -> int:
    """The split a layer can take: ``split`` where it divides C_in, else 1 (an RGB stem)."""
    return split if in_channels % split == 0 else 1


def count(shape: torch.Size | tuple[int, ...], legos: int, split: int) -> int:
    """Learned scalars of one lego conv: lego filters + coefficients."""
    out_channels, in_channels, *kernel = shape
    o = split_of(in_channels, split)
    return legos * (in_channels // o) * math.prod(kernel) + o * out_channels


class LegoWeight(nn.Module, Phased):
    """A parametrization producing a conv kernel from lego filters (see the module docstring)."""

    def __init__(self, shape: torch.Size, legos: int, split: int, freeze_at: float = 0.5) -> None:
        super().__init__()
        out_channels, in_channels, *kernel = shape
        if not 1 <= legos <= out_channels:
            raise ValueError(f"legos must be in 1..{out_channels} (the layer's outputs), got {legos}")
        self.shape = tuple(shape)
        self.split = split_of(in_channels, split)
        self.freeze_at = freeze_at
        per = in_channels // self.split
        fan_out = out_channels * math.prod(kernel)
        # Coefficients ~ N(0, 1) and legos at the layer's Kaiming std: the kernel starts
        # at the std a dense conv would have.
        self.lego = nn.Parameter(torch.randn(legos, per, *kernel) * math.sqrt(2.0 / fan_out))
        self.coef = nn.Parameter(torch.randn(self.split, out_channels))
        self.logits = nn.Parameter(torch.randn(self.split, out_channels, legos))
        self.logits.ledger_proxy = True
        self.logits.register_hook(self._balance)
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))
        self._frozen = False  # the buffer's value as a Python bool: no device sync per forward

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        # The dense weight is never read again: keep an empty placeholder, not a copy.
        return weight.new_empty(0)

    def _freeze(self) -> None:
        self.frozen.fill_(True)
        self._frozen = True
        self.logits.requires_grad_(False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if bool(self.frozen):
            self._freeze()

    def _balance(self, grad: torch.Tensor) -> torch.Tensor:
        legos = self.logits.shape[-1]
        used = torch.bincount(self.logits.detach().argmax(-1).flatten(), minlength=legos).to(grad.dtype)
        mean = used.sum() / legos
        excess = (used - mean.ceil()).clamp(min=0) - (mean.floor() - used).clamp(min=0)
        return grad + BALANCE * excess

    def selection(self) -> torch.Tensor:
        """One-hot (split, C_out, m); straight-through to the logits while they train."""
        hard = torch.nn.functional.one_hot(self.logits.argmax(-1), self.logits.shape[-1]).to(self.logits.dtype)
        if self._frozen or not self.logits.requires_grad:
            return hard
        return hard + self.logits - self.logits.detach()

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        pick = self.selection() * self.coef.unsqueeze(-1)
        out_channels, in_channels, *kernel = self.shape
        kernel_ = torch.einsum("icm,mpxy->cipxy", pick, self.lego)
        return kernel_.reshape(out_channels, in_channels, *kernel)

    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        """Freeze the selection once the warm-up is over."""
        if not self._frozen and epoch >= math.ceil(self.freeze_at * epochs):
            self._freeze()


def targets(model: nn.Module, exclude: Iterable[str] = ()) -> list[str]:
    """The convs LegoNet rebuilds: every conv outside ``exclude``."""
    skip = set(exclude)
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n not in skip]


def convert(model: nn.Module, legos: Mapping[str, int], split: int = 2) -> nn.Module:
    """Rebuild the named convs of ``model`` from lego filters, in place; return the model."""
    modules = dict(model.named_modules())
    for name, m in legos.items():
        conv = modules[name]
        lego = LegoWeight(conv.weight.shape, m, split).to(conv.weight.device)
        parametrize.register_parametrization(conv, "weight", lego, unsafe=True)
        # The dense weight the parametrization replaces stays only as a placeholder.
        conv.parametrizations.weight.original.requires_grad_(False)
    return model

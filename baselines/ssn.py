"""Shapeshifter Networks (Plummer et al., "Neural Parameter Allocation Search", ICLR 2022),
written from the paper; the structure (groups of layers, one flat bank each, learned mixing
of candidates drawn from it, interpolation where a layer needs more) follows its MIT-licensed
code, BryanPlummer/SSN, which we credit.

Every conv is assigned to a parameter group; each group owns one flat bank of weights. A
layer of n weights reads T candidates from its group's bank -- the bank read circularly from
T offsets spread evenly over it -- and mixes them with T coefficients of its own (SSN's
``wavg``). Mixing is linear, so the layer mixes the T rotations of the bank first and then
takes its n weights: the first n when the bank holds at least n, else the mix upsampled to n
by linear interpolation (SSN's ``inter``). As in SSN's code, the scale sits in the bank
(Kaiming-normal there) and the coefficients are a row of an orthogonal matrix: here a bank
starts at the root-mean-square Kaiming std of the convs that read it, and a layer's
coefficients are a random unit vector times its own Kaiming std over the bank's, so its
kernel starts at the std of the conv it replaces. (With the scale in the coefficients
instead -- a unit bank and coefficients ~0.05 -- a step moves the kernel through the bank
by about std^2 of what it moves a conv's own weight: the bank barely trained, and SSN's
accuracy did not grow with its budget.)

Groups: ``random`` (layers dealt to groups by the seed) or ``learned``: a short training with
every layer in one group, then k-means on the layers' coefficients (suite.methods.ssn). A
group's bank gets its share of the banks' total in proportion to the weights its layers
need. The assignment is a buffer of the model, so a checkpoint rebuilds it.

Counting rule: every bank (each counted once, however many layers read it), T coefficients
per layer, BN and biases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from rpg.convert import kaiming_fan_out_std

TEMPLATES = 8  # candidates per layer (SSN's default)


def targets(model: nn.Module) -> list[str]:
    """Every conv: SSN shares across layers of any size or kind."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def split(total: int, needs: Sequence[int], least: int) -> list[int]:
    """``total`` scalars dealt to banks in proportion to ``needs`` (largest remainders), each
    at least ``least``; the shares sum to ``total``."""
    if total < least * len(needs):
        raise ValueError(f"{total} scalars cannot give {len(needs)} banks {least} each")
    spare = total - least * len(needs)
    exact = [spare * n / sum(needs) for n in needs]
    shares = [math.floor(x) for x in exact]
    for i in sorted(range(len(needs)), key=lambda i: shares[i] - exact[i])[: spare - sum(shares)]:
        shares[i] += 1
    return [least + s for s in shares]


class Bank(nn.Module):
    def __init__(self, size: int, std: float = 1.0) -> None:
        super().__init__()
        self.std = std
        self.weight = nn.Parameter(torch.randn(size) * std)


class Shaped(nn.Module):
    """A parametrization: the conv's kernel, mixed from its group's bank."""

    def __init__(self, bank: Bank, shape: Sequence[int], templates: int) -> None:
        super().__init__()
        self.bank = bank
        self.shape = tuple(shape)
        size = bank.weight.numel()
        self.offsets = [j * size // templates for j in range(templates)]
        unit = torch.randn(templates)
        self.coefficients = nn.Parameter(unit / unit.norm() * kaiming_fan_out_std(self.shape) / bank.std)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.new_empty(0)  # the dense weight is never read again: an empty placeholder

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        bank = self.bank.weight
        n = math.prod(self.shape)
        read = min(n, bank.numel())  # a layer larger than its bank mixes the whole bank, then upsamples
        mixed = sum(a * _window(bank, o, read) for a, o in zip(self.coefficients, self.offsets, strict=True))
        if n > read:  # SSN's "inter": linear interpolation over the bank's length
            mixed = F.interpolate(mixed.view(1, 1, -1), size=n, mode="linear", align_corners=True).view(-1)
        return mixed.view(self.shape)


def _window(bank: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """``n`` elements of ``bank`` read circularly from ``start`` (a view where they do not wrap)."""
    end = start + n
    return bank[start:end] if end <= bank.numel() else torch.cat([bank[start:], bank[: end - bank.numel()]])


def convert(model: nn.Module, groups: Sequence[int], banks: Sequence[int], templates: int = TEMPLATES) -> nn.Module:
    """Generate every conv of ``model`` (``targets`` order) from the bank of its group
    (``groups[i]``, an index into ``banks``, the banks' sizes), in place; return the model.
    The assignment is kept as the model's ``ssn_groups`` buffer."""
    names = targets(model)
    if len(groups) != len(names):
        raise ValueError(f"{len(groups)} group indices for {len(names)} convs")
    device = model.get_submodule(names[0]).weight.device
    squares = [[] for _ in banks]  # each bank's convs' Kaiming variances
    for name, g in zip(names, groups, strict=True):
        squares[g].append(kaiming_fan_out_std(model.get_submodule(name).weight.shape) ** 2)
    stds = [math.sqrt(sum(v) / len(v)) if v else 1.0 for v in squares]
    pool = [Bank(size, std).to(device) for size, std in zip(banks, stds, strict=True)]
    for name, g in zip(names, groups, strict=True):
        conv = model.get_submodule(name)
        shaped = Shaped(pool[g], conv.weight.shape, templates).to(device)
        parametrize.register_parametrization(conv, "weight", shaped, unsafe=True)
        conv.parametrizations.weight.original.requires_grad_(False)
    model.register_buffer("ssn_groups", torch.tensor(list(groups), device=device))
    return model


def coefficients(model: nn.Module) -> torch.Tensor:
    """Every generated conv's coefficients (``targets`` order), one row each: what learned
    groups cluster."""
    return torch.stack(
        [model.get_submodule(n).parametrizations.weight[0].coefficients.detach() for n in targets(model)]
    )

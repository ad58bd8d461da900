"""Soft parameter sharing (Savarese & Maire, "Learning Implicitly Recurrent CNNs Through
Parameter Sharing", ICLR 2019), written from the paper.

Each stage of a ResNet owns a bank of k templates T_1..T_k, each of the shape of the
stage's 3x3 convs (w, w, 3, 3). A shared conv owns only k coefficients alpha, and its
kernel is sum_i alpha_i T_i: the network learns how much of each template every layer
uses, so a layer can become an exact repeat of another (a loop) or stay its own. The
coefficients of a stage's layers start orthogonal (the rows of an orthogonal matrix of
layers x templates, so no two layers start alike) and are not weight-decayed
(``no_weight_decay``, read by suite.training.train); the templates start at the layer's Kaiming std.

Which convs share: the paper's wide ResNets leave the first block of every stage unshared
(it changes width and stride). Here only the convs whose shape differs from the stage's
templates are left out -- the first conv of a stage's first block and its shortcut, plus
the stem -- because a ResNet-18 stage has two blocks, not four: leaving a whole block out
would leave two convs per stage to share. Every other 3x3 conv of the stage reads its bank.

Counting rule: the templates (each counted once, however many layers read them), one
coefficient per (template, shared conv), and every conv that reads no bank, BN and biases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from baselines.plain import BasicBlock


class TemplateBank(nn.Module):
    """k templates of one kernel shape, read by every conv of a stage."""

    def __init__(self, templates: int, shape: Sequence[int]) -> None:
        super().__init__()
        out_channels, _, *kernel = shape
        std = math.sqrt(2.0 / (out_channels * math.prod(kernel)))  # Kaiming (fan_out), as the ResNet's convs
        self.templates = nn.Parameter(torch.randn(templates, *shape) * std)


class Mixed(nn.Module):
    """A parametrization: the conv's kernel as its coefficients' mix of the bank's templates."""

    def __init__(self, bank: TemplateBank, coefficients: torch.Tensor) -> None:
        super().__init__()
        self.bank = bank
        self.coefficients = nn.Parameter(coefficients.clone())
        self.coefficients.no_weight_decay = True  # the paper decays the templates only

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.new_empty(0)  # the dense weight is never read again: an empty placeholder

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        return torch.tensordot(self.coefficients, self.bank.templates, dims=1)


def stages(model: nn.Module) -> dict[str, list[str]]:
    """Per stage (``layer1``..), the convs that read its bank: every 3x3 conv of its blocks
    but the first block's first (it enters the stage); shortcuts are 1x1 and stay."""
    out = {}
    for stage, layer in [(n, m) for n, m in model.named_children() if n.startswith("layer")]:
        blocks = [(f"{stage}.{i}", b) for i, b in enumerate(layer) if isinstance(b, BasicBlock)]
        out[stage] = [f"{name}.{conv}" for i, (name, _) in enumerate(blocks) for conv in ("conv1", "conv2")[i == 0 :]]
    return out


def count(shape: Sequence[int], templates: int, layers: int) -> int:
    """Learned scalars of one stage's sharing: its templates and its layers' coefficients."""
    return templates * math.prod(shape) + templates * layers


def convert(model: nn.Module, shared: Mapping[str, Sequence[str]], templates: Mapping[str, int]) -> nn.Module:
    """Give each stage of ``shared`` a bank of ``templates[stage]`` templates and make its
    listed convs mixes of it, in place; return the model."""
    for stage, names in shared.items():
        convs = [model.get_submodule(n) for n in names]
        shape = tuple(convs[0].weight.shape)
        if any(tuple(c.weight.shape) != shape for c in convs):
            raise ValueError(f"{stage}: the convs sharing a bank must have one shape")
        k = templates[stage]
        bank = TemplateBank(k, shape).to(convs[0].weight.device)
        alphas = torch.empty(len(convs), k, device=bank.templates.device)
        nn.init.orthogonal_(alphas)  # layers x templates, orthogonal (as the paper starts them)
        for conv, alpha in zip(convs, alphas, strict=True):
            parametrize.register_parametrization(conv, "weight", Mixed(bank, alpha), unsafe=True)
            conv.parametrizations.weight.original.requires_grad_(False)
    return model

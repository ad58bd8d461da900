"""Filter pruning via geometric median (FPGM; He et al., CVPR 2019) of a ResNet, through
torch-pruning: its dependency graph finds every layer a channel touches, its
``FPGMImportance`` scores a group's channels (the summed distance of each filter to the
others: a filter near the geometric median is the most replaceable), and its pruning
removes the lowest-scoring channels.

A plain ResNet's channels fall into groups that must be pruned together: each stage's
residual stream (the stem or the shortcut, and every block's second conv, which add into
it) and each block's inner channels (its first conv's outputs). A pruned ResNet is
therefore a ResNet with a width per stage and a width per block inside it, and its size
follows from those widths alone (``count``), before any weight is scored. FPGM prunes every
layer at one rate; the budget here takes one kept fraction for every group, then single
channels where they still fit (suite.methods.fpgm).

Counting rule: the pruned network's trainable scalars outside the head, BN included.
"""

from __future__ import annotations

import re

import torch
from torch import nn

_BLOCK = re.compile(r"layer(\d+)\.(\d+)\.(conv1|bn1|conv2|bn2|downsample\.0|downsample\.1)$")


def groups(model: nn.Module) -> list[str]:
    """The channel groups of a plain ResNet, residual streams first: ``res1``..``res4``,
    then ``inner.<stage>.<block>``; a group's name says which layers it covers (``layout``)."""
    blocks = sorted({(int(m[1]), int(m[2])) for n, _ in model.named_modules() if (m := _BLOCK.match(n))})
    return [f"res{s}" for s in sorted({s for s, _ in blocks})] + [f"inner.{s}.{b}" for s, b in blocks]


def layout(model: nn.Module) -> dict[str, tuple[str | None, str | None, int]]:
    """Per conv or BN of the backbone: (the group of its outputs, the group of its inputs --
    None for the image or a BN --, scalars per (output, input) pair). The stem feeds stage 1's
    residual stream; a block's first conv reads the stream before it."""
    out = {}
    for name, module in model.named_modules():
        if name in ("conv1", "bn1"):  # the stem
            out[name] = ("res1", None, module.weight[0].numel() if name == "conv1" else 2)
            continue
        m = _BLOCK.match(name)
        if not m:
            continue
        stage, block, part = int(m[1]), int(m[2]), m[3]
        stream_in = f"res{stage - 1}" if block == 0 and stage > 1 else f"res{stage}"
        inner, stream = f"inner.{stage}.{block}", f"res{stage}"
        area = module.weight[0, 0].numel() if isinstance(module, nn.Conv2d) else 2
        out[name] = {
            "conv1": (inner, stream_in, area),
            "bn1": (inner, None, 2),
            "conv2": (stream, inner, area),
            "bn2": (stream, None, 2),
            "downsample.0": (stream, stream_in, area),
            "downsample.1": (stream, None, 2),
        }[part]
    return out


def count(layers: dict[str, tuple[str | None, str | None, int]], keep: dict[str, int]) -> int:
    """Backbone scalars of the ResNet pruned to ``keep`` channels per group (``layout``'s
    layers; the stem's inputs, the image's channels, are in its scalars per output)."""
    return sum(keep[out] * (keep[into] if into else 1) * per for out, into, per in layers.values())


def roots(model: nn.Module) -> dict[str, str]:
    """The conv whose output channels stand for each group: a stage's last second conv, a
    block's first conv."""
    out = {}
    for name, _ in model.named_modules():
        m = _BLOCK.match(name)
        if m and m[3] == "conv2":
            out[f"res{m[1]}"] = name
        elif m and m[3] == "conv1":
            out[f"inner.{m[1]}.{m[2]}"] = name
    return out


def prune(model: nn.Module, example: torch.Tensor, keep: dict[str, int]) -> dict:
    """Prune ``model`` in place to ``keep`` channels per group, the lowest FPGM scores first;
    what was kept of each group."""
    import torch_pruning as tp  # here: it imports timm and torchvision's models, seconds every start

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    scorer = tp.importance.FPGMImportance()
    kept = {}
    for group, name in roots(model).items():
        conv = model.get_submodule(name)
        channels = conv.out_channels
        if not 1 <= keep[group] <= channels:
            raise ValueError(f"{group}: cannot keep {keep[group]} of {channels} channels")
        scores = scorer(graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(channels))))
        drop = scores.argsort()[: channels - keep[group]].tolist()
        if drop:
            graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=drop).prune()
        kept[group] = [keep[group], channels]
    return kept


def restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give a freshly built network the shapes of a pruned one's state dict, in place, so
    that the state loads into it (its values are the state's to set)."""
    with torch.no_grad():
        for name, module in model.named_modules():
            for key in list(module._parameters) + list(module._buffers):
                full = f"{name}.{key}" if name else key
                tensor = getattr(module, key)
                if full not in state or tensor is None or state[full].shape == tensor.shape:
                    continue
                empty = torch.empty_like(state[full], device=tensor.device)
                if key in module._parameters:
                    setattr(module, key, nn.Parameter(empty, requires_grad=tensor.requires_grad))
                else:
                    setattr(module, key, empty)
            if isinstance(module, nn.Conv2d):
                module.out_channels, module.in_channels = module.weight.shape[:2]
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.num_features = module.weight.shape[0]
            elif isinstance(module, nn.Linear):
                module.out_features, module.in_features = module.weight.shape

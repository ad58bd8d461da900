"""Pose targets as heat-maps, and their augmentation, vectorised on the batch's device.
The targets' packing is suite.data.joints' (pack and unpack are re-exported here)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from suite.data.joints import pack, unpack

__all__ = ["SIGMA", "augment", "pack", "render", "unpack"]

SIGMA = 1.0  # of the target Gaussians, in heat-map pixels (Newell et al.)


def render(target: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Gaussian heat-maps (N, 16, size, size) at 1/``stride`` of the input; an invisible
    joint's map is all zero (nothing to find there)."""
    joints, visible, _ = unpack(target)
    centre = (joints + 0.5) / stride - 0.5  # pixel centres of the input onto the heat-map
    grid = torch.arange(size, device=target.device, dtype=target.dtype)
    gx = torch.exp(-((grid - centre[..., 0:1]) ** 2) / (2 * SIGMA**2))
    gy = torch.exp(-((grid - centre[..., 1:2]) ** 2) / (2 * SIGMA**2))
    return gy[..., :, None] * gx[..., None, :] * visible[..., None, None]


def augment(
    x: torch.Tensor,
    target: torch.Tensor,
    generator: torch.Generator,
    flip_order: list[int],
    scale: float = 0.25,
    rotate: float = 30.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scale (1 ± ``scale``), rotation (± ``rotate`` degrees, about the centre) and
    horizontal flip of every image with its joints (Newell et al.'s augmentation). A
    flipped image's left and right joints swap; a joint moved outside becomes invisible.
    An image whose target says it may not be flipped is only scaled and rotated."""
    n, _, h, w = x.shape
    s = 1 + scale * (2 * torch.rand(n, generator=generator) - 1)
    a = math.radians(rotate) * (2 * torch.rand(n, generator=generator) - 1)
    flip = torch.rand(n, generator=generator) < 0.5
    s, a, flip = s.to(x.device), a.to(x.device), flip.to(x.device) & (target[:, -1, 1] > 0.5)
    # Forward map in normalised coordinates: p' = s * R(a) * F * p, F mirrors x.
    cos, sin = torch.cos(a), torch.sin(a)
    mirror = torch.where(flip, -1.0, 1.0)
    forward = torch.stack(
        [torch.stack([s * cos * mirror, -s * sin], -1), torch.stack([s * sin * mirror, s * cos], -1)], -2
    )
    inverse = torch.linalg.inv(forward)  # grid_sample asks, for each output pixel, where to read
    theta = torch.cat([inverse, torch.zeros(n, 2, 1, device=x.device)], dim=-1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, align_corners=False)

    joints, visible, head = unpack(target)
    size = torch.tensor([w, h], device=x.device, dtype=x.dtype)
    normalised = (joints + 0.5) / size * 2 - 1
    moved = torch.einsum("nij,nkj->nki", forward, normalised)
    moved_px = (moved + 1) / 2 * size - 0.5
    order = torch.tensor(flip_order, device=x.device)
    moved_px = torch.where(flip[:, None, None], moved_px[:, order], moved_px)
    visible = torch.where(flip[:, None], visible[:, order], visible)
    inside = ((moved_px >= 0) & (moved_px <= size - 1)).all(-1)
    return out, pack(moved_px, visible & inside, head * s, target[:, -1, 1])

"""Depth and surface-normal errors (Table 5), over the valid pixels of a whole split.

Targets are packed (N, 4, H, W): channel 0 depth in metres (0 where missing), 1-3 the unit
normal (the zero vector where missing). Predictions are (N, 4, H, W): log-depth, and a
normal of any length (made unit here).

The paper gives both errors as percentages and does not say of what. Here:
    depth_rmse    root mean squared *relative* depth error, in percent of the true depth:
                  100 * sqrt(mean((d_pred - d) / d)^2), scale-free as a percentage must be;
    normal_rmse   root mean squared error of the unit normal's components (each in
                  [-1, 1]), in percent: 100 * sqrt(mean over pixels and x, y, z of
                  (n_pred - n)^2). A 40 degree error everywhere gives 39.5%;
and beside them, in the data's own units: depth_rmse_m (metres) and normal_angle (the
mean angle between predicted and true normals, degrees). Means are over every valid
pixel of the split, not per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NORMAL_VALID = 0.5  # a target normal shorter than this is missing (a decoded PNG's grey)


def masks(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(valid depth, valid normal), each (N, H, W)."""
    return target[:, 0] > 0, target[:, 1:].norm(dim=1) > NORMAL_VALID


def sums(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The sums one batch adds to a split's errors (``finish`` turns them into errors)."""
    depth_ok, normal_ok = masks(target)
    depth, truth = prediction[:, 0].exp()[depth_ok], target[:, 0][depth_ok]
    normal = F.normalize(prediction[:, 1:], dim=1).permute(0, 2, 3, 1)[normal_ok]
    true_normal = F.normalize(target[:, 1:], dim=1).permute(0, 2, 3, 1)[normal_ok]
    cosine = (normal * true_normal).sum(1).clamp(-1, 1)
    return {
        "relative2": float((((depth - truth) / truth) ** 2).sum()),
        "metres2": float(((depth - truth) ** 2).sum()),
        "depth_pixels": int(depth_ok.sum()),
        "normal2": float(((normal - true_normal) ** 2).sum()),
        "degrees": float(torch.rad2deg(torch.acos(cosine)).sum()),
        "normal_pixels": int(normal_ok.sum()),
    }


def finish(total: dict[str, float]) -> dict[str, float]:
    d, n = max(total["depth_pixels"], 1), max(total["normal_pixels"], 1)
    return {
        "depth_rmse": 100 * math.sqrt(total["relative2"] / d),
        "normal_rmse": 100 * math.sqrt(total["normal2"] / (3 * n)),
        "depth_rmse_m": math.sqrt(total["metres2"] / d),
        "normal_angle": total["degrees"] / n,
    }


def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SharpNet's weighting (depth 1, normals 0.5) of an L1 log-depth error (relative, as
    the metric is) and 1 - cosine for normals, each a mean over valid pixels."""
    depth_ok, normal_ok = masks(target)
    log_depth = target[:, 0].clamp_min(1e-3).log()
    depth_term = ((prediction[:, 0] - log_depth).abs() * depth_ok).sum() / depth_ok.sum().clamp_min(1)
    cosine = F.cosine_similarity(prediction[:, 1:], target[:, 1:], dim=1)
    normal_term = ((1 - cosine) * normal_ok).sum() / normal_ok.sum().clamp_min(1)
    return depth_term + 0.5 * normal_term

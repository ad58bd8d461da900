"""PCKh (Andriluka et al. 2014): the share of joints predicted within a fraction of the
person's head size, MPII's pose metric.

A joint counts only where it is annotated as visible. The head size is 0.6 times the
diagonal of the annotated head box, as MPII's evaluation code has it. The mean is MPII's
"Mean": every visible joint of every person weighs the same, pelvis and thorax excluded
(their positions follow from the hips and shoulders, so MPII leaves them out).
"""

from __future__ import annotations

import torch

from suite.data.joints import HEAD_BOX_FACTOR, JOINTS

__all__ = ["HEAD_BOX_FACTOR", "JOINTS", "LEFT_OUT_OF_MEAN", "decode", "head_size", "pckh"]

LEFT_OUT_OF_MEAN = (JOINTS.index("pelvis"), JOINTS.index("thorax"))


def head_size(head_box: torch.Tensor) -> torch.Tensor:
    """(N, 4) boxes as x1, y1, x2, y2 -> (N,) head sizes."""
    return HEAD_BOX_FACTOR * torch.linalg.vector_norm(head_box[:, 2:] - head_box[:, :2], dim=1)


def pckh(
    predicted: torch.Tensor, truth: torch.Tensor, visible: torch.Tensor, head: torch.Tensor, threshold: float = 0.5
) -> dict:
    """PCKh@threshold in percent: {"per_joint": {name: value or None}, "mean": value}.

    ``predicted`` and ``truth`` are (N, 16, 2) positions in one frame, ``visible`` (N, 16)
    booleans, ``head`` (N,) head sizes in that frame. A joint never visible has no value.
    """
    distance = torch.linalg.vector_norm(predicted - truth, dim=-1) / head[:, None]
    correct = (distance <= threshold) & visible
    counts, hits = visible.sum(0), correct.sum(0)
    per_joint = {
        name: (100.0 * int(h) / int(c) if c else None) for name, h, c in zip(JOINTS, hits, counts, strict=True)
    }
    kept = [j for j in range(len(JOINTS)) if j not in LEFT_OUT_OF_MEAN]
    total = int(counts[kept].sum())
    return {"per_joint": per_joint, "mean": 100.0 * int(hits[kept].sum()) / total if total else float("nan")}


def decode(heatmaps: torch.Tensor) -> torch.Tensor:
    """(N, J, H, W) heat-maps -> (N, J, 2) positions (x, y) in heat-map pixels: the peak,
    moved a quarter pixel towards its larger neighbour in each direction (Newell et al.)."""
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, j, -1).argmax(-1)
    y, x = (flat // w), (flat % w)
    maps = heatmaps.reshape(n * j, h, w)
    rows, xs, ys = torch.arange(n * j), x.reshape(-1), y.reshape(-1)

    def at(dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        return maps[rows, (ys + dy).clamp(0, h - 1), (xs + dx).clamp(0, w - 1)]

    zero = torch.zeros_like(xs)
    inside_x, inside_y = (xs > 0) & (xs < w - 1), (ys > 0) & (ys < h - 1)
    shift_x = torch.where(inside_x, torch.sign(at(zero, zero + 1) - at(zero, zero - 1)), 0.0) * 0.25
    shift_y = torch.where(inside_y, torch.sign(at(zero + 1, zero) - at(zero - 1, zero)), 0.0) * 0.25
    return torch.stack([xs.float() + shift_x, ys.float() + shift_y], dim=-1).reshape(n, j, 2)

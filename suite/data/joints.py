"""MPII's sixteen joints, and how a pose batch's targets are packed in one tensor.

(N, 17, 3): rows 0-15 are the joints as (x, y, visible) in input pixels; row 16 holds the
head size, and whether the image may be flipped (a photograph may; a stick figure, whose
sides differ by colour, may not). So pose data lives in the same (inputs, targets) splits
as classification data. The head size is HEAD_BOX_FACTOR times the diagonal of the
annotated head box, as MPII's evaluation code has it.
"""

from __future__ import annotations

import torch

JOINTS = (
    "r_ankle",
    "r_knee",
    "r_hip",
    "l_hip",
    "l_knee",
    "l_ankle",
    "pelvis",
    "thorax",
    "upper_neck",
    "head_top",
    "r_wrist",
    "r_elbow",
    "r_shoulder",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
)
HEAD_BOX_FACTOR = 0.6


def pack(
    joints: torch.Tensor, visible: torch.Tensor, head: torch.Tensor, flippable: torch.Tensor | bool = True
) -> torch.Tensor:
    """(N, 16, 2), (N, 16), (N,) and ``flippable`` (one flag, or (N,)) -> (N, 17, 3)."""
    rows = torch.cat([joints, visible[..., None].to(joints.dtype)], dim=-1)
    extra = torch.zeros(len(joints), 1, 3, dtype=joints.dtype, device=joints.device)
    extra[:, 0, 0] = head
    extra[:, 0, 1] = torch.as_tensor(flippable, dtype=joints.dtype)
    return torch.cat([rows, extra], dim=1)


def unpack(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 17, 3) -> joints (N, 16, 2), visible (N, 16) bool, head sizes (N,)."""
    return target[:, :-1, :2], target[:, :-1, 2] > 0.5, target[:, -1, 0]

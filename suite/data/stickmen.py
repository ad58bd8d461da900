"""Synthetic pose data: articulated stick figures with MPII's 16 joints, clutter and
occluders, so pose estimation runs end to end on a CPU in seconds. It is not MPII.

Each figure is a random pose (limb angles within human-like ranges), rotated, scaled and
placed in the image. Limbs are drawn as thick segments, the figure's right side in one
colour, its left in another and the trunk and head in a third, so left and right can be
told apart (as shading and context tell them apart in photographs). Random segments in
the same colours clutter the background; a random rectangle may occlude part of the
figure, and every joint it covers is marked invisible, as MPII marks occluded joints.
The head box is the square around the head segment, so PCKh's head size has its MPII
meaning.
"""

from __future__ import annotations

import numpy as np

from suite.data.joints import JOINTS

J = {name: i for i, name in enumerate(JOINTS)}
LIMBS = [
    ("r_ankle", "r_knee"),
    ("r_knee", "r_hip"),
    ("r_hip", "pelvis"),
    ("l_hip", "pelvis"),
    ("l_hip", "l_knee"),
    ("l_knee", "l_ankle"),
    ("pelvis", "thorax"),
    ("thorax", "upper_neck"),
    ("upper_neck", "head_top"),
    ("r_wrist", "r_elbow"),
    ("r_elbow", "r_shoulder"),
    ("r_shoulder", "thorax"),
    ("l_shoulder", "thorax"),
    ("l_shoulder", "l_elbow"),
    ("l_elbow", "l_wrist"),
]
# Mirror pairs: a horizontal flip swaps each joint with its partner.
FLIP_PAIRS = [("r_ankle", "l_ankle"), ("r_knee", "l_knee"), ("r_hip", "l_hip")]
FLIP_PAIRS += [("r_wrist", "l_wrist"), ("r_elbow", "l_elbow"), ("r_shoulder", "l_shoulder")]
COLOURS = {"r": (1.0, 0.2, 0.2), "l": (0.2, 1.0, 0.2), "trunk": (0.3, 0.3, 1.0)}


def flip_order() -> list[int]:
    """The joint order after a horizontal flip."""
    order = list(range(len(JOINTS)))
    for a, b in FLIP_PAIRS:
        order[J[a]], order[J[b]] = J[b], J[a]
    return order


def _side(limb: tuple[str, str]) -> str:
    """ "r" or "l" for a limb of one side, "trunk" for the rest (hips and shoulders included)."""
    for side in ("r", "l"):
        if all(name.startswith(f"{side}_") for name in limb):
            return side
    return "trunk"


def _pose(rng: np.random.Generator) -> np.ndarray:
    """One figure's 16 joints in body units, pelvis at the origin, y pointing down."""
    p = np.zeros((len(JOINTS), 2))
    up = np.array([0.0, -1.0])

    def at(origin: np.ndarray, angle: float, length: float) -> np.ndarray:
        # angle 0 points down (towards the feet); positive turns towards the figure's left.
        return origin + length * np.array([np.sin(angle), np.cos(angle)])

    p[J["thorax"]] = up * 1.0
    p[J["upper_neck"]] = p[J["thorax"]] + up * 0.25
    p[J["head_top"]] = p[J["upper_neck"]] + up * 0.35
    for side, sign in (("r", -1.0), ("l", 1.0)):
        p[J[f"{side}_hip"]] = np.array([sign * 0.2, 0.0])
        p[J[f"{side}_shoulder"]] = p[J["thorax"]] + np.array([sign * 0.3, 0.05])
        knee = at(p[J[f"{side}_hip"]], sign * rng.uniform(-0.3, 0.8), 0.5)
        p[J[f"{side}_knee"]] = knee
        p[J[f"{side}_ankle"]] = at(knee, sign * rng.uniform(-0.9, 0.3), 0.5)
        elbow = at(p[J[f"{side}_shoulder"]], sign * rng.uniform(-0.3, 2.6), 0.4)
        p[J[f"{side}_elbow"]] = elbow
        p[J[f"{side}_wrist"]] = at(elbow, sign * rng.uniform(-0.5, 2.8), 0.35)
    return p


def _segments(image: np.ndarray, ends: np.ndarray, colours: np.ndarray, width: float) -> None:
    """Draw segments (K, 2, 2) in colours (K, 3) onto image (3, S, S), in place."""
    size = image.shape[-1]
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="xy"), -1).reshape(-1, 2) + 0.5
    for (a, b), colour in zip(ends, colours, strict=True):
        d = b - a
        t = np.clip(((grid - a) @ d) / max(float(d @ d), 1e-9), 0.0, 1.0)
        near = np.linalg.norm(grid - (a + t[:, None] * d), axis=1) <= width
        image[:, near.reshape(size, size)] = np.asarray(colour)[:, None]


def generate(n: int, size: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` images and their annotations: {"images": (n, 3, S, S) float32 in [0, 1],
    "joints": (n, 16, 2) pixel positions (x, y), "visible": (n, 16) bool,
    "head_box": (n, 4) x1, y1, x2, y2}."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.15, size=(n, 3, size, size)).astype(np.float32)
    joints = np.zeros((n, len(JOINTS), 2), dtype=np.float32)
    visible = np.ones((n, len(JOINTS)), dtype=bool)
    head_box = np.zeros((n, 4), dtype=np.float32)
    limb_index = np.array([(J[a], J[b]) for a, b in LIMBS])
    limb_colours = np.array([COLOURS[_side(limb)] for limb in LIMBS])
    palette = np.array(list(COLOURS.values()))
    for i in range(n):
        # Clutter first, so the figure is drawn over it.
        clutter = rng.uniform(0, size, size=(rng.integers(0, 4), 2, 2))
        _segments(images[i], clutter, palette[rng.integers(0, 3, len(clutter))] * 0.7, size / 64)
        body = _pose(rng)
        angle = rng.uniform(-0.5, 0.5)
        rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        scale = size * rng.uniform(0.22, 0.3)
        placed = body @ rotate.T * scale
        lo, hi = placed.min(0), placed.max(0)
        # Anywhere the whole figure fits, with a margin of a few pixels.
        offset = rng.uniform(2 - lo, np.maximum(size - 2 - hi, 2 - lo + 1e-3))
        placed = placed + offset
        joints[i] = placed
        _segments(images[i], placed[limb_index], limb_colours, size / 40)
        head = np.linalg.norm(placed[J["head_top"]] - placed[J["upper_neck"]])
        centre = (placed[J["head_top"]] + placed[J["upper_neck"]]) / 2
        head_box[i] = [*(centre - head / 2), *(centre + head / 2)]
        if rng.random() < 0.5:  # an occluder over part of the figure
            corner = placed[rng.integers(0, len(JOINTS))] - rng.uniform(0, size / 8, 2)
            extent = rng.uniform(size / 8, size / 4, 2)
            x0, y0 = np.clip(corner, 0, size).astype(int)
            x1, y1 = np.clip(corner + extent, 0, size).astype(int)
            images[i, :, y0:y1, x0:x1] = rng.uniform(0.0, 0.5, size=(3, 1, 1))
            covered = (placed[:, 0] >= x0) & (placed[:, 0] < x1) & (placed[:, 1] >= y0) & (placed[:, 1] < y1)
            visible[i] = ~covered
    return {"images": images, "joints": joints, "visible": visible, "head_box": head_box}

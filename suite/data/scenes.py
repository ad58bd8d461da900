"""Generated indoor scenes with exact depth and surface normals: a stand-in for S3DIS in
tests and CPU runs (it is not S3DIS).

Each scene is a box-shaped room (floor, ceiling, three walls) with one to three boxes on
the floor, seen by a pinhole camera at the origin turned by a random yaw and pitch.
Every pixel's ray is intersected with the planes and boxes analytically, so depth (the
hit's z in the camera frame, as 2D-3D-S stores it) and the normal (the surface's, in the
camera frame, facing the camera) are exact. Surfaces are textured (a 3-D checker of
their own colour and frequency) and shaded by a random light, and part of the targets is
marked missing (a rectangle without depth or normals, as scans have holes).
"""

from __future__ import annotations

import numpy as np

FOCAL = 1.0  # focal length in image widths: a 53 degree field of view


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    turn = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    tilt = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return turn @ tilt


def _planes(rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """The room: (unit normal facing inwards, offset) with normal . p = offset."""
    floor, ceiling = rng.uniform(1.2, 1.6), rng.uniform(1.0, 1.6)
    left, right, back = rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0), rng.uniform(4.0, 8.0)
    return [
        (np.array([0.0, 1.0, 0.0]), -floor),
        (np.array([0.0, -1.0, 0.0]), -ceiling),
        (np.array([1.0, 0.0, 0.0]), -left),
        (np.array([-1.0, 0.0, 0.0]), -right),
        (np.array([0.0, 0.0, -1.0]), -back),
    ]


def _boxes(rng: np.random.Generator, floor: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Axis-aligned boxes standing on the floor, in front of the camera: (low, high) corners."""
    out = []
    for _ in range(rng.integers(1, 4)):
        size = rng.uniform([0.4, 0.3, 0.4], [1.2, 1.2, 1.2])
        low = np.array([rng.uniform(-1.5, 1.5) - size[0] / 2, -floor, rng.uniform(2.0, 4.5)])
        out.append((low, low + size))
    return out


def _hit_planes(rays: np.ndarray, planes: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest plane along every ray: distance, normal and the plane's index."""
    t = np.full(len(rays), np.inf)
    normal = np.zeros((len(rays), 3))
    surface = np.zeros(len(rays), dtype=int)
    for i, (n, offset) in enumerate(planes):
        along = rays @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            ti = np.where(along < -1e-9, offset / along, np.inf)
        closer = (ti > 0) & (ti < t)
        t[closer], normal[closer], surface[closer] = ti[closer], n, i
    return t, normal, surface


def _hit_box(rays: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slab test from the origin: entry distance (inf on a miss) and the entry face's normal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = low / rays, high / rays
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    near = np.where(np.isnan(near), -np.inf, near)
    far = np.where(np.isnan(far), np.inf, far)
    entry, exit_ = near.max(1), far.min(1)
    t = np.where((entry <= exit_) & (entry > 0), entry, np.inf)
    axis = near.argmax(1)
    normal = np.zeros_like(rays)
    normal[np.arange(len(rays)), axis] = -np.sign(rays[np.arange(len(rays)), axis])
    return t, normal


def render(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: image (3, size, size) in [0, 1], depth (size, size) in metres (0 where
    missing) and normals (3, size, size) in the camera frame (x right, y up, z forward;
    zero where missing)."""
    centres = (np.arange(size) + 0.5) / size - 0.5
    u, v = np.meshgrid(centres, centres)
    camera_rays = np.stack([u / FOCAL, -v / FOCAL, np.ones_like(u)], -1).reshape(-1, 3)
    turn = _rotation(rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.2))
    rays = camera_rays @ turn.T  # in the world frame; depth is t (camera z is 1 per unit t)

    planes = _planes(rng)
    t, normal, surface = _hit_planes(rays, planes)
    for i, (low, high) in enumerate(_boxes(rng, -planes[0][1])):
        tb, nb = _hit_box(rays, low, high)
        closer = tb < t
        t[closer], normal[closer], surface[closer] = tb[closer], nb[closer], len(planes) + i

    points = rays * t[:, None]
    colours = rng.uniform(0.15, 0.95, (len(planes) + 3, 3))
    frequency = rng.uniform(1.5, 5.0, len(planes) + 3)
    checker = np.sign(np.prod(np.sin(points * frequency[surface, None] * np.pi), 1))
    light = rng.normal(size=3)
    light /= np.linalg.norm(light)
    shade = 0.45 + 0.55 * np.abs(normal @ light)
    image = colours[surface] * (0.75 + 0.25 * checker)[:, None] * shade[:, None]
    image = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)

    camera_normals = normal @ turn  # world to camera: the rotation's transpose
    depth = t.reshape(size, size)
    normals = camera_normals.T.reshape(3, size, size)
    if rng.random() < 0.5:  # a hole in the scan: no depth, no normals
        h, w = rng.integers(size // 8, size // 3, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        depth[y : y + h, x : x + w] = 0
        normals[:, y : y + h, x : x + w] = 0
    return image.T.reshape(3, size, size), depth, normals


def generate(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` scenes: images (n, 3, size, size), depth (n, size, size), normals (n, 3, size, size)."""
    rng = np.random.default_rng(seed)
    scenes = [render(size, rng) for _ in range(n)]
    images, depth, normals = (
        np.ascontiguousarray(np.stack(parts), dtype=np.float32) for parts in zip(*scenes, strict=True)
    )
    return {"images": images, "depth": depth, "normals": normals}

"""Stanford 2D-3D-Semantics (S3DIS's images; Armeni et al. 2017): RGB, depth and surface
normals of its perspective frames, read from --data-root in the release's layout and
streamed from disk.

    <data-root>/s3dis/area_<k>/data/rgb/<frame>_domain_rgb.png
    <data-root>/s3dis/area_<k>/data/depth/<frame>_domain_depth.png
    <data-root>/s3dis/area_<k>/data/normal/<frame>_domain_normals.png

for k in 1, 2, 3, 4, 5a, 5b, 6; ``<frame>`` is camera_<id>_<room>_frame_<n>.
(``<data-root>`` may also be that ``s3dis`` folder itself.) Depth is 16-bit in units of
1/512 m, 65535 where missing; normals are 8-bit, [0, 255] for [-1, 1], grey where
missing. Both are used as the release stores them (no flips: no assumption about the
normals' frame is needed). Frames are resized to 256 x 256: RGB bilinearly, depth and
normals by nearest neighbour, so no invalid value is blended into a valid one.

Splits: the common fold 1, test = area 5 (5a and 5b). Val (model selection) is whole
rooms of the training areas, drawn by a fixed seed until it has 2,000 frames.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from suite.data import root as data
from suite.data.stream import Stream, default_workers
from suite.errors import UsageError

SIZE = 256
AREAS = ("area_1", "area_2", "area_3", "area_4", "area_5a", "area_5b", "area_6")
TEST_AREAS = ("area_5a", "area_5b")
VAL_FRAMES = 2000
SPLIT_SEED = 0
# The release's frames per area (fold 1: test is area 5); val is carved from training.
FRAMES = {
    "area_1": 10327,
    "area_2": 15714,
    "area_3": 3704,
    "area_4": 13268,
    "area_5a": 6261,
    "area_5b": 11332,
    "area_6": 9890,
}
SPLIT_SIZES = {
    "train": sum(v for k, v in FRAMES.items() if k not in TEST_AREAS) - VAL_FRAMES,
    "val": VAL_FRAMES,
    "test": FRAMES["area_5a"] + FRAMES["area_5b"],
}
DEPTH_UNIT = 1 / 512  # metres per step of the 16-bit depth
DEPTH_MISSING = 65535
LAYOUT = (
    "<data-root>/s3dis/area_<k>/data/{rgb,depth,normal}/<frame>_domain_{rgb,depth,normals}.png "
    "(Stanford 2D-3D-Semantics, areas 1-6 with 5a and 5b)"
)


def locate(data_root: str | None) -> Path:
    if data_root is None:
        raise UsageError(f"s3dis needs --data-root: {LAYOUT}")
    root = Path(data_root)
    for folder in (root / "s3dis", root):
        if any((folder / area / "data" / "rgb").is_dir() for area in AREAS):
            return folder
    raise UsageError(f"no S3DIS under {data.where(root)}: expected {data.placed(LAYOUT, root)}")


def frames(folder: Path) -> dict[str, list[str]]:
    """Every area's frames with all three images, sorted: area -> frame names."""
    out = {}
    for area in AREAS:
        data = folder / area / "data"
        names = sorted(p.name.removesuffix("_domain_rgb.png") for p in (data / "rgb").glob("*_domain_rgb.png"))
        complete = [
            n
            for n in names
            if (data / "depth" / f"{n}_domain_depth.png").exists()
            and (data / "normal" / f"{n}_domain_normals.png").exists()
        ]
        if complete:
            out[area] = complete
    return out


def room(frame: str) -> str:
    """camera_<id>_<room>_frame_<n> -> <room> (office_6, conferenceRoom_1, ...)."""
    return frame.split("_frame_")[0].split("_", 2)[2]


def carve(found: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    """(area, frame) per split: test is area 5; val, whole training rooms by a fixed seed."""
    test = [(a, f) for a in TEST_AREAS for f in found.get(a, [])]
    training = [(a, f) for a in found if a not in TEST_AREAS for f in found[a]]
    if not test or not training:
        raise UsageError(f"S3DIS needs area 5 (test) and another area (training): found {sorted(found)}")
    per_room = Counter((a, room(f)) for a, f in training)
    rooms = sorted(per_room)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(rooms))
    held, count = set(), 0
    for i in order:
        if count >= min(VAL_FRAMES, len(training) // 10 or 1):
            break
        held.add(rooms[i])
        count += per_room[rooms[i]]
    val = [(a, f) for a, f in training if (a, room(f)) in held]
    train = [(a, f) for a, f in training if (a, room(f)) not in held]
    return {"train": train, "val": val, "test": test}


def _nearest(array: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W, ...) array's first two axes to (size, size)."""
    h, w = array.shape[:2]
    rows = ((np.arange(size) + 0.5) * h / size).astype(int)
    cols = ((np.arange(size) + 0.5) * w / size).astype(int)
    return array[rows][:, cols]


def decode(rgb: Image.Image, depth: np.ndarray, normals: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's three images as (image (3, size, size) in [-0.5, 0.5], packed target
    (4, size, size): depth in metres, 0 where missing; normal, the zero vector where missing)."""
    image = np.asarray(rgb.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255 - 0.5
    depth = _nearest(depth, size).astype(np.float32)
    metres = np.where(depth == DEPTH_MISSING, 0, depth * DEPTH_UNIT).astype(np.float32)
    normal = _nearest(normals[..., :3], size).astype(np.float32) / 255 * 2 - 1
    normal[np.linalg.norm(normal, axis=-1) < 0.5] = 0  # grey: missing
    target = np.concatenate([metres[None], normal.transpose(2, 0, 1)])
    return torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(target)


class Frames(Dataset):
    def __init__(self, folder: Path, items: list[tuple[str, str]], size: int = SIZE) -> None:
        self.folder, self.items, self.size = folder, items, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        area, frame = self.items[i]
        data = self.folder / area / "data"
        with Image.open(data / "rgb" / f"{frame}_domain_rgb.png") as rgb:
            depth = np.asarray(Image.open(data / "depth" / f"{frame}_domain_depth.png"))
            normals = np.asarray(Image.open(data / "normal" / f"{frame}_domain_normals.png"))
            return decode(rgb, depth, normals, self.size)


def splits(folder: Path, device: torch.device, workers: int | None = None, size: int = SIZE):
    """The train, val and test streams of S3DIS under ``folder``, as Splits."""
    from suite.data.splits import Splits

    workers = default_workers() if workers is None else workers
    carved = carve(frames(folder))
    streams = {
        # Two-dimensional targets: subsets are not stratified.
        name: Stream(Frames(folder, items, size), np.empty((len(items), 0)), workers)
        for name, items in carved.items()
    }
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        for area, frame in carved[name]:
            h.update(f"{name}:{area}:{frame}\n".encode())
    source = f"Stanford 2D-3D-S from {folder} (fold 1: test is area 5; {len(carved['test'])} frames)"
    return Splits({}, h.hexdigest()[:16], source, streams=streams, device=device)


def write_generated(folder: Path, per_area: int = 4, size: int = 48, seed: int = 0) -> Path:
    """Generated scenes (suite.data.scenes) in the release's layout and encodings, in areas
    1, 2 and 5a, two rooms each. For tests; it is not S3DIS."""
    from suite.data import scenes

    areas = ("area_1", "area_2", "area_5a")
    data = scenes.generate(per_area * len(areas), size, seed)
    for k, area in enumerate(areas):
        for kind in ("rgb", "depth", "normal"):
            (folder / area / "data" / kind).mkdir(parents=True, exist_ok=True)
        for j in range(per_area):
            i = k * per_area + j
            frame = f"camera_{i:032x}_office_{j % 2 + 1}_frame_{j}"
            data_dir = folder / area / "data"
            rgb = (data["images"][i].transpose(1, 2, 0) * 255).round().astype(np.uint8)
            Image.fromarray(rgb).save(data_dir / "rgb" / f"{frame}_domain_rgb.png")
            depth = np.where(data["depth"][i] > 0, np.round(data["depth"][i] / DEPTH_UNIT), DEPTH_MISSING)
            Image.fromarray(depth.astype(np.uint16)).save(data_dir / "depth" / f"{frame}_domain_depth.png")
            normal = np.round((data["normals"][i].transpose(1, 2, 0) + 1) / 2 * 255).astype(np.uint8)
            normal[np.all(data["normals"][i] == 0, axis=0)] = 128
            Image.fromarray(normal).save(data_dir / "normal" / f"{frame}_domain_normals.png")
    return folder

"""MPII Human Pose (Andriluka et al. 2014): the release's annotations and images, read
from --data-root, one example per annotated person, streamed from disk.

    <data-root>/mpii/mpii_human_pose_v1_u12_1.mat   the release's annotations
    <data-root>/mpii/images/*.jpg                   its 24,987 images

(``<data-root>`` may also be that ``mpii`` folder itself.) A person's crop is Newell et
al.'s: centred on the annotated ``objpos`` (moved down by 15 x scale pixels), 200 x 1.25
x ``scale`` pixels wide, resized to 256 x 256. Training crops are jittered as theirs are:
scale ±25%, rotation ±30° (60% of crops), horizontal flips with left and right swapped.

Splits. The test set's annotations are withheld, so every example comes from the
release's training images (``img_train``): about 3,000 persons are held out as test (the
paper's "validation"), 1,000 more as val for model selection, whole images at a time, by
a fixed seed. This is not Tompson et al.'s validation list, which the release does not
carry, so measured PCKh is close to, not the same as, the paper's protocol.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from suite.data import joints as heatmaps
from suite.data import root as data
from suite.data.joints import HEAD_BOX_FACTOR, JOINTS
from suite.data.stream import Stream, default_workers
from suite.errors import UsageError

CROP = 256
ANNOTATIONS = "mpii_human_pose_v1_u12_1.mat"
LAYOUT = f"<data-root>/mpii/{ANNOTATIONS} and <data-root>/mpii/images/*.jpg (the MPII Human Pose release)"
HELD_OUT = {"test": 2958, "val": 1000}  # persons, whole images at a time
SPLIT_SIZES = {"train": 24_000, "val": 1000, "test": 2958}  # about: the carving goes by image
SPLIT_SEED = 0
MEAN = (0.485, 0.456, 0.406)
# Flip partners in MPII's joint order (suite.data.joints.JOINTS).
FLIP_ORDER = [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]


@dataclass(frozen=True)
class Person:
    image: str
    centre: tuple[float, float]
    scale: float
    joints: np.ndarray  # (16, 2) original pixels
    visible: np.ndarray  # (16,) bool
    head: float  # head size in original pixels (0.6 x the head box's diagonal)


def locate(data_root: str | None) -> Path:
    if data_root is None:
        raise UsageError(f"mpii needs --data-root: {LAYOUT}")
    root = Path(data_root)
    for folder in (root / "mpii", root):
        if (folder / ANNOTATIONS).is_file() and (folder / "images").is_dir():
            return folder
    raise UsageError(f"mpii not found under {data.where(root)}: expected {data.placed(LAYOUT, root)}")


def _items(value) -> list:
    """A MATLAB struct array, cell array or single struct as a list (loadmat squeezes)."""
    if value is None or (isinstance(value, np.ndarray) and value.size == 0):
        return []
    return list(np.atleast_1d(value).ravel())


def _number(value) -> float | None:
    try:
        return float(np.asarray(value, dtype=float).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None


def read(folder: Path) -> list[list[Person]]:
    """The annotated persons of every training image, grouped by image."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        release = loadmat(folder / ANNOTATIONS, struct_as_record=False, squeeze_me=True)["RELEASE"]
        annolist, train = _items(release.annolist), _items(release.img_train)
    except (OSError, ValueError, KeyError, AttributeError, NotImplementedError, MatReadError) as e:
        raise UsageError(f"mpii annotations {folder / ANNOTATIONS} cannot be read ({e}): expected {LAYOUT}") from None
    if len(annolist) != len(train):
        raise UsageError(f"mpii annotations {folder / ANNOTATIONS}: annolist and img_train differ in length")
    images = []
    for entry, is_train in zip(annolist, train, strict=True):
        if not int(is_train):
            continue
        name = str(entry.image.name)
        persons = [p for rect in _items(getattr(entry, "annorect", None)) if (p := _person(name, rect))]
        if persons:
            images.append(persons)
    if not images:
        raise UsageError(f"mpii annotations {folder / ANNOTATIONS} hold no annotated training person")
    return images


def _person(image: str, rect) -> Person | None:
    """One annotated person, or None where the release has no joints or no position for it."""
    fields = set(getattr(rect, "_fieldnames", []))
    if not {"annopoints", "objpos", "scale", "x1", "y1", "x2", "y2"} <= fields:
        return None
    points = _items(getattr(rect.annopoints, "point", None)) if hasattr(rect.annopoints, "point") else []
    # The release leaves objpos an empty array for some persons: no position, no crop.
    objpos = rect.objpos
    scale, x, y = _number(rect.scale), _number(getattr(objpos, "x", None)), _number(getattr(objpos, "y", None))
    if not points or scale is None or x is None or y is None:
        return None
    joints, visible = np.zeros((len(JOINTS), 2), np.float32), np.zeros(len(JOINTS), bool)
    for point in points:
        j = int(_number(point.id))
        joints[j] = (_number(point.x), _number(point.y))
        # Missing or empty is_visible (a few heads) counts as visible, as MPII's evaluation does.
        flag = _number(getattr(point, "is_visible", 1))
        visible[j] = flag is None or flag > 0
    box = np.array([_number(rect.x1), _number(rect.y1), _number(rect.x2), _number(rect.y2)], dtype=float)
    head = HEAD_BOX_FACTOR * float(np.linalg.norm(box[2:] - box[:2]))
    return Person(image, (x, y), scale, joints, visible, head)


def carve(images: list[list[Person]]) -> dict[str, list[Person]]:
    """test and val held out whole images at a time (seed 0), the rest train."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    out: dict[str, list[Person]] = {"test": [], "val": [], "train": []}
    total = sum(map(len, images))
    held = {k: min(n, total // 5) for k, n in HELD_OUT.items()}  # a small data set keeps most for training
    for i in order:
        split = next((k for k in ("test", "val") if len(out[k]) < held[k]), "train")
        out[split] += images[i]
    return out


class Persons(Dataset):
    """Person crops and their packed targets; training crops jittered per example (drawn
    from torch's generator, which suite.data.stream.Seeded seeds per example)."""

    def __init__(self, folder: Path, persons: list[Person], jitter: bool) -> None:
        self.folder, self.persons, self.jitter = folder, persons, jitter

    def __len__(self) -> int:
        return len(self.persons)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.persons[i]
        scale, angle, flip = 1.25 * p.scale, 0.0, False
        if self.jitter:
            u = torch.rand(4)
            scale *= 1 + 0.25 * (2 * float(u[0]) - 1)
            angle = 30.0 * (2 * float(u[1]) - 1) if u[2] < 0.6 else 0.0
            flip = bool(u[3] < 0.5)
        forward = crop_transform(p.centre, p.scale, scale, angle, flip)
        crop = warp(Image.open(self.folder / "images" / p.image).convert("RGB"), forward)
        x = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255.0).permute(2, 0, 1)
        x = (x - torch.tensor(MEAN)[:, None, None]).contiguous()
        joints = np.c_[p.joints, np.ones(len(p.joints))] @ forward[:2].T
        visible = p.visible.copy()
        if flip:
            joints, visible = joints[FLIP_ORDER], visible[FLIP_ORDER]
        visible &= ((joints >= 0) & (joints <= CROP - 1)).all(1)
        head = p.head * CROP / (200 * scale)
        target = heatmaps.pack(
            torch.from_numpy(joints).float()[None], torch.from_numpy(visible)[None], torch.tensor([head]), False
        )
        return x, target[0]


def crop_transform(
    centre: tuple[float, float], person_scale: float, scale: float, angle: float, flip: bool
) -> np.ndarray:
    """The 3x3 map from original pixels to crop pixels: Newell et al.'s centre (15 x scale
    pixels below objpos), a crop 200 x ``scale`` pixels wide, rotated by ``angle`` degrees
    about its centre, mirrored when ``flip``."""
    cx, cy = centre[0], centre[1] + 15 * person_scale
    k = CROP / (200 * scale)
    a = math.radians(angle)
    rotate = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    zoom = np.diag([k, k, 1.0])
    to_crop = np.array([[1, 0, CROP / 2], [0, 1, CROP / 2], [0, 0, 1]])
    m = to_crop @ zoom @ rotate @ to_origin
    if flip:
        m = np.array([[-1, 0, CROP - 1], [0, 1, 0], [0, 0, 1]]) @ m
    return m


def warp(image: Image.Image, forward: np.ndarray) -> Image.Image:
    """The CROP x CROP crop that ``forward`` (original pixels to crop pixels) makes of
    ``image``. Joints and ``crop_transform`` put pixel i's centre at i, PIL at i + 0.5: the
    map PIL is given is conjugated by that half-pixel shift, or the crop would sit up to a
    pixel (at 4x zoom, 1.5) away from the joints mapped onto it."""
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    inverse = half @ np.linalg.inv(forward) @ np.linalg.inv(half)  # crop pixels to original, in PIL's frame
    return image.transform((CROP, CROP), Image.AFFINE, inverse[:2].ravel().tolist(), Image.BILINEAR)


def splits(folder: Path, device: torch.device, workers: int | None = None):
    """The train, val and test streams of MPII under ``folder``, as Splits."""
    from suite.data.splits import Splits

    workers = default_workers() if workers is None else workers
    carved = carve(read(folder))
    streams = {}
    for name, persons in carved.items():
        no_classes = np.empty((len(persons), 0))  # two-dimensional: subsets are not stratified
        streams[name] = Stream(Persons(folder, persons, jitter=name == "train"), no_classes, workers)
    # The training persons as test's are cropped, for Table 8's training metric (no jitter).
    streams["train_eval"] = Stream(Persons(folder, carved["train"], jitter=False), streams["train"].targets, workers)
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        for p in carved[name]:
            h.update(f"{name}:{p.image}:{p.centre}:{p.scale}\n".encode())
    source = f"MPII Human Pose from {folder} (test: {len(carved['test'])} held-out training persons)"
    return Splits({}, h.hexdigest()[:16], source, streams=streams, device=device)


def write_generated(folder: Path, images: int = 8, size: int = 160, seed: int = 0) -> Path:
    """Generated stand-in data in the release's layout: stick figures (suite.data.stickmen)
    as JPEGs, one person each, and a .mat of their annotations as the release writes them
    (objpos and scale included). For tests; it is not MPII."""
    from scipy.io import savemat

    from suite.data import stickmen

    data = stickmen.generate(images, size, seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    point = [("id", object), ("x", object), ("y", object), ("is_visible", object)]
    rect = [(k, object) for k in ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")]
    annolist = np.empty(images + 1, dtype=[("image", object), ("annorect", object)])
    for i in range(images):
        name = f"{i:09d}.jpg"
        pixels = (np.clip(data["images"][i].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "images" / name, quality=95)
        joints, visible = data["joints"][i], data["visible"][i]
        points = np.empty(len(JOINTS), dtype=point)
        for j in range(len(JOINTS)):
            # The release writes is_visible as a number or as a string, as here for odd joints.
            flag = str(int(visible[j])) if j % 2 else int(visible[j])
            points[j] = (j, float(joints[j, 0]), float(joints[j, 1]), flag)
        lo, hi = joints.min(0), joints.max(0)
        # The release's quirks: an unannotated bystander (empty annopoints, objpos and scale)
        # beside the first person.
        person = np.empty(2 if i == 0 else 1, dtype=rect)
        if i == 0:
            person[1] = (np.empty(0),) * len(rect)
        x1, y1, x2, y2 = (float(v) for v in data["head_box"][i])
        # MPII's scale: the person's height over 200 pixels; objpos: roughly its centre.
        objpos = {"x": float((lo[0] + hi[0]) / 2), "y": float((lo[1] + hi[1]) / 2)}
        person[0] = (x1, y1, x2, y2, {"point": points}, float(hi[1] - lo[1]) / 200, objpos)
        annolist[i] = ({"name": name}, person)
    # A test image: its persons carry a position and a scale, no joints, and are never read.
    hidden = np.empty(1, dtype=[("scale", object), ("objpos", object)])
    hidden[0] = (1.0, {"x": 1.0, "y": 1.0})
    annolist[images] = ({"name": "test.jpg"}, hidden)
    release = {"annolist": annolist, "img_train": np.r_[np.ones(images, dtype=np.uint8), 0]}
    savemat(folder / ANNOTATIONS, {"RELEASE": release})
    return folder

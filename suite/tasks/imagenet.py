"""imagenet: ILSVRC-2012 classification (Table 3's ImageNet rows, Table 7, Appendix A),
streamed from --data-root in ImageFolder layout."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from suite.data import imagenet, objectnet
from suite.data.stream import default_workers
from suite.tasks import recipes
from suite.tasks.base import Splits, Task
from suite.tasks.registry import register


@register
class Imagenet(Task):
    name = "imagenet"
    dataset = "ImageNet"
    description = (
        "ImageNet (ILSVRC-2012): 1.27M train / 10k val (carved, stratified) / 50k test (the official val), "
        "224x224 crops, 1000 classes; streamed from disk"
    )
    arch = "resnet18"
    in_channels = 3
    num_classes = imagenet.CLASSES
    input_size = (3, imagenet.CROP, imagenet.CROP)
    split_sizes = {"train": 1_281_167 - imagenet.VAL_SIZE, "val": imagenet.VAL_SIZE, "test": 50_000}
    profiles = recipes.load("imagenet")
    devices = recipes.devices("imagenet")
    generated_profiles = frozenset({"smoke"})
    # Input crops: the paper's 224 for every profile of the real data, and 64 for the smoke
    # profile's generated images, so that a CPU trains its 14 cells in minutes.
    crops = {"smoke": 64}

    def crop(self, profile: str) -> int:
        return self.crops.get(profile, imagenet.CROP)

    # Table 8(c): where ObjectNet is under the data root, every cell's accuracy on it.
    extra_metrics = ("objectnet_top1",)

    def sizes(self, profile: str) -> dict[str, int]:
        return imagenet.generated_sizes() if profile in self.generated_profiles else self.split_sizes

    def input_shape(self, profile: str) -> tuple[int, ...]:
        return (self.in_channels, self.crop(profile), self.crop(profile))

    def load(self, data_root: str | None, device: torch.device, profile: str) -> Splits:
        if profile in self.generated_profiles:
            # Streamed, so the files must outlive this call: the folder goes with the splits.
            folder = tempfile.TemporaryDirectory(prefix="rpg-bench-imagenet-")
            imagenet.write_generated(Path(folder.name))
            objectnet.write_generated(Path(folder.name))
            streams, digest = imagenet.streams(Path(folder.name) / "imagenet", 0, self.crop(profile))
            streams["objectnet"] = objectnet.stream(Path(folder.name) / objectnet.FOLDER, self.crop(profile), 0)
            for s in streams.values():
                s.owner = folder
            source = "generated stand-in images in ImageNet's and ObjectNet's layouts (not ImageNet, not ObjectNet)"
        else:
            root = imagenet.locate(data_root)
            streams, digest = imagenet.streams(root, default_workers(), self.crop(profile))
            source = f"imagenet from {root} (ImageFolder; fingerprint of the file list)"
            found = objectnet.locate(data_root)
            if found is not None:
                streams["objectnet"] = objectnet.stream(found, self.crop(profile), default_workers())
                source += f"; ObjectNet from {found} ({len(streams['objectnet'])} images of its ImageNet classes)"
            else:
                source += f"; no ObjectNet under the data root (Table 8c not measured: {objectnet.LAYOUT})"
        return Splits({}, digest, source, streams=streams, device=device)

    def metrics(self, model, splits: Splits, split: str, batch_size: int) -> tuple[dict[str, float], None]:
        scores, _ = super().metrics(model, splits, split, batch_size)
        if split == "test" and "objectnet" in splits.streams:
            scores["objectnet_top1"] = objectnet.top1(model, splits.streams["objectnet"], batch_size, splits.device)
        return scores, None

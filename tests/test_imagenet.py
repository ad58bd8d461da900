"""ImageNet read as a stream from its ImageFolder layout: splits, crops, shards, errors."""

import shutil

import pytest
import torch
from torch import nn

from suite.data import imagenet
from suite.data.stream import Seeded
from suite.errors import UsageError
from suite.system import distributed
from suite.tasks import Recipe, Splits, get
from suite.training.train import fit, steps_per_epoch


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return imagenet.write_generated(tmp_path_factory.mktemp("in"), classes=4, train=10, val=3, size=24) / "imagenet"


def test_the_splits_carve_val_from_train_and_test_on_the_official_val(folder):
    streams, digest = imagenet.streams(folder, workers=0)
    assert {k: len(s) for k, s in streams.items()} == {"train": 32, "val": 8, "test": 12, "train_eval": 32}
    assert torch.bincount(torch.from_numpy(streams["val"].targets)).tolist() == [2] * 4  # stratified
    assert imagenet.streams(folder, workers=0)[1] == digest  # the same files, the same fingerprint
    x, y = streams["test"].head(5, torch.device("cpu"))
    assert x.shape == (5, 3, imagenet.CROP, imagenet.CROP) and y.tolist() == [0, 0, 0, 1, 1]
    # Evaluation crops are fixed whatever the seed; training crops follow it.
    val, train = streams["val"].dataset, streams["train"].dataset
    assert torch.equal(Seeded(val, 0)[0][0], Seeded(val, 7)[0][0])
    assert torch.equal(Seeded(train, 7)[0][0], Seeded(train, 7)[0][0])
    assert not torch.equal(Seeded(train, 0)[0][0], Seeded(train, 7)[0][0])
    # Table 8's training accuracy reads the training images cropped as test's: no augmentation.
    unaugmented = streams["train_eval"]
    assert unaugmented.targets.tolist() == streams["train"].targets.tolist()
    assert torch.equal(Seeded(unaugmented.dataset, 0)[0][0], Seeded(unaugmented.dataset, 7)[0][0])


def test_the_fingerprint_follows_the_file_list(folder, tmp_path):
    copy = tmp_path / "imagenet"
    shutil.copytree(folder, copy)
    _, before = imagenet.streams(copy, workers=0)
    extra = next((copy / "val" / "n00000001").iterdir())
    shutil.copy(extra, extra.with_name("extra.JPEG"))
    assert imagenet.streams(copy, workers=0)[1] != before


def test_shuffled_crops_depend_on_the_seed_only_not_on_loader_workers(folder):
    streams, _ = imagenet.streams(folder, workers=0)

    def epoch(workers, seed):
        streams["train"].workers = workers
        return list(streams["train"].batches(8, torch.device("cpu"), torch.Generator().manual_seed(seed)))

    inline, pooled, other = epoch(0, 1), epoch(2, 1), epoch(0, 2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(inline, pooled, strict=True))
    assert not torch.equal(inline[0][0], other[0][0])


@pytest.mark.parametrize("batch", [12, 15])
def test_ranks_decode_their_own_shares_of_the_global_batch(folder, monkeypatch, batch):
    """Under torchrun each rank loads its slice only; the slices are the single-process
    batch, and a last batch smaller than the world (32 = 15 + 15 + 2 on 3 ranks) is skipped,
    as the schedule counts."""
    streams, _ = imagenet.streams(folder, workers=0)
    train = streams["train"]  # 32 examples
    whole = list(train.batches(batch, torch.device("cpu"), torch.Generator().manual_seed(0)))
    monkeypatch.setattr(distributed, "world", lambda: 3)
    shares = []
    for r in range(3):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shares.append(list(train.shares(batch, torch.device("cpu"), torch.Generator().manual_seed(0))))
    assert [len(s) for s in shares] == [steps_per_epoch(32, batch)] * 3 == [3 if batch == 12 else 2] * 3
    for i, (x, y) in enumerate(whole[: len(shares[0])]):
        parts = [s[i] for s in shares]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
        assert sum(p[2] for p in parts) == pytest.approx(3) and {p[3] for p in parts} == {len(y)}


def test_the_task_streams_generated_images_and_subsets_them():
    task = get("imagenet")
    splits = task.load(None, torch.device("cpu"), "smoke")
    assert isinstance(splits, Splits) and not splits.tensors and "not ImageNet" in splits.source
    cut = splits.subset({"train": 100})
    assert cut.sizes["train"] == 100 and cut.fingerprint != splits.fingerprint
    batches = list(task.batches(cut, "train", 64))
    assert [len(y) for _, y in batches] == [64, 36] and batches[0][0].shape[1:] == (3, 64, 64)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "imagenet not found under"),
        (lambda root: (root / "imagenet" / "train").mkdir(parents=True), "imagenet not found under"),
        (lambda root: [(root / "imagenet" / s).mkdir(parents=True) for s in ("train", "val")], "cannot be read"),
    ],
)
def test_a_missing_or_empty_layout_is_named(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(UsageError, match=message) as e:
        imagenet.streams(imagenet.locate(str(tmp_path)), workers=0)
    assert "ImageFolder" in str(e.value)


def test_train_and_val_must_hold_the_same_classes(folder, tmp_path):
    copy = tmp_path / "imagenet"
    shutil.copytree(folder, copy)
    shutil.rmtree(copy / "val" / "n00000003")
    with pytest.raises(UsageError, match="different class folders"):
        imagenet.streams(copy, workers=0)


def test_imagenet_without_a_data_root_names_the_layout():
    with pytest.raises(UsageError, match="imagenet needs --data-root"):
        get("imagenet").load(None, torch.device("cpu"), "full")


def test_a_resumed_run_draws_the_crops_of_an_uninterrupted_one(tmp_path):
    task = get("imagenet")
    splits = task.load(None, torch.device("cpu"), "smoke").subset({"train": 64})
    recipe = Recipe(epochs=2, batch_size=16, lr=0.05)

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.AvgPool2d(8), nn.Flatten(), nn.Linear(3 * 8 * 8, 10))

    whole = model()
    fit(whole, task, splits, recipe, seed=3, progress=False)

    def stop(step, _):
        if step == 6:  # in the second epoch, after the first epoch's checkpoint
            raise KeyboardInterrupt

    cut, path = model(), tmp_path / "cell.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(cut, task, splits, recipe, seed=3, progress=False, checkpoint=path, on_step=stop)
    resumed = model()
    fit(resumed, task, splits, recipe, seed=3, progress=False, checkpoint=path)
    for name, value in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name


def test_every_profile_has_a_crop_the_real_data_at_the_papers():
    """The nightly profile read the crop of a table that named only full and smoke: a KeyError
    when its data was loaded."""
    task = get("imagenet")
    for profile in task.profiles:
        expected = 64 if profile in task.generated_profiles else 224
        assert task.crop(profile) == expected and task.input_shape(profile) == (3, expected, expected)

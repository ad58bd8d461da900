"""Readers of real data sets: layouts, checksums, splits; and the on-device augmentation."""

import gzip
from pathlib import Path

import pytest
import torch

from suite import cli
from suite.data import cifar, fashion
from suite.errors import UsageError
from suite.tasks.base import Splits, crop_flip


def test_fashion_reads_generated_idx_files_in_torchvision_layout(tmp_path):
    fashion.write_generated(tmp_path, train=600, test=100)
    assert fashion.locate(str(tmp_path)) == tmp_path / fashion.TORCHVISION
    splits = fashion.splits(fashion.read(tmp_path / fashion.TORCHVISION, verify=False))
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 500, "val": 100, "test": 100}
    x, y = splits["train"]
    assert x.shape[1:] == (1, 28, 28) and abs(float(x.mean())) < 1e-4
    assert torch.bincount(splits["val"][1]).tolist() == [10] * 10  # stratified


def test_fashion_refuses_files_that_do_not_match_their_checksums(tmp_path):
    fashion.write_generated(tmp_path)
    with pytest.raises(UsageError, match="does not match its known checksum"):
        fashion.read(tmp_path / fashion.TORCHVISION)


def test_fashion_names_a_truncated_file(tmp_path):
    folder = fashion.write_generated(tmp_path) / fashion.TORCHVISION
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(UsageError, match="truncated"):
        fashion.read(folder, verify=False)


def test_fashion_absent_from_the_default_folder_names_both_layouts(tmp_path, monkeypatch, offline, cache_home):
    """The default folder falls back to Debian's copy, then a download: offline and without
    the package, one line naming both layouts, and the folder the download made is gone."""
    monkeypatch.setattr(fashion, "DEBIAN", tmp_path / "nowhere")
    with pytest.raises(UsageError, match="FashionMNIST/raw.*dataset-fashion-mnist"):
        fashion.locate(str(cache_home))
    assert not cache_home.exists() and not (tmp_path / "cache").exists()


@pytest.fixture
def system_copy(tmp_path, monkeypatch):
    """A complete Fashion-MNIST where Debian puts it, and a download that would succeed:
    what an explicit data root must never be replaced by."""
    from torchvision import datasets

    folder = fashion.write_generated(tmp_path / "system") / fashion.TORCHVISION
    monkeypatch.setattr(fashion, "DEBIAN", folder)
    fetched = []
    monkeypatch.setattr(datasets, "FashionMNIST", lambda root, train, download: fetched.append(root))
    return fetched


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_an_explicit_data_root_without_fashion_mnist_is_refused_not_replaced(how, system_copy, tmp_path, monkeypatch):
    given = tmp_path / "mine"
    given.mkdir()
    if how == "environment":
        monkeypatch.setenv("RPG_BENCH_DATA_ROOT", str(given))
    with pytest.raises(UsageError) as refused:
        fashion.locate(str(given))
    message = str(refused.value)
    assert f"not in the data root {given} " in message and f"{given}/FashionMNIST/raw/" in message
    assert "system" not in message and system_copy == []  # neither the system copy nor a download


def test_an_explicit_data_root_is_read_in_either_layout(system_copy, tmp_path):
    torchvision_layout = fashion.write_generated(tmp_path / "tv")
    assert fashion.locate(str(torchvision_layout)) == torchvision_layout / fashion.TORCHVISION
    debian_layout = tmp_path / "tv" / fashion.TORCHVISION  # the IDX files in the root itself
    assert fashion.locate(str(debian_layout)) == debian_layout
    assert system_copy == []


def test_an_empty_explicit_data_root_exits_2_naming_it_and_a_missing_one_is_not_created(tmp_path, capsys, offline):
    empty, missing = tmp_path / "empty", tmp_path / "missing" / "data"
    empty.mkdir()
    for suite, root in [("fashion", empty), ("fashion", missing), ("cifar", empty), ("cifar", missing)]:
        argv = ["--suite", suite, "--data-root", str(root), "--out", str(tmp_path / "out"), "--no-progress"]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"not in the data root {root} " in err, err
    assert list(empty.iterdir()) == [] and not (tmp_path / "missing").exists() and not (tmp_path / "out").exists()


def test_an_offline_download_into_the_default_folder_leaves_no_folder(offline, cache_home, capsys):
    assert cli.main(["--suite", "cifar", "--out", str(cache_home.parent / "out")]) == 2
    assert "could not be downloaded" in capsys.readouterr().err
    assert not cache_home.exists()


@pytest.mark.skipif(not fashion.DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_real_fashion_mnist_passes_its_checksums():
    arrays = fashion.read(fashion.locate(None))
    assert arrays["train-images-idx3-ubyte"].shape == (60000, 28, 28)
    assert arrays["t10k-labels-idx1-ubyte"].shape == (10000,)


@pytest.mark.parametrize(("name", "classes"), [("cifar10", 10), ("cifar100", 100)])
def test_cifar_reads_generated_pickles_in_torchvision_layout(tmp_path, name, classes):
    cifar.write_generated(tmp_path, name, train=1000, test=200)
    splits = cifar.load(name, str(tmp_path), verify=False)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 800, "val": 200, "test": 200}
    assert splits["train"][0].shape[1:] == (3, 32, 32)
    assert int(splits["train"][1].max()) == classes - 1


def test_cifar_refuses_files_whose_md5_torchvision_does_not_know(tmp_path):
    cifar.write_generated(tmp_path, "cifar10")
    with pytest.raises(UsageError, match="not found or corrupt.*cifar-10-batches-py"):
        cifar.load("cifar10", str(tmp_path))


def test_cifar_without_a_data_root_names_the_layout():
    with pytest.raises(UsageError, match="needs --data-root.*cifar-100-python"):
        cifar.load("cifar100", None)


def test_crop_flip_moves_whole_images_and_repeats_with_the_generator():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    a = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    b = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(a, b) and a.shape == x.shape
    # Channels-last here would reach oneDNN's heap-corrupting weight gradient (crop_flip's note).
    assert a.is_contiguous()
    for i in range(2):
        # Every nonzero output pixel is a pixel of the same image and channel.
        for c in range(3):
            values = a[i, c][a[i, c] != 0]
            assert set(values.tolist()) <= set(x[i, c].flatten().tolist())
    many = crop_flip(x.repeat(50, 1, 1, 1), torch.Generator().manual_seed(1), pad=2)
    assert not all(torch.equal(many[k], many[0]) for k in range(0, 100, 2))


def test_a_subset_is_stratified_repeatable_and_fingerprinted_apart():
    y = torch.arange(1000) % 10
    x = torch.arange(1000, dtype=torch.float32)[:, None]
    whole = Splits.place({"train": (x, y), "val": (x[:200], y[:200]), "test": (x[:300], y[:300])}, "cpu", "t")
    cut = whole.subset({"train": 100, "val": None})
    assert cut.sizes == {"train": 100, "val": 200, "test": 300}
    assert torch.equal(torch.bincount(cut.tensors["train"][1]), torch.full((10,), 10))  # 10 per class
    picked = cut.tensors["train"][0][:, 0].long()
    assert torch.equal(y[picked], cut.tensors["train"][1])  # images keep their labels
    assert torch.equal(whole.subset({"train": 100}).tensors["train"][0], cut.tensors["train"][0])
    assert cut.fingerprint != whole.fingerprint and "subset train=100" in cut.source
    assert cut.fingerprint != whole.subset({"train": 200}).fingerprint
    assert whole.subset({"train": None, "val": 5000}) is whole  # nothing to cut


def test_the_default_data_root_is_the_users_cache_folder(cache_home, monkeypatch, tmp_path):
    from suite.data import root

    assert root.resolve(None) == str(cache_home)
    assert "the default data folder" in root.where(cache_home)
    monkeypatch.setenv("RPG_BENCH_DATA_ROOT", str(tmp_path / "mine"))
    assert root.resolve(None) == str(tmp_path / "mine") and root.where(tmp_path / "mine") == str(tmp_path / "mine")
    assert root.resolve("given") == "given"


def test_a_downloadable_data_set_is_fetched_into_the_default_folder(tmp_path, monkeypatch, cache_home):
    """Fashion-MNIST missing everywhere: torchvision's download fills <default folder>/FashionMNIST/raw
    (stood in for here by writing the files it would), and the files are then read."""
    from torchvision import datasets

    monkeypatch.setattr(fashion, "DEBIAN", tmp_path / "nowhere")
    fetched = []

    def download(self_root, train, download):
        fetched.append(self_root)
        fashion.write_generated(Path(self_root))

    monkeypatch.setattr(datasets, "FashionMNIST", download)
    assert fashion.locate(str(cache_home)) == cache_home / fashion.TORCHVISION
    assert fetched == [str(cache_home)]

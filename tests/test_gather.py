"""The ring's gather on two threads (rpg/gather.py): the same bits as one index_select."""

import os
import threading

import pytest
import torch

import rpg
from baselines.plain import ResNet
from rpg import gather


@pytest.fixture
def two_threads(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(gather, "MIN_ELEMENTS", 1000)  # split even these small gathers
    yield
    torch.set_num_threads(before)


def source_and_index(n: int = 5000, total: int = 12_001):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, generator=gen), torch.randint(n, (total,), generator=gen, dtype=torch.int32)


def test_a_split_gather_is_bit_identical_and_runs_on_the_worker(two_threads):
    source, index = source_and_index()
    out = gather.gather(source, index, torch.empty(index.numel()))
    assert torch.equal(out, torch.index_select(source, 0, index))
    assert any(t.name.startswith("rpg-gather") for t in threading.enumerate())
    with torch.inference_mode():  # the worker writes inference tensors under the caller's mode
        assert torch.equal(gather.gather(source, index, torch.empty(index.numel())), out)


def test_one_torch_thread_gathers_serially(monkeypatch):
    source, index = source_and_index()
    monkeypatch.setattr(gather, "MIN_ELEMENTS", 1000)
    monkeypatch.setattr(gather, "_pool", None)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert torch.equal(gather.gather(source, index, torch.empty(index.numel())), torch.index_select(source, 0, index))
    assert gather._pool is None  # no worker was started


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gathers_with_its_own_worker(two_threads):
    source, index = source_and_index()
    gather.gather(source, index, torch.empty(index.numel()))  # the parent's worker exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's worker thread did not survive the fork
        ok = torch.equal(gather.gather(source, index, torch.empty(index.numel())), torch.index_select(source, 0, index))
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"


def test_training_on_two_threads_gives_the_bits_of_one(monkeypatch):
    def step(threads: int, min_elements: int) -> torch.Tensor:
        monkeypatch.setattr(gather, "MIN_ELEMENTS", min_elements)
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            torch.manual_seed(0)
            model = rpg.convert(ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10), 20_000)
            model(torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))).square().sum().backward()
            return rpg.rings(model)["global"].weight.grad
        finally:
            torch.set_num_threads(before)

    assert torch.equal(step(2, 1000), step(2, 1 << 40))  # split against serial, both on two threads

"""The index and sign maps: the paper's even sampling, its ablations, and their seeds."""

import pytest
import torch

from rpg import maps
from rpg.ring import inverse_table


@pytest.mark.parametrize(("sizes", "n"), [([100, 250, 37], 50), ([4096, 4096], 1000), ([7, 9], 5), ([300], 299)])
def test_even_uses_every_element_floor_or_ceil_times(sizes, n):
    idx = maps.even(sizes, n, maps.generator(3))
    total = sum(sizes)
    counts = torch.bincount(idx, minlength=n)
    assert len(idx) == total
    assert counts.max() - counts.min() <= 1
    assert counts.min() == total // n
    assert counts.sum() == total


@pytest.mark.parametrize(("sizes", "n"), [([10, 20], 30), ([10, 20], 1000)])
def test_even_never_reuses_an_element_when_the_ring_is_large_enough(sizes, n):
    idx = maps.even(sizes, n, maps.generator(0))
    assert len(set(idx.tolist())) == sum(sizes)
    assert int(idx.max()) < n


def test_even_is_shuffled_across_layers():
    idx = maps.even([500, 500], 500, maps.generator(0))
    # Without the global shuffle the first layer would read 0..499 in order.
    assert not torch.equal(idx[:500], torch.arange(500))
    # ...and the second layer is not simply the same elements again.
    assert not torch.equal(idx[:500].sort().values, torch.arange(500))


def test_sequential_wraps_in_ring_order():
    idx = maps.sequential([5, 4], 4, maps.generator(0))
    assert idx.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0]


def test_uniform_draws_within_the_ring_with_repeats():
    idx = maps.uniform([1000], 100, maps.generator(1))
    counts = torch.bincount(idx, minlength=100)
    assert int(idx.max()) < 100
    assert counts.max() - counts.min() > 1  # iid draws are uneven, unlike `even`


def test_signs_are_plus_minus_one_and_balanced():
    s = maps.random_sign([10000], maps.generator(0))
    assert set(s.unique().tolist()) == {-1, 1}
    assert abs(float(s.float().mean())) < 0.05
    assert set(maps.no_sign([10], maps.generator(0)).tolist()) == {1}


def test_maps_are_functions_of_the_seed():
    a = maps.even([1000], 100, maps.generator(7))
    assert torch.equal(a, maps.even([1000], 100, maps.generator(7)))
    assert not torch.equal(a, maps.even([1000], 100, maps.generator(8)))


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="unknown index strategy 'bogus'"):
        maps.check_strategy("bogus", "random")


@pytest.mark.parametrize(("sizes", "n"), [([10, 20], 1000), ([10, 20], 30), ([100, 250, 37], 50), ([7, 9], 5)])
def test_the_inverse_table_lists_each_elements_readers_in_position_order(sizes, n):
    idx = maps.even(sizes, n, maps.generator(5))
    total = sum(sizes)
    table = inverse_table(idx, n)
    assert table.shape == (-(-total // n), n)
    padded = torch.cat([idx, torch.tensor([-1])])
    for element in range(n):
        readers = table[:, element]
        real = readers[readers < total]
        assert real.tolist() == torch.nonzero(idx == element).flatten().tolist()
        assert (readers[len(real) :] == total).all()  # padding: the zero slot, after the readers
        assert (padded[real] == element).all()
    # Every position appears exactly once.
    assert sorted(table[table < total].tolist()) == list(range(total))


def test_the_inverse_table_is_empty_for_unbalanced_maps():
    idx = maps.uniform([1000], 100, maps.generator(1))
    assert inverse_table(idx, 100).shape == (0, 100)
    assert inverse_table(maps.sequential([1000], 300, maps.generator(0)), 300).shape == (4, 300)


def test_hash_is_a_function_of_layer_and_position_spread_over_the_ring():
    sizes, n = [5000, 3000], 97
    idx = maps.hashed(sizes, n, maps.generator(3))
    assert idx.shape == (8000,) and int(idx.min()) >= 0 and int(idx.max()) < n
    assert torch.equal(idx, maps.hashed(sizes, n, maps.generator(3)))
    assert not torch.equal(idx, maps.hashed(sizes, n, maps.generator(4)))
    # A hash, not an enumeration: buckets are filled about evenly, but not exactly evenly.
    counts = torch.bincount(idx, minlength=n).float()
    assert counts.min() > 0 and counts.std() / counts.mean() < 0.3 and counts.std() > 0
    # Layer k's weights depend on (k, position): the same positions in another layer
    # land elsewhere.
    assert (idx[:3000] != idx[5000:]).float().mean() > 0.9


def test_hash_sign_is_plus_minus_one_balanced_and_independent_of_the_index():
    sizes = [20000]
    sign = maps.hash_sign(sizes, maps.generator(0))
    assert set(sign.unique().tolist()) == {-1, 1}
    assert abs(float(sign.float().mean())) < 0.03
    idx = maps.hashed(sizes, 2, maps.generator(1))
    assert abs(float((sign.float() * (idx.float() * 2 - 1)).mean())) < 0.03


def test_hash_handles_millions_of_weights_without_a_python_loop():
    # ResNet-34 generates 21M weights; a per-element loop would take minutes.
    idx = maps.hashed([21_000_000], 1_000_003, maps.generator(0))
    assert idx.numel() == 21_000_000 and int(idx.max()) < 1_000_003


@pytest.mark.parametrize("index", ["even", "uniform", "hash", "sequential"])
def test_the_first_read_order_is_a_relabelling_whose_first_reads_are_sequential(index):
    sizes, n = [700, 1300, 500], 900
    idx = maps.INDEX[index](sizes, n, maps.generator(4))
    relabelled, order = maps.first_read_order(idx, n)
    assert torch.equal(torch.sort(order).values, torch.arange(n))  # a permutation of the ring
    w = torch.randn(n, generator=maps.generator(9))
    assert torch.equal(w[order][relabelled], w[idx])  # the same weights, read from W in the new order
    seen: set[int] = set()
    firsts = [v for v in relabelled.tolist() if not (v in seen or seen.add(v))]
    assert firsts == list(range(len(firsts)))  # element m is the m-th element to be read
    assert len(firsts) == int(torch.unique(idx).numel())
    if index == "sequential":
        assert torch.equal(relabelled, idx)  # already in first-read order


@pytest.mark.parametrize("index", ["even", "uniform", "hash", "sequential"])
@pytest.mark.parametrize("n", [900, 3000])  # reads per element: 2 or more; some read once, some never
def test_the_blocked_order_numbers_elements_by_their_last_readers_block_then_their_first_reader(monkeypatch, index, n):
    monkeypatch.setattr(maps, "BLOCK", 64)  # many blocks in a small map
    sizes = [700, 1300, 500]
    idx = maps.INDEX[index](sizes, n, maps.generator(4))
    relabelled, order = maps.blocked_order(idx, n)
    assert torch.equal(torch.sort(order).values, torch.arange(n))  # a permutation of the ring
    w = torch.randn(n, generator=maps.generator(9))
    assert torch.equal(w[order][relabelled], w[idx])  # the same weights, read from W in the new order
    readers: dict[int, list[int]] = {}
    for position, label in enumerate(relabelled.tolist()):
        readers.setdefault(label, []).append(position)
    read = sorted(readers)
    assert read == list(range(len(read)))  # the elements read come first
    keys = [(readers[m][-1] // 64, readers[m][0]) for m in read]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # last reader's block, then first reader
    unread = order[len(read) :].tolist()
    assert unread == sorted(unread)  # in their old order
    assert len({block for block, _ in keys}) > 10  # many runs: not the first-read order


def test_the_blocked_order_is_the_first_read_order_within_one_block():
    idx = maps.even([700, 1300, 500], 900, maps.generator(4))
    assert len(idx) <= maps.BLOCK
    assert torch.equal(maps.blocked_order(idx, 900)[0], maps.first_read_order(idx, 900)[0])

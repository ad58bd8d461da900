"""The judge: each claim judged where the paper made it, what it stood on, and how many seeds
would settle it. Frames here are built by hand; tests/test_paper_oracle.py feeds the judge
the paper's own numbers through the report."""

import json
import math

import pandas as pd
import pytest

from suite import archs, claims, methods, stats

# A suite the package does not ship: budgets resolve at the rows' own widths (tests/test_paper_oracle.py
# resolves them through the shipped suites).
RUN = {"suite": "toy", "profile": "full"}
EXPERIMENT = "toy/digits-resnet18"


def frame(values: dict[tuple[str, int], list[float]], **columns) -> pd.DataFrame:
    """Rows of the digits suite's experiment: {("arch/method" or "method", budget): [one value per seed]}."""
    rows = []
    for (entry, budget), vs in values.items():
        arch, _, method = entry.rpartition("/")
        for seed, v in enumerate(vs):
            row = {"experiment": "digits-resnet18", "task": "digits", "profile": "full", "width": 0.25}
            row |= {"arch": arch or "resnet18-cifar", "method": method, "budget": budget, "value": v, "seed": seed}
            rows.append(row | {k: c[seed] if isinstance(c, list) else c for k, c in columns.items()})
    return pd.DataFrame(rows)


def plain(arch="resnet18-cifar", width=0.25):
    return methods.plain_backbone(archs.Net(archs.get(arch), width, 1, 10))


def claim(kind="ordering", **fields):
    return {
        "id": "x",
        "kind": kind,
        "statement": "",
        "task": "digits",
        "metric": "top1",
        "experiments": [EXPERIMENT],
    } | fields


ORDER = claim(order=["rpg", "plain"], direction="higher")


def typed(*raw: dict) -> list[claims.Claim]:
    """Claims as the file's loader gives them, from this file's dicts (merged with ``|``)."""
    return [claims.Claim(**({"statement": ""} | c)) for c in raw]


def judge(c, data, run=RUN):
    (v,) = claims.judge(typed(c), data, run)
    return v


def test_an_ordering_needs_every_gap_clear_of_zero_and_says_how_many_seeds_would_settle_it():
    def verdict(rpg, plain_):
        return judge(ORDER, frame({("rpg", 5000): rpg, ("plain", 5000): plain_}))

    assert verdict([90, 91, 92], [80, 81, 82]).verdict == claims.REPRODUCED
    assert verdict([80, 81, 82], [90, 91, 92]).verdict == claims.NOT_REPRODUCED
    unsure = verdict([80, 90, 85], [84, 86, 85])
    assert unsure.verdict == claims.INCONCLUSIVE
    # No paper gap: the observed one (+0) cannot be settled at any seed count.
    assert unsure.seeds_needed == "never"
    one_seed = verdict([99], [10])
    assert one_seed.verdict == claims.INCONCLUSIVE and one_seed.seeds_needed is None
    other = judge(ORDER, frame({("rpg", 5000): [90, 91]}), {"suite": "cifar", "profile": "full"})
    assert other.verdict == claims.NOT_RUN


def test_a_stand_in_network_is_not_named_as_the_network_the_claim_names():
    # Table 2's ResNet-34 RPG against plain ResNet-18, judged where one network ran for both.
    c = claim(order=["resnet34-cifar/rpg", "resnet18-cifar/plain"], direction="higher")
    (d,) = judge(c, frame({("rpg", 5000): [90, 91, 92], ("plain", 5000): [80, 81, 82]})).details
    assert [(p["left"], p["right"]) for p in d["pairs"]] == [("rpg", "plain")]
    assert d["text"].startswith("rpg ahead of plain by") and "resnet18-cifar" in d["judged_on"]
    # Where both networks ran, each entry keeps its network.
    both = {("resnet34-cifar/rpg", 5000): [90, 91, 92], ("resnet18-cifar/plain", 5000): [80, 81, 82]}
    (d,) = judge(c, frame(both)).details
    assert (d["pairs"][0]["left"], d["pairs"][0]["right"]) == ("resnet34-cifar/rpg", "resnet18-cifar/plain")


def test_seeds_needed_come_from_the_paper_gap_at_the_observed_spread():
    paper = [
        {"id": "a", "kind": "value", "method": "rpg", "value": 80.0, "metric": "top1"},
        {"id": "b", "kind": "value", "method": "plain", "value": 79.0, "metric": "top1"},
    ]
    c = ORDER | {"values": ["a", "b"]}
    rpg, plain_ = [90.0, 91.5, 90.3], [90.2, 89.5, 90.9]
    (v, *_) = claims.judge(typed(c, *paper), frame({("rpg", 5000): rpg, ("plain", 5000): plain_}), RUN)
    assert v.verdict == claims.INCONCLUSIVE
    (pair,) = v.details[0]["pairs"]
    assert pair["paper"] == pytest.approx(1.0)
    assert v.seeds_needed == stats.seeds_needed(1.0, stats.pooled_sd(rpg, plain_))
    assert f"about {v.seeds_needed} seeds" in v.details[0]["text"]


def test_a_claim_at_a_budget_is_judged_at_that_budget_only():
    data = frame(
        {
            ("rpg", 5000): [90, 91, 92],
            ("plain", 5000): [80, 81, 82],
            ("rpg", 20000): [70, 71, 72],
            ("plain", 20000): [80, 81, 82],
        }
    )
    everywhere = judge(ORDER, data)  # no budget: every budget both have, and a reversal is not hidden
    assert everywhere.verdict == claims.NOT_REPRODUCED
    assert [d["verdict"] for d in everywhere.details] == [claims.REPRODUCED, claims.NOT_REPRODUCED]
    at_5k = judge(ORDER | {"budget": "5K"}, data)
    assert at_5k.verdict == claims.REPRODUCED and [d["budget"] for d in at_5k.details] == [5000]
    # A budget no cell has is not judged at the nearest one: the claim is not run, and says what is missing.
    nowhere = judge(ORDER | {"budget": "10K"}, data)
    assert nowhere.verdict == claims.NOT_RUN and "at 10K" in nowhere.reason


def test_value_claims_are_judged_at_their_own_budget_and_network_only():
    value = claim("value", method="rpg", arch="resnet18-cifar", value=91.0, tolerance=1.0, direction="higher")
    # Paper scale: the claim's own task, its network at full width, the full profile.
    data = frame({("rpg", 5000): [90.9, 91.0, 91.1], ("rpg", 20000): [97.0, 97.1, 96.9]}, width=1.0)
    assert judge(value | {"budget": "5K"}, data).verdict == claims.REPRODUCED
    assert judge(value | {"budget": "20K"}, data).verdict == claims.NOT_REPRODUCED
    # The paper's plain network "at 11M" is the network at its natural size: written at = "100%".
    full = plain(width=1.0)
    natural = frame({("plain", full): [91.0, 91.1, 90.9], ("plain", 20000): [50.0, 50.0, 50.0]}, width=1.0)
    at_natural = value | {"method": "plain", "budget": "11M", "at": "100%"}
    v = judge(at_natural, natural)
    assert v.verdict == claims.REPRODUCED and [d["budget"] for d in v.details] == [full]
    # Off paper scale a value is not judged, never not reproduced: another task, or a narrower network.
    stand_in = judge(value | {"budget": "5K", "task": "cifar100"}, data)
    assert stand_in.verdict == claims.NOT_JUDGED and "CIFAR-100" in stand_in.reason
    narrow = judge(value | {"budget": "5K"}, frame({("rpg", 5000): [80.0, 80.1, 80.2]}))
    assert narrow.verdict == claims.NOT_JUDGED and "at width 0.25" in narrow.reason


def test_beats_each_baseline_is_judged_pair_by_pair_with_its_stand_in_named():
    beats = claim(better=["rpg"], worse=["lego", "hash"], direction="higher", task="cifar100", budget="11M")
    beats["stand_in"] = {"budget": "*"}
    data = frame({("rpg", 5000): [90, 91, 92], ("lego", 5000): [80, 81, 82], ("hash", 5000): [95, 96, 97]})
    v = judge(beats, data)
    assert [p["verdict"] for p in v.details[0]["pairs"]] == [claims.REPRODUCED, claims.NOT_REPRODUCED]
    assert v.verdict == claims.NOT_REPRODUCED and v.scale == "stand-in"
    (setting,) = v.judged_on
    assert "standing in for CIFAR-100" in setting and "resnet18-cifar at width 0.25" in setting


def test_lower_is_better_orderings_and_a_metric_read_from_its_own_column():
    order = claim(order=["rpg", "reuse-bn", "reuse"], metric="normal_rmse", direction="lower", same_budget=False)
    normal = {"rpg": [39.0, 39.1, 39.2], "reuse-bn": [40, 40.1, 40.2], "reuse": [41, 41.1, 41.2]}
    rows = [
        {"experiment": "table5", "task": "s3dis", "profile": "full", "width": 1.0, "arch": "sharpnet", "method": m}
        | {"seed": i, "budget": 9736 if m != "reuse" else 9480, "normal_rmse": v, "value": 50.0 - v}
        for m, vs in normal.items()
        for i, v in enumerate(vs)
    ]
    order["experiments"] = ["multitask/table5"]
    (v,) = claims.judge(typed(order | {"task": "s3dis"}), pd.DataFrame(rows), {"suite": "multitask", "profile": "full"})
    # Depth (value) runs the other way: only the normal column can reproduce the order.
    assert v.verdict == claims.REPRODUCED, v
    assert v.details[0]["budget"] is None  # compared across the two budgets


def test_paired_comparisons_pair_seeds():
    relation = claim("relation", left="rpg-int8@50%", right="rpg@50%", max_gap=0.5, direction="higher", paired=True)
    half = round(0.5 * plain())
    # Each seed's int8 network is 0.1 below its own float network; the seeds differ by a lot.
    data = frame({("rpg-int8", half): [80.0, 85.9, 90.0], ("rpg", half): [80.1, 86.0, 90.1]})
    v = judge(relation, data)
    assert v.verdict == claims.REPRODUCED and "paired by seed" in v.details[0]["text"]
    assert judge(relation | {"paired": False}, data).verdict == claims.INCONCLUSIVE  # Welch cannot see the pairing


def test_relations_compare_the_rows_at_the_named_fractions_of_the_plain_size():
    half_rel = claim("relation", left="resnet34-cifar/rpg@50%", right="resnet34-cifar/plain@100%", min_gain=-0.5)
    full, half = plain(), round(0.5 * plain())

    def verdict(rpg, plain_, rpg_budget=half):
        data = frame({("rpg", rpg_budget): rpg, ("plain", full): plain_, ("rpg", full // 10): [0, 0, 0]})
        return judge(half_rel | {"direction": "higher"}, data)

    ok = verdict([90.0, 90.2, 90.1], [90.3, 90.4, 90.2])
    # resnet34-cifar is absent: the run's one network stands in, and the setting says so.
    assert ok.verdict == claims.REPRODUCED and "standing in for resnet34-cifar" in ok.judged_on[0]
    assert verdict([91.0, 91.5, 91.2], [90.3, 90.4, 90.2]).verdict == claims.REPRODUCED  # better is fine
    assert verdict([88.0, 88.2, 88.1], [90.3, 90.4, 90.2]).verdict == claims.NOT_REPRODUCED
    assert verdict([89.0, 90.5, 89.8], [90.3, 90.4, 90.2]).verdict == claims.INCONCLUSIVE
    # No row at half the plain size: nothing to compare.
    assert verdict([90.0, 90.2, 90.1], [90.3, 90.4, 90.2], rpg_budget=full // 4).verdict == claims.NOT_RUN


def test_a_two_sided_gap_and_a_ratio_bound():
    gap = claim("relation", left="rpg", right="plain", max_gap=0.5, direction="higher")
    data = frame({("rpg", 100): [92.0, 92.1, 92.2], ("plain", 100): [90.3, 90.4, 90.2]})
    assert judge(gap, data).verdict == claims.NOT_REPRODUCED  # too far either way
    ratio = claim("relation", left="rpg", right="plain", min_ratio=2.0)
    assert judge(ratio, frame({("rpg", 100): [40.0, 41.0, 40.5], ("plain", 100): [10.0, 10.2, 10.1]})).verdict == (
        claims.REPRODUCED
    )
    assert judge(ratio, frame({("rpg", 100): [12.0, 12.1, 12.2], ("plain", 100): [10.0, 10.2, 10.1]})).verdict == (
        claims.NOT_REPRODUCED
    )


def test_a_speed_claim_off_a_gpu_is_a_stand_in_judged_at_the_evaluation_batch():
    ratio = claim("relation", left="rpg", right="plain", min_ratio=15.0, metric="latency_ms", hardware="a GPU")
    columns = {"latency_deployed_batchN_ms": None, "device": "AMD EPYC", "device_type": "cpu", "eval_batch": 64}
    rows = frame({("rpg", 100): [1, 1, 1], ("plain", 100): [1, 1, 1]}, **columns)
    rows["latency_deployed_batchN_ms"] = [8.0, 8.1, 8.2, 0.30, 0.31, 0.32]
    rows["latency_deployed_batch1_ms"] = [8.0, 8.1, 8.2, 1.0, 1.1, 1.2]  # batch 1 would fail: not what is read
    v = judge(ratio, rows)
    assert v.verdict == claims.REPRODUCED and v.scale == "stand-in"
    assert "AMD EPYC (cpu) standing in for the paper's a GPU" in v.judged_on[0]


def test_power_laws_are_fitted_on_every_seed_below_the_fraction():
    law = claim(
        "powerlaw", methods=["resnet18-cifar/rpg", "resnet34-cifar/rpg"], below_fraction=0.5, max_exponent_diff=0.1
    )
    budgets = [1000, 10000]  # two budgets: enough with three seeds each
    big = plain("resnet18-cifar")  # at and above half the plain size: left out of the fit

    def data(k18, k34):
        values = {}
        for b in [*budgets, big]:
            values[("resnet18-cifar/rpg", b)] = [10 * b**k18 * (1 + e) for e in (-0.001, 0, 0.001)]
            values[("resnet34-cifar/rpg", b)] = [11 * b**k34 * (1 + e) for e in (-0.001, 0, 0.001)]
        # Far above the fraction, a point that would wreck any fit that took it.
        values[("resnet18-cifar/rpg", big)] = [1.0, 1.0, 1.0]
        rows = frame(values)
        rows["width"] = 0.25
        return rows

    same = judge(law, data(0.10, 0.12))
    assert same.verdict == claims.REPRODUCED and "6 points, 2 budgets" in same.details[0]["text"]
    assert judge(law, data(0.05, 0.30)).verdict == claims.NOT_REPRODUCED


def test_wrong_seeds_must_fall_to_chance_and_checkpoints_hold_nothing_generated():
    chance = claim("chance", method="rpg", metric="wrong_seeds_top1", max_above_chance=5.0, budget="*")
    del chance["task"]
    low = frame({("rpg", 5000): [90, 91, 92]}, wrong_seeds_top1=[9.5, 10.4, 10.1])
    v = judge(chance, low)
    assert v.verdict == claims.REPRODUCED and v.scale == "scale-free"
    high = frame({("rpg", 5000): [90, 91, 92]}, wrong_seeds_top1=[60.0, 61.0, 62.0])
    assert judge(chance, high).verdict == claims.NOT_REPRODUCED
    storage = claim("storage", method="rpg", budget="*")
    del storage["task"]
    parts = {"storage_ring_bytes": 4000, "storage_norm_bytes": 500, "storage_dense_bytes": 100}
    clean = frame(
        {("rpg", 5000): [90.0]}, stored_bytes=9000, storage_generated_bytes=400000, storage_other_bytes=0, **parts
    )
    assert judge(storage, clean).verdict == claims.REPRODUCED
    maps = clean.assign(storage_other_bytes=500000, stored_bytes=509000)
    assert judge(storage, maps).verdict == claims.NOT_REPRODUCED


def test_every_claim_in_the_claims_file_is_well_formed():
    loaded = claims.load()
    assert len(loaded) > 100
    for c in loaded:
        if c.kind == "value":
            assert isinstance(c.value, int | float) and c.direction in ("higher", "lower"), c.id
        if c.kind == "ordering" and c.order is not None:
            assert len(c.order) >= 2, c.id
        if c.hardware:
            assert c.metric == "latency_ms", c.id
    assert not math.isnan(stats.seeds_needed(1.0, 0.5))


def test_a_claims_file_with_an_unknown_key_is_refused_by_name(tmp_path):
    from suite.claims import schema
    from suite.errors import UsageError

    (tmp_path / "bad.toml").write_text(
        '[[claim]]\nid = "x"\nkind = "ordering"\nstatement = "s"\ntask = "t"\nmetric = "m"\ndirection = "higher"\n'
        'order = ["a", "b"]\nbugdet = "11M"\n'
    )
    with pytest.raises(UsageError, match="bad.toml, claim x: unknown key.s. bugdet for a ordering claim"):
        schema.load(tmp_path)


def test_a_claim_value_of_the_wrong_type_is_refused_by_name(tmp_path):
    from suite.claims import schema
    from suite.errors import UsageError

    (tmp_path / "bad.toml").write_text(
        '[[claim]]\nid = "x"\nkind = "value"\nstatement = "s"\ntask = "t"\nmetric = "top1"\n'
        'direction = "higher"\nmethod = "rpg"\nvalue = "78.9"\n'
    )
    with pytest.raises(UsageError, match="bad.toml, claim x: value must be int or float, got '78.9'"):
        schema.load(tmp_path)


def test_a_claim_is_loaded_typed_with_what_an_absent_key_means(tmp_path):
    from suite.claims import schema
    from suite.errors import UsageError

    head = '[[claim]]\nid = "x"\nkind = "relation"\nstatement = "s"\ntask = "t"\nmetric = "top1"\n'
    (tmp_path / "c.toml").write_text(head + 'left = "rpg"\nright = "plain"\nmax_gap = 1\n')
    (c,) = schema.load(tmp_path)
    assert isinstance(c, claims.Claim) and c.max_gap == 1 and isinstance(c.max_gap, int)  # 1 is written "1"
    assert (c.direction, c.paired, c.same_budget, c.min_ratio, c.values) == ("higher", False, True, None, [])
    pair = 'left = "rpg"\nright = "plain"\n'
    for body, message in [
        ('max_gap = 1\ndirection = "up"\n', "claim x: direction: Input should be"),
        ("max_gap = 1\npaired = 1\n", "claim x: paired: Input should be a valid boolean"),
        ('max_gap = 1\nstand_in = { max_gap = "2" }\n', "max_gap must be int or float"),
        ("", "a relation has exactly one of max_gap, min_gain, min_ratio"),
    ]:
        (tmp_path / "c.toml").write_text(head + pair + body)
        with pytest.raises(UsageError, match=message):
            schema.load(tmp_path)


def test_a_verdict_is_one_of_one_set_of_words():
    assert list(claims.VERDICTS) == list(claims.Outcome)
    words = ["reproduced", "not reproduced", "inconclusive", "not judged", "not run"]
    assert [str(v) for v in claims.VERDICTS] == words
    v = judge(ORDER, frame({("rpg", 5000): [90.0, 90.1, 90.2], ("plain", 5000): [80.0, 80.1, 80.2]}))
    assert v.verdict is claims.REPRODUCED and v.details[0]["pairs"][0]["verdict"] is claims.REPRODUCED
    assert json.loads(json.dumps(v.as_json()))["verdict"] == "reproduced"

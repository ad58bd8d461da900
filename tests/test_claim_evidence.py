"""What a reviewer reads beside a verdict: nothing judged on generated data, the paper's
gap placed against the interval, and seeds asked for only where they could help."""

import pandas as pd
import pytest

from suite import claims, stats
from suite.suites import spec
from suite.suites.budgets import Budgets

FASHION = {"suite": "fashion", "profile": "cpu"}
ABLATIONS = ["rpg", "rpg-perm-only", "rpg-sign-only", "rpg-neither"]


def fig5_budget() -> int:
    """The backbone the fashion suite runs Figure 5's "2M" at (15% of its ResNet-10)."""
    sharing = next(e for e in spec.load("fashion").experiments if e.name == "sharing")
    return Budgets(sharing, "cpu").count("resnet10-cifar", "15%")


def sharing(values: dict[str, list[float]], profile: str = "cpu") -> pd.DataFrame:
    budget = fig5_budget()
    return pd.DataFrame(
        {"experiment": "sharing", "task": "fashion", "profile": profile, "width": 0.125, "arch": "resnet10-cifar"}
        | {"method": method, "budget": budget, "value": v, "seed": seed, "precision": "fp32", "epochs": 2}
        for method, vs in values.items()
        for seed, v in enumerate(vs)
    )


def fig5(data: pd.DataFrame, run: dict = FASHION) -> claims.Verdict:
    every = claims.load()
    (v,) = [v for v in claims.judge(every, data, run) if v.claim.id == "fig5.both-best"]
    return v


def test_generated_data_judges_nothing_and_the_same_rows_on_real_data_are_judged():
    values = {"rpg": [90.0, 90.2, 90.1], **{m: [80.0, 80.3, 80.1] for m in ABLATIONS[1:]}}
    generated = fig5(sharing(values, "smoke"), {"suite": "fashion", "profile": "smoke"})
    assert generated.verdict == claims.NOT_JUDGED and generated.generated
    assert "generated data" in generated.reason and generated.scale is None
    assert generated.as_json()["generated_data"] is True
    real = fig5(sharing(values))
    assert real.verdict == claims.REPRODUCED and not real.generated
    # How far from the paper's setting: its data, width and schedule (CIFAR-100's 200 epochs).
    gap = real.as_json()["scale_gap"]
    assert gap == {
        "data": "Fashion-MNIST for CIFAR-100",
        "width": 0.125,
        "epochs": 2,
        "paper_epochs": 200,
        "epochs_fraction": 0.01,
    }
    # A claim about RPG itself (no paper setting) is not judged on generated data either.
    every = claims.load()
    chance = [
        v for v in claims.judge(every, sharing(values, "smoke"), {"suite": "fashion"}) if v.claim.kind != "qualitative"
    ]
    assert all(v.verdict in (claims.NOT_JUDGED, claims.NOT_RUN) for v in chance)


def test_equal_methods_place_each_of_the_papers_fig5_gaps_above_the_interval_and_ask_for_no_seeds():
    same = [85.0, 85.1, 85.2]
    v = fig5(sharing({m: same for m in ABLATIONS}))
    assert v.verdict == claims.INCONCLUSIVE
    pairs = v.details[0]["pairs"]
    assert [p["right"] for p in pairs] == ABLATIONS[1:]
    assert [round(p["paper"], 2) for p in pairs] == [0.7, 5.4, 5.8]
    assert all(p["paper_gap"] == "above" for p in pairs)
    # The paper's gaps are already excluded: more seeds would not make this run agree with it.
    assert all(p["seeds_needed"] is None for p in pairs) and v.seeds_needed is None
    assert (
        "the paper's +5.4 lies above the interval: the effect here is smaller than the paper's" in v.details[0]["text"]
    )
    assert "seeds per row would" not in v.details[0]["text"]


def test_a_count_no_larger_than_the_seeds_run_is_never_asked_for():
    # The paper's +0.7 is inside the interval, and at this spread three seeds already had the power
    # to detect it: the run says so instead of asking for "about 3 seeds".
    rpg, other = [85.1, 85.3, 85.5], [84.8, 85.0, 85.2]
    spread = stats.pooled_sd(rpg, other)
    assert stats.seeds_needed(0.7, spread) <= 3
    v = fig5(sharing({"rpg": rpg, **{m: other for m in ABLATIONS[1:]}}))
    first = v.details[0]["pairs"][0]
    assert first["verdict"] == claims.INCONCLUSIVE and first["paper_gap"] == "inside"
    assert first["seeds_needed"] is None and first["seeds"] == 3
    assert "these 3 seeds per row had 80% power to detect the paper's +0.7" in v.details[0]["text"]
    # A wider spread: the paper's gap still inside, and the count asked for exceeds the seeds run.
    noisy = [83.3, 85.3, 87.3]
    w = fig5(sharing({"rpg": noisy, **{m: other for m in ABLATIONS[1:]}}))
    pair = w.details[0]["pairs"][0]
    assert pair["paper_gap"] == "inside" and pair["seeds_needed"] > 3
    assert pair["seeds_needed"] == stats.seeds_needed(0.7, stats.pooled_sd(noisy, other))
    assert (
        f"about {pair['seeds_needed']} seeds per row would detect the paper's +0.7, if it were real"
        in (w.details[0]["text"])
    )


@pytest.mark.parametrize(("paper", "where"), [(9.0, "above"), (0.5, "inside"), (-3.0, "below")])
def test_the_papers_gap_is_placed_against_the_interval(paper, where):
    ci = stats.Interval(1.0, -1.0, 3.0)
    assert claims.size.place(paper, ci) == where
    assert claims.size.place(None, ci) is None

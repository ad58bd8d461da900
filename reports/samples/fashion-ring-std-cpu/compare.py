"""The tables in reports/README.md ("Where W starts"), from the records beside this file:
each ring-building method's test accuracy with W at the official constant (official/) and
at the smallest layer std, the default (smallest/, rerun at the same code), paired
by seed (same data order, same maps; only W's std and the layers' scales differ), with the
95% t-interval of the paired difference. A method not rerun takes the default's numbers
from the committed fashion sample (an older commit), unpaired; the reruns show how far the
two commits' cells differ.

    python reports/samples/fashion-ring-std-cpu/compare.py
"""

import glob
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from scipy import stats

HERE = Path(__file__).parent
SAMPLE = HERE.parent / "fashion-cpu"


def accuracies(folder: Path) -> dict[tuple[str, int], dict[int, float]]:
    out = defaultdict(dict)
    for path in glob.glob(str(folder / "records" / "*.json")):
        r = json.loads(Path(path).read_text())
        c = r["config"]
        if r["status"] == "ok" and c["experiment"] == "sharing":
            out[(c["method"], c["budget"])][c["seed"]] = r["metrics"]["top1"]
    return out


def _row(key, a: list[float], b: list[float], paired: bool) -> str:
    cells = f"| {key[1]:,} | {key[0]} | {statistics.mean(a):.2f} ± {statistics.stdev(a):.2f} | "
    cells += f"{statistics.mean(b):.2f} ± {statistics.stdev(b):.2f} | "
    if not paired:
        return cells + f"{statistics.mean(b) - statistics.mean(a):+.2f} (unpaired: another commit) |"
    d = [y - x for x, y in zip(a, b, strict=True)]
    m, half = statistics.mean(d), stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return cells + f"{m:+.2f} [{m - half:+.2f}, {m + half:+.2f}] |"


def main() -> None:
    official, sample, rerun = accuracies(HERE / "official"), accuracies(SAMPLE), accuracies(HERE / "smallest")
    print("| budget | method | smallest (default) | official | official − smallest (95% CI) |")
    print("|---|---|---|---|---|")
    for key in sorted(official, key=lambda k: (k[1], k[0])):
        seeds = sorted(official[key])
        b = [official[key][s] for s in seeds]
        if key in rerun and sorted(rerun[key]) == seeds:
            print(_row(key, [rerun[key][s] for s in seeds], b, paired=True))
        else:
            print(_row((key[0] + " (sample)", key[1]), [sample[key][s] for s in seeds], b, paired=False))
    print()
    print("The default rule's cells at the same seeds, the sample's commit against this one:")
    for key, seeds in sorted(rerun.items()):
        print(f"  {key}: " + ", ".join(f"seed {s} {sample[key][s]:.2f} -> {v:.2f}" for s, v in sorted(seeds.items())))


if __name__ == "__main__":
    main()

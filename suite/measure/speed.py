"""``rpg-bench speed``: what RPG (or any registered method: ``--method``) costs at run time,
measured side by side with the plain network in one process.

(a) Training: one SGD step (forward, cross-entropy, backward, optimizer step) of the RPG
    network against the plain network of the same architecture on the same batch. RPG
    regenerates every conv kernel from its ring at each step; the target (issue #40) is a
    step time at most 1.05x the plain network's, with a ring of half the conv weights (the
    default ``--ring-size 50%``).
(b) Deployment: ``rpg.materialize(model)`` is a plain dense network, so its inference
    latency should be the plain network's (target: at most 1.02x), at batch 1 and at
    ``--batch``.

Any other method (``--method M --budget B``) is built at its budget on the same network and
measured the same way: its training step as it trains (a pruning method's pruned network,
its fine-tuning step) and its deployed form (``rpg.materialize``: a generated network's
dense weights, a factorised or pruned network as itself). The targets are RPG's claims;
another method's ratios are reported without one.

Method: untimed warm-up steps, then timed steps with RPG and plain interleaved (the order
alternates at each pair), so that drift in the machine's speed (thermal, other processes)
affects both alike; each timed call is synchronised on CUDA. Reported: medians, p90s, and
the ratio of medians with a 90% paired-bootstrap interval (pairs resampled with a fixed
seed). Inference latency is measured under ``torch.inference_mode`` in eval mode, RPG and
plain calls interleaved in the same way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

import rpg
from suite import archs, methods, stats
from suite.args import resolve_device
from suite.counting.ledger import format_count, ledger, parse_count
from suite.errors import UsageError
from suite.measure import runtime
from suite.suites import budgets

TRAIN_TARGET = 1.05
DEFAULT_RING = "50%"  # of the conv weights: the ring the train-step target is stated for
DEPLOYED_TARGET = 1.02
NUM_CLASSES = 10
# Wall-clock budget of the inference measurements, per batch size (seconds, both models).
INFERENCE_SECONDS = 8.0


def arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Time an RPG training step against the plain network's (target <= 1.05x) and the deployed "
        "(materialized) RPG network's inference against the plain network's (target <= 1.02x)."
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--arch", default="resnet18-cifar", help="architecture (rpg-bench list; default resnet18-cifar)")
    p.add_argument("--batch", type=int, default=64, help="training batch, and the larger inference batch (default 64)")
    p.add_argument(
        "--ring-size",
        default=DEFAULT_RING,
        help="RPG ring size: a count (2M, 500K, 2000000) or a share of the conv weights it generates (default 50%%)",
    )
    p.add_argument(
        "--method",
        default="rpg",
        help="the method to time against plain (rpg-bench list; default rpg, at --ring-size)",
    )
    p.add_argument(
        "--budget",
        default=None,
        help="the method's backbone budget: a count (2M) or a share of the plain backbone (50%%); "
        "default 50%% (rpg: --ring-size instead, unless given)",
    )
    p.add_argument("--steps", type=int, default=30, help="timed training steps per network (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps per network first (default 3)")


def _interleaved(fns: Sequence[Callable[[], object]], repeats: int, device: torch.device) -> list[list[float]]:
    """``repeats`` timed calls of each function, in pairs whose order alternates."""
    time_one = runtime.timer(device)
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            times[i].append(time_one(fns[i]))
    return times


class _Others:
    """CPU time other processes took while a measurement ran, in cores (Linux; else None)."""

    @staticmethod
    def _busy() -> tuple[float, float] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:8]]
        except (OSError, ValueError):
            return None
        mine = os.times()
        hz = os.sysconf("SC_CLK_TCK")
        return (sum(ticks) - ticks[3] - ticks[4]) / hz, mine.user + mine.system

    def __enter__(self) -> _Others:
        self.start, self.t0, self.cores = self._busy(), time.perf_counter(), None
        return self

    def __exit__(self, *exc) -> None:
        end = self._busy()
        if self.start is not None and end is not None:
            others = (end[0] - self.start[0]) - (end[1] - self.start[1])
            self.cores = max(0.0, others / max(time.perf_counter() - self.t0, 1e-9))


def _p90(xs: Sequence[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.9 * len(s)))]


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f}" if ms >= 100 else f"{ms:.2f}" if ms >= 10 else f"{ms:.3f}"


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "NOT met"


def _columns(name: str) -> str:
    short = name[:8]
    return (
        f"{'':<22}{'plain ms':>10}{'p90':>9}{f'{short} ms':>12}{'p90':>9}{f'{short}/plain':>15}  "
        f"{'90% CI':<13}{'n':>5}  target"
    )


def _row(label: str, plain: Sequence[float], rpg_: Sequence[float], target: float | None) -> tuple[str, float]:
    interval = stats.median_ratio(rpg_, plain)
    ratio, lo, hi = interval.estimate, interval.low, interval.high
    line = (
        f"{label:<22}{_ms(statistics.median(plain)):>10}{_ms(_p90(plain)):>9}"
        f"{_ms(statistics.median(rpg_)):>12}{_ms(_p90(rpg_)):>9}{ratio:>15.3f}  {f'{lo:.3f}-{hi:.3f}':<13}"
        f"{len(plain):>5}  " + (f"<= {target:.2f} {_verdict(ratio, target)}" if target else "(none)")
    )
    return line, ratio


def ring_size(text: str, arch_name: str) -> int:
    """``--ring-size``: a parameter count, or "P%" of the conv weights the ring generates."""
    if not text.strip().endswith("%"):
        try:
            return parse_count(text)
        except UsageError as e:
            raise UsageError(f"--ring-size: {e}") from None
    try:
        share = float(text.strip()[:-1]) / 100
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise UsageError(f"--ring-size: a share must lie in (0%, 100%], got {text!r}")
    with torch.device("meta"):  # only counted: no weights, no maps
        model = rpg.convert(archs.Net(archs.get(arch_name), 1.0, 3, NUM_CLASSES).build(), 1)
    return max(1, round(share * sum(r.total for r in rpg.rings(model).values())))


def _budget(text: str, net: archs.Net) -> int:
    """``--budget``: a count, or "P%" of the plain backbone."""
    try:
        return budgets.at(net, text)
    except UsageError as e:
        raise UsageError(f"--budget: {e}") from None


def main(args: argparse.Namespace) -> int:
    arch = archs.get(args.arch)
    if arch.family != "resnet":
        raise UsageError(
            f"--arch {arch.name}: speed compares a method with plain on a ResNet; this is a {arch.family} network"
        )
    method = methods.get(args.method)
    net = archs.Net(arch, 1.0, 3, NUM_CLASSES)
    for flag, value, least in (("--batch", args.batch, 1), ("--steps", args.steps, 2), ("--warmup", args.warmup, 0)):
        if value < least:
            raise UsageError(f"{flag} must be at least {least}, got {value}")
    ring = budget = None
    if method.name == "rpg" and args.budget is None:
        ring = ring_size(args.ring_size, arch.name)
    else:
        budget = _budget(args.budget or "50%", net)
        methods.check_budget(method, net, budget)
    device = resolve_device(args.device)
    threads = f"{torch.get_num_threads()} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"rpg-bench speed: {arch.name}, batch {args.batch}, {device} ({threads}), torch {torch.__version__}")
    result = compare(arch.name, args.batch, ring, args.steps, args.warmup, device, method=method.name, budget=budget)
    if ring is not None:
        print(
            f"rpg: ring of {format_count(ring)} ({ring:,}) generating {result['generated']:,} conv weights "
            f"({result['generated'] / ring:.2f} reads per element); backward: {result['grad_path']}"
        )
    else:
        print(f"{method.name}: {format_count(result['backbone'])} ({result['backbone']:,}) backbone parameters")
    targets = (TRAIN_TARGET, DEPLOYED_TARGET) if method.name == "rpg" else (None, None)
    print()
    print(_columns(method.name))
    line, train_ratio = _row(f"train step, batch {args.batch}", *result["train"], targets[0])
    print(line)
    deployed_ratios = []
    for batch, (plain_times, rpg_times) in result["deployed"].items():
        line, ratio = _row(f"deployed, batch {batch}", plain_times, rpg_times, targets[1])
        deployed_ratios.append(ratio)
        print(line)
    if result["others_cores"] is not None:
        print(
            f"(other processes kept {result['others_cores']:.2f} CPU cores busy on average during the timed "
            "training steps)"
        )
    print()
    worst = max(deployed_ratios)
    batches = " and ".join(str(b) for b in result["deployed"])
    if targets[0] is None:
        print(
            f"train ratio {train_ratio:.3f}; deployed ratio {worst:.3f}, worst of batch {batches} ({method.name}/plain)"
        )
        return 0
    print(f"train ratio {train_ratio:.3f} (target <= {TRAIN_TARGET:.2f}): {_verdict(train_ratio, TRAIN_TARGET)}")
    print(f"deployed ratio {worst:.3f}, worst of batch {batches} (target <= {DEPLOYED_TARGET:.2f}): ", end="")
    print(_verdict(worst, DEPLOYED_TARGET))
    return 0


def compare(
    arch_name: str,
    batch: int,
    ring_size: int | None,
    steps: int,
    warmup: int,
    device: torch.device,
    inference_seconds: float = INFERENCE_SECONDS,
    deployed: bool = True,
    method: str = "rpg",
    budget: int | None = None,
) -> dict:
    """Per-call times in seconds, the method's network and plain interleaved: "train" is one
    (plain, method) pair of series, "deployed" one pair per inference batch (1 and ``batch``).
    RPG at ``ring_size`` unless a ``budget`` is given: then ``method`` built to it (as it
    trains: a pruning method's network pruned)."""
    net = archs.Net(archs.get(arch_name), 1.0, 3, NUM_CLASSES)
    side = 32 if net.arch.stem == "cifar" else 224
    plain, model = _networks(net, ring_size, method, budget, device)
    rings = list(rpg.rings(model).values())
    data = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, side, side, generator=data).to(device)
    y = torch.randint(NUM_CLASSES, (batch,), generator=data).to(device)
    paths = {"inverse": "inverse-table gather + sum", "index_add": "index_add"}
    train, others_cores = _training_times(plain, model, x, y, steps, warmup, device)
    inference = _inference_times(plain, model, x, sorted({1, batch}), inference_seconds, device) if deployed else {}
    return {
        "generated": sum(r.total for r in rings),
        "grad_path": ", ".join(sorted({paths[r.grad_path_in_use] for r in rings})),
        "backbone": ledger(model, net.arch.head)["backbone"],
        "train": train,
        "deployed": inference,
        "others_cores": others_cores,
    }


def _networks(
    net: archs.Net, ring_size: int | None, method: str, budget: int | None, device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """The plain network and the one compared with it: RPG at ``ring_size``, or ``method``
    built to ``budget`` (pruned as it trains)."""
    torch.manual_seed(0)
    plain = net.build().to(device)
    if budget is None:
        torch.manual_seed(0)
        return plain, rpg.convert(net.build(), ring_size, seed=0).to(device)
    chosen = methods.get(method)
    built = methods.build(chosen, net, budget, seed=0)
    return plain, chosen.pruned(built.model, built.setting).to(device)


def _training_times(
    plain: nn.Module, model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, warmup: int, device
) -> tuple[list[list[float]], float | None]:
    """Training steps of both networks, interleaved: their times, and the cores other
    processes kept busy meanwhile."""
    optimizers = {"plain": _optimizer(plain), "rpg": _optimizer(model)}
    plain.train()
    model.train()
    calls = [
        lambda: _train_step(plain, optimizers["plain"], x, y),
        lambda: _train_step(model, optimizers["rpg"], x, y),
    ]
    _interleaved(calls, warmup, device)
    with _Others() as others:
        train = _interleaved(calls, steps, device)
    return train, others.cores


def _inference_times(
    plain: nn.Module, model: nn.Module, x: torch.Tensor, batches: list[int], seconds: float, device
) -> dict[int, list[list[float]]]:
    """Deployed inference (``model`` materialised) against the plain network at each batch
    size, interleaved, repeated for about ``seconds`` per batch size."""
    materialized = rpg.materialize(model).eval()
    plain.eval()
    inference = {}
    with torch.inference_mode():
        for b in batches:
            xb = x[:b].contiguous()
            pair = [lambda xb=xb: plain(xb), lambda xb=xb: materialized(xb)]
            warm = _interleaved(pair, 3, device)
            per_pair = statistics.median(warm[0]) + statistics.median(warm[1])
            repeats = max(10, min(1000, int(seconds / max(per_pair, 1e-6))))
            inference[b] = _interleaved(pair, repeats, device)
    return inference


def ratio(rpg_times: Sequence[float], plain_times: Sequence[float]) -> dict:
    """The ratio of medians with its 90% paired-bootstrap interval."""
    interval = stats.median_ratio(rpg_times, plain_times)
    return {"ratio": interval.estimate, "low": interval.low, "high": interval.high, "pairs": len(plain_times)}


if __name__ == "__main__":
    import sys

    try:
        sys.exit(main(sys.argv[1:]))
    except UsageError as e:
        print(f"rpg-bench speed: error: {e}", file=sys.stderr)
        sys.exit(2)

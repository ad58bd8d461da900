"""Suites: TOML files listing experiments (task x methods x budgets x seeds), checked on load.

An experiment's ``methods`` are method names, run on the experiment's ``arch``, or
``"arch/method"`` for another architecture (Table 2 sets ResNet-18 beside ResNet-34s).
``budgets`` are backbone counts (``"45K"``, ``2000000``) or fractions of the plain
network's backbone (``"50%"``), resolved per architecture at the experiment's width.
A method written ``"method@budget"`` runs at that budget only (Table 7 compares pruned
networks of different sizes); ``budgets`` may be left out when every method has one.
A budget may also name a method: that method's natural size on the architecture
(``"rpg@cpm"``: RPG with CPM's parameters, as Table 4 matches them).
``ceiling = true`` adds each architecture's plain network at its natural size (100%).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from suite import archs, methods, tasks
from suite.counting.ledger import parse_count
from suite.errors import UsageError
from suite.tasks import recipes

_SUITE_KEYS = {"name", "description", "default_profile", "threads_per_cell", "experiment"}
_EXPERIMENT_KEYS = {
    "name",
    "description",
    "task",
    "arch",
    "width",
    "methods",
    "budgets",
    "seeds",
    "claim",
    "ceiling",
    "recipe",
}

# An int is a backbone count; a float is a fraction of the plain backbone; a str names the
# method whose natural size it is.
Budget = int | float | str


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    task: str
    arch: str
    width: float
    methods: tuple[str, ...]
    budgets: tuple[Budget, ...]
    seeds: int
    claim: str | None
    ceiling: bool = False
    recipe: str | None = None  # a recipe family of the task: its profiles are "<recipe>-<profile>"
    overrides: tuple = ()  # recipe fields set by the suite, as (field, value) pairs

    def profile(self, suite_profile: str) -> str:
        """The task profile this experiment runs under the suite's profile."""
        return f"{self.recipe}-{suite_profile}" if self.recipe else suite_profile

    def runs(self) -> list[tuple[str, str, Budget | None]]:
        """(architecture, method, its own budget or None) for every entry of ``methods``."""
        out = []
        for entry in self.methods:
            name, _, budget = entry.partition("@")
            arch, _, method = name.rpartition("/")
            out.append((arch or self.arch, method, parse_budget(budget) if budget else None))
        return out


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    default_profile: str
    experiments: tuple[Experiment, ...]
    path: str
    # The CPU threads one of its cells keeps busy, where that is fewer than a machine has:
    # a CPU run without --jobs then runs cells side by side (suite.run.runner.default_jobs).
    threads_per_cell: int | None = None

    def check_profile(self, profile: str) -> None:
        """UsageError unless every experiment's task has the profile this one maps to."""
        for e in self.experiments:
            profiles = tasks.get(e.task).profiles
            prefix = f"{e.recipe}-" if e.recipe else ""
            # An experiment without a recipe family runs the task's own profiles only (no "mdeq-full").
            known = [p.removeprefix(prefix) for p in profiles if p.startswith(prefix) and (prefix or "-" not in p)]
            if profile not in known:
                raise UsageError(
                    f"unknown profile {profile!r} for experiment {e.name} (task {e.task}); known: {', '.join(known)}"
                )


def builtin() -> dict[str, Path]:
    """The suites shipped in suite/suites/, by name."""
    folder = resources.files("suite") / "suites"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def _locate(name: str) -> Path:
    if name.endswith(".toml") or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"suite file {name} does not exist")
        return path
    known = builtin()
    if name not in known:
        raise UsageError(f"unknown suite {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def _experiment(raw: object, where: str) -> Experiment:
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a table ([[experiment]]), got {raw!r}")
    unknown = set(raw) - _EXPERIMENT_KEYS
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("name", "task", "methods"):
        if key not in raw:
            raise UsageError(f"{where}: missing key {key!r}")
    where = f"{where} ({raw['name']!r})"
    pinned = [isinstance(m, str) and "@" in m for m in raw["methods"]] if isinstance(raw["methods"], list) else []
    if "budgets" not in raw and not (pinned and all(pinned)):
        raise UsageError(f"{where}: missing key 'budgets' (needed unless every method is written 'method@budget')")
    for key in [k for k in ("methods", "budgets") if k in raw]:
        if not isinstance(raw[key], list) or not raw[key]:
            raise UsageError(f"{where}: {key} must be a non-empty list, got {raw[key]!r}")
    try:
        task = tasks.get(raw["task"])
        arch = archs.get(raw.get("arch", task.arch)).name
        for m in raw["methods"]:
            if not isinstance(m, str):
                raise UsageError(f"methods must be names or 'arch/method[@budget]' strings, got {m!r}")
            name, _, budget = m.partition("@")
            arch_name, _, method = name.rpartition("/")
            if arch_name:
                archs.get(arch_name)
            methods.get(method)
            if budget:
                parse_budget(budget)
        budgets = tuple(parse_budget(b) for b in raw.get("budgets", []))
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None
    seeds = raw.get("seeds", 1)
    if not isinstance(seeds, int) or seeds < 1:
        raise UsageError(f"{where}: seeds must be a positive integer, got {seeds!r}")
    recipe, overrides = _recipe(raw, task, where)
    width = raw.get("width", task.width)
    if not isinstance(width, int | float) or width <= 0:
        raise UsageError(f"{where}: width must be a positive number, got {width!r}")
    return Experiment(
        name=raw["name"],
        description=raw.get("description", ""),
        task=task.name,
        arch=arch,
        width=float(width),
        methods=tuple(raw["methods"]),
        budgets=budgets,
        seeds=seeds,
        claim=raw.get("claim"),
        ceiling=_flag(raw, "ceiling", where),
        recipe=recipe,
        overrides=overrides,
    )


def _recipe(raw: dict, task: tasks.Task, where: str) -> tuple[str | None, tuple]:
    """(the recipe family, the recipe fields the experiment overrides). ``recipe`` is a
    family's name (``"mdeq"``: the task's ``mdeq-*`` profiles), or a table of fields to
    override, with an optional ``family``; the overrides are checked against every
    profile the experiment could run."""
    recipe = raw.get("recipe")
    if recipe is None:
        return None, ()
    changes = {}
    if isinstance(recipe, dict):
        changes = dict(recipe)
        recipe = changes.pop("family", None)
    if recipe is not None and (
        not isinstance(recipe, str) or not any(p.startswith(f"{recipe}-") for p in task.profiles)
    ):
        families = sorted({p.rpartition("-")[0] for p in task.profiles if "-" in p})
        raise UsageError(
            f"{where}: task {task.name} has no recipe {recipe!r} (it has: {', '.join(families) or 'none'})"
        )
    prefix = f"{recipe}-" if recipe else ""
    for name, profile in task.profiles.items():
        if name.startswith(prefix) and (prefix or "-" not in name):
            recipes.override(profile, changes, f"{where}, recipe (profile {name})")
    return recipe, recipes.freeze(changes)


def _flag(raw: dict, key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def parse_budget(text: str | int) -> Budget:
    """``"45K"`` -> 45000; ``"50%"`` -> 0.5 (of the plain network's backbone); ``"cpm"``
    -> ``"cpm"`` (that method's natural size)."""
    if isinstance(text, str) and text.strip() in methods.METHODS:
        return text.strip()
    if isinstance(text, str) and text.strip().endswith("%"):
        try:
            fraction = float(text.strip()[:-1]) / 100
        except ValueError:
            raise UsageError(f"not a budget: {text!r} (write e.g. 2M, 45K, 50% or a method's name)") from None
        if not 0 < fraction <= 4:
            raise UsageError(f"a budget fraction must be in (0%, 400%], got {text!r}")
        return fraction
    return parse_count(text)


def load(name: str) -> Suite:
    """A suite by built-in name or path; any problem is a UsageError naming the file."""
    path = _locate(name)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"suite file {path} is malformed: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"suite file {path} cannot be read: {e}") from None
    unknown = set(raw) - _SUITE_KEYS
    if unknown:
        raise UsageError(f"suite file {path}: unknown key(s) {', '.join(sorted(unknown))}")
    experiments = raw.get("experiment", [])
    if not isinstance(experiments, list) or not experiments:
        raise UsageError(f"suite file {path}: no [[experiment]] tables")
    parsed = tuple(_experiment(e, f"suite file {path}, experiment {i + 1}") for i, e in enumerate(experiments))
    names = [e.name for e in parsed]
    if len(set(names)) != len(names):
        raise UsageError(f"suite file {path}: experiment names must be unique")
    profile = raw.get("default_profile", "full")
    threads = raw.get("threads_per_cell")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UsageError(f"suite file {path}: threads_per_cell must be a positive integer, got {threads!r}")
    suite = Suite(
        name=raw.get("name", path.stem),
        description=raw.get("description", ""),
        default_profile=profile,
        experiments=parsed,
        path=str(path),
        threads_per_cell=threads,
    )
    try:
        suite.check_profile(profile)
    except UsageError as e:
        raise UsageError(f"suite file {path}: default_profile: {e}") from None
    return suite

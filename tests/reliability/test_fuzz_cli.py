"""The command line, fuzzed (hypothesis): random commands, flags and values — numbers,
budgets, paths, unicode, empty strings — must end in exit 0, 1 or 2, never a traceback.
Nothing trains: the runner, the speed benchmark and the doctor are replaced by stand-ins that accept
the cells they are given, so each example stops once its arguments are checked."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from suite import cli
from suite.cli import commands, doctor
from suite.measure import speed
from suite.run import launch, plan, runner

WORDS = st.sampled_from(
    ["digits", "fashion", "cifar", "imagenet", "pose", "multitask", "pruning", "smoke", "full", "cpu", "rpg", "plain",
     "cpm", "lego", "resnet18-cifar", "hourglass-2x", "table2", "sharing", "1/2", "3/2", "0/0", "2M", "45K", "50%",
     "-1", "0", "1e309", "nan", "epochs=0", "lr=-1", "epochs=2", "=", "", " ", "é", "\u202e", "☃" * 3, "..", "/",
     "/proc/x", "/dev/null", "a" * 300, "--", "-", "suite/suites/digits.toml", "t2.*", "fig5.*,t2.*", "*", "nope*",
     ",", "local", "slurm", "1-00:00:00", "90", "account=a", "=x"]
)  # fmt: skip
FLAGS = st.sampled_from(
    ["--suite", "--claims", "--profile", "--out", "--data-root", "--device", "--seeds", "--methods", "--experiments",
     "--set", "--shard", "--jobs", "--compile", "--no-onnx", "--no-progress", "--open", "--no-open", "--compare",
     "--partial", "--arch", "--method", "--budget", "--width", "--classes", "--in-channels", "--tflops", "--calibrate",
     "--batch", "--ring-size", "--steps", "--warmup", "--help", "--version", "-h", "--launcher", "--shards",
     "--slurm-partition", "--slurm-gpus-per-node", "--slurm-time", "--slurm-cpus-per-task", "--slurm-option", "--wait"]
)  # fmt: skip
COMMAND = st.sampled_from([*cli.COMMANDS, "reprot", "", "-x", None])
TEXT = st.text(max_size=12)


@st.composite
def argvs(draw):
    argv = [] if (command := draw(COMMAND)) is None else [command]
    for _ in range(draw(st.integers(0, 6))):
        argv.append(draw(FLAGS))
        if draw(st.booleans()):
            argv.append(draw(st.one_of(WORDS, TEXT, st.integers(-3, 10**12).map(str))))
    return argv


@pytest.fixture
def nothing_trains(monkeypatch, tmp_path):
    # every command whose real work takes long is replaced below; a new one must be too
    assert set(cli.COMMANDS) == {
        *("run", "list", "claims", "report", "merge", "agree", "ladder", "history", "ledger", "plan", "speed"),
        "doctor",
    }
    monkeypatch.setattr(runner, "run", lambda cells, out, *a, **k: [])
    monkeypatch.setattr(commands.report, "render", lambda out, compare=None: (out / "index.html", [], []))
    monkeypatch.setattr(speed, "main", lambda args: 0)
    monkeypatch.setattr(doctor, "main", lambda args: 0)  # the real one trains for minutes
    monkeypatch.setattr(plan, "forward_flops", lambda cell: 1)  # builds paper-sized networks
    # submits jobs (and local ones train): the stand-in builds each task's command line only
    monkeypatch.setattr(launch, "submit", lambda args, cells, out: len(launch.task_argv(args, 1, 2, out)) and 0)
    monkeypatch.setenv("RPG_BENCH_REPORTS", str(tmp_path / "reports"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argvs())
@example(argv=["--out", "/proc/forbidden"])
@example(argv=["report", "/proc/forbidden"])
@example(argv=["ledger", "--arch", "resnet18-cifar", "--method", "rpg", "--budget", "nan"])
@example(argv=["ledger", "--arch", "resnet18-cifar", "--method", "rpg", "--budget", "1e309"])
@example(argv=["ledger", "--arch", "resnet18-cifar", "--method", "rpg", "--budget", "1", "--width", "988607"])
@example(argv=["plan", "--suite", "digits", "--set", "epochs=2", "--tflops", "nan"])
@example(argv=["run", "--set", "lr=é"])
@example(argv=["plan", "--suite", "digits", "--seeds", "9999999"])  # once expanded into millions of cells
@example(argv=["--jobs", "0"])
@example(argv=["merge", "", "--out", ""])
@example(argv=["claims", "--suite", "pose"])
@example(argv=["plan", "--claims", ","])
@example(argv=["--launcher", "local", "--slurm-time", "=x"])
@example(argv=["run", "--methods", "\n"])  # found by this test: a newline the user typed, echoed
def test_no_command_line_ends_in_a_traceback(nothing_trains, capsys, argv):
    try:
        code = cli.main(argv)
    except SystemExit as e:  # --help and --version exit through argparse, with 0
        code = e.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("rpg-bench: error: "), (argv, err)


NUMBER = st.one_of(
    st.integers(-5, 10**7).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str), st.sampled_from(["", "x"])
)
BUDGET = st.one_of(NUMBER, st.sampled_from(["2M", "45K", "50%", "0%", "500%", "cpm", "rpg", "1.5M", "3e6", "-2K"]))
PATH = st.sampled_from(["/proc/forbidden", "/dev/null", "", ".", "nowhere/deep", "a" * 300, "é/☃", "suite"])
SUITE = st.sampled_from(["digits", "fashion", "cifar", "imagenet", "pose", "multitask", "pruning", "nope", ""])
SET = st.builds(
    lambda f, v: f"{f}={v}",
    st.sampled_from(["epochs", "lr", "batch_size", "schedule", "milestones", "width_scale", "nope", ""]),
    st.one_of(NUMBER, st.sampled_from(["step", "[1, 2]", "[", '"x"', "true", "{}"])),
)
OPTIONS = {
    "run": {"--suite": SUITE, "--profile": st.sampled_from(["full", "cpu", "smoke", "x"]), "--seeds": NUMBER,
            "--methods": st.sampled_from(["rpg", "plain,rpg", "x", ",", ""]), "--experiments": TEXT, "--set": SET,
            "--shard": st.sampled_from(["1/2", "2/1", "0/0", "1/", "x"]), "--jobs": NUMBER, "--out": PATH,
            "--device": st.sampled_from(["cpu", "cuda", "tpu"])},
    "plan": {"--suite": SUITE, "--profile": st.sampled_from(["full", "smoke", "x"]), "--tflops": NUMBER,
             "--calibrate": PATH, "--set": SET, "--seeds": NUMBER},
    "ledger": {"--arch": st.sampled_from(["resnet18-cifar", "hourglass-2x", "sharpnet", "mdeq-tiny", "x"]),
               "--method": st.sampled_from(["rpg", "plain", "cpm", "lego", "knapsack", "x"]), "--budget": BUDGET,
               "--width": NUMBER, "--classes": NUMBER, "--in-channels": NUMBER},
    "report": {"--compare": PATH},
    "merge": {"--out": PATH},
}  # fmt: skip


@st.composite
def commands_(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [command]
    if command in ("report", "merge"):
        argv.append(draw(PATH))
    for flag, values in OPTIONS[command].items():
        if draw(st.booleans()):
            argv += [flag, draw(values)]
    return argv


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=commands_())
def test_well_formed_commands_with_odd_values_end_in_a_clear_line(nothing_trains, capsys, argv):
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("rpg-bench: error: "), (argv, err)

"""docker/nightly.sh, the nightly workflow's steps, run outside the image.

RPG_BENCH_RUNNER=local runs the very commands the image runs with the rpg-bench on PATH:
two real shards of a two-cell digits suite, merged, compared with a previous night. The
docker mode's command lines are checked against a stand-in `docker` that records them.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from suite import runner, spec

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="docker/nightly.sh needs bash")

SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "nightly.sh"
# Two seeds: with one, no row can be told from noise, and a nightly could never see a regression.
ARGS = "--profile smoke --seeds 2 --no-onnx --methods rpg"
# The digits suite cut to two budgets: one cell per shard keeps the real runs near a minute.
SUITE = """\
name = "digits"
description = "the digits suite at two budgets, for tests/test_nightly.py"
default_profile = "smoke"

[[experiment]]
name = "digits-resnet18"
description = "ResNet-18 (CIFAR stem) at quarter width, RPG and plain"
task = "digits"
arch = "resnet18-cifar"
width = 0.25
methods = ["rpg", "plain"]
budgets = ["5K", "20K"]
seeds = 3
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any RPG_BENCH_* setting of the caller's."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("RPG_BENCH_")}, **extra}


def nightly(*args) -> subprocess.CompletedProcess:
    """docker/nightly.sh in local mode, with this interpreter's rpg-bench and python3 first on PATH."""
    env = clean_env(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        RPG_BENCH_RUNNER="local",
        RPG_BENCH_ARGS=ARGS,
    )
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def keys(folder: Path) -> list[str]:
    return json.loads((folder / "run.json").read_text())["keys"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly")
    suite = root / "digits-two.toml"
    suite.write_text(SUITE)
    folders = []
    for k in (1, 2):
        out = root / f"shard-{k}-of-2"
        result = nightly("shard", suite, k, 2, out)
        assert result.returncode == 0, result.stderr
        folders.append(out)
    expected = [c.key() for c in runner.expand(spec.load(str(suite)), "smoke", seeds=2, only=["rpg"])]
    return folders, expected


@pytest.fixture(scope="module")
def merged(shards, tmp_path_factory):
    folders, _ = shards
    root = tmp_path_factory.mktemp("merged")
    out = root / "merged"
    result = nightly("merge", out, "--compare", root / "no-previous-night", *folders)
    return out, result


def test_shards_merge_into_every_cell_of_the_unsharded_run(shards, merged):
    folders, expected = shards
    out, result = merged
    assert len(expected) == 4
    first, second = (set(keys(f)) for f in folders)
    assert first and second and not first & second
    assert result.returncode == 0, result.stderr
    assert "not comparing" in result.stdout and "4 of 4 cells ok" in result.stdout
    assert sorted(keys(out)) == sorted(expected)
    for key in expected:
        assert json.loads((out / "records" / f"{key}.json").read_text())["status"] == "ok"
    assert (out / "index.html").is_file() and (out / "claims.json").is_file()


def test_a_regression_since_the_previous_night_fails_the_merge_after_rendering(shards, merged, tmp_path):
    folders, _ = shards
    prev = tmp_path / "prev"
    shutil.copytree(merged[0], prev)
    # The previous night was 50 points better on every cell: tonight regressed beyond noise.
    for path in (prev / "records").glob("*.json"):
        record = json.loads(path.read_text())
        record["metrics"]["top1"] += 50
        path.write_text(json.dumps(record))
    out = tmp_path / "tonight"
    result = nightly("merge", out, "--compare", prev, *folders)
    assert result.returncode == 1, result.stderr
    assert "regression: digits-resnet18 rpg@" in result.stderr and "regressions against" in result.stderr
    assert str(prev) in (out / "index.html").read_text()


def test_a_claim_only_less_certain_than_last_night_does_not_fail_the_night(shards, merged, tmp_path):
    folders, _ = shards
    prev = tmp_path / "prev"
    shutil.copytree(merged[0], prev)
    # The previous night "reproduced" every claim; tonight's cells leave them inconclusive at
    # most: a noisier night, listed in the report, not a lost claim.
    claims = json.loads((prev / "claims.json").read_text())
    for claim in claims["claims"]:
        claim["verdict"] = "reproduced"
    (prev / "claims.json").write_text(json.dumps(claims))
    out = tmp_path / "tonight"
    result = nightly("merge", out, "--compare", prev, *folders)
    assert result.returncode == 0, result.stderr
    assert "no regression against" in result.stdout
    assert "inconclusive here (not a failure)" in (out / "index.html").read_text()


def test_a_missing_shard_fails_the_merge(shards, tmp_path):
    folders, _ = shards
    out = tmp_path / "merged"
    result = nightly("merge", out, folders[0])
    assert result.returncode == 1
    assert "missing shards: 2/2" in result.stderr
    assert (out / "index.html").is_file()


def test_a_failed_cell_fails_the_merge(shards, tmp_path):
    folders, _ = shards
    broken = tmp_path / "shard-2-of-2"
    shutil.copytree(folders[1], broken)
    record = sorted((broken / "records").glob("*.json"))[0]
    data = json.loads(record.read_text())
    data.update(status="failed", error="RuntimeError: CUDA error: an illegal memory access")
    record.write_text(json.dumps(data))
    out = tmp_path / "merged"
    result = nightly("merge", out, folders[0], broken)
    assert result.returncode == 1
    assert "illegal memory access" in result.stderr and "3 of 4 cells ok" in result.stdout
    assert (out / "index.html").is_file()


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("frob",),
        ("shard", "digits", "3", "2", "out"),
        ("shard", "digits", "1", "two", "out"),
        ("shard", "digits", "1", "2"),
        ("merge", "out"),
        ("merge", "out", "--compare"),
        ("merge", "out", "no-such-shard-folder"),
        ("build", "extra"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, tmp_path):
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=60
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("nightly.sh: error:")
    assert not list(tmp_path.iterdir())


@pytest.fixture
def fake_docker(tmp_path):
    """A `docker` that logs its calls; `run` exits with FAKE_DOCKER_RC."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "docker.log"
    docker = bin_ / "docker"
    docker.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'cwd': os.getcwd(), 'argv': sys.argv[1:]}) + '\\n')\n"
        "if sys.argv[1:3] == ['image', 'inspect']:\n"
        "    if os.environ.get('FAKE_DOCKER_NO_IMAGE'):\n"
        "        sys.exit('Error: No such image')\n"
        "    print('sha256:feedface')\n"
        "sys.exit(int(os.environ.get('FAKE_DOCKER_RC', '0')) if sys.argv[1] == 'run' else 0)\n"
    )
    docker.chmod(0o755)

    def call(*args, rc=0, **env):
        result = subprocess.run(
            ["bash", str(SCRIPT), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}", FAKE_DOCKER_RC=str(rc), **env),
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return result, calls

    return call


def test_docker_build_runs_from_the_repository_root(fake_docker):
    result, calls = fake_docker("build")
    assert result.returncode == 0, result.stderr
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=SCRIPT.parents[1], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert calls == [
        {
            "cwd": str(SCRIPT.parents[1]),
            "argv": ["build", "--build-arg", f"GIT_COMMIT={commit}", "-t", "rpg-bench:nightly", "."],
        }
    ]


def test_docker_shard_mounts_data_and_reports_and_tolerates_failed_cells(fake_docker, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "work" / "cifar-3-of-8"
    result, calls = fake_docker(
        "shard", "cifar", 3, 8, out, rc=1, RPG_BENCH_DATA=str(data), RPG_BENCH_ARGS="--seeds 1  --no-onnx"
    )
    assert result.returncode == 0, result.stderr
    assert "some cells failed" in result.stdout
    assert (tmp_path / "work").is_dir()  # created by the script, not by docker as root
    inspect, run = calls
    assert inspect["argv"] == ["image", "inspect", "--format", "{{.Id}}", "rpg-bench:nightly"]
    argv = run["argv"]
    image = argv.index("rpg-bench:nightly")
    options, command = argv[:image], argv[image + 1 :]
    assert options[:2] == ["run", "--rm"]
    pairs = {(a, b) for a, b in zip(options, options[1:], strict=False)}
    assert ("--gpus", "all") in pairs
    assert ("--user", f"{os.getuid()}:{os.getgid()}") in pairs
    assert ("-e", "RPG_BENCH_IMAGE_DIGEST=sha256:feedface") in pairs
    assert ("-v", f"{data}:/data:ro") in pairs
    assert ("-v", f"{tmp_path / 'work'}:/reports") in pairs
    assert command == [
        "--suite", "cifar", "--shard", "3/8", "--no-open", "--no-progress",
        "--out", "/reports/cifar-3-of-8", "--seeds", "1", "--no-onnx",
    ]  # fmt: skip


def test_docker_shard_fails_on_anything_but_failed_cells(fake_docker, tmp_path):
    result, _ = fake_docker("shard", "cifar", 1, 8, tmp_path / "out", rc=125)
    assert result.returncode == 125


def test_docker_shard_without_the_image_fails(fake_docker, tmp_path):
    result, calls = fake_docker("shard", "cifar", 1, 8, tmp_path / "out", rc=1, FAKE_DOCKER_NO_IMAGE="1")
    assert result.returncode != 0 and "No such image" in result.stderr
    assert [c["argv"][0] for c in calls] == ["image"]


def test_docker_merge_runs_this_script_inside_the_image(fake_docker, tmp_path):
    prev = tmp_path / "prev" / "cifar"
    (prev / "records").mkdir(parents=True)
    shard_dirs = [tmp_path / "shards" / f"shard-cifar-{k}-of-2" for k in (1, 2)]
    for s in shard_dirs:
        s.mkdir(parents=True)
    result, calls = fake_docker("merge", tmp_path / "report" / "cifar", "--compare", prev, *shard_dirs)
    assert result.returncode == 0, result.stderr
    argv = calls[-1]["argv"]
    image = argv.index("rpg-bench:nightly")
    options, command = argv[:image], argv[image + 1 :]
    pairs = {(a, b) for a, b in zip(options, options[1:], strict=False)}
    assert "--gpus" not in options
    assert ("--entrypoint", "bash") in pairs and ("-e", "RPG_BENCH_RUNNER=local") in pairs
    assert ("-v", f"{SCRIPT}:/opt/nightly.sh:ro") in pairs
    assert ("-v", f"{tmp_path / 'report'}:/reports") in pairs
    assert ("-v", f"{prev}:/prev/cifar:ro") in pairs
    assert ("-v", f"{shard_dirs[1]}:/shards/2/shard-cifar-2-of-2:ro") in pairs
    assert command == [
        "/opt/nightly.sh", "merge", "/reports/cifar", "--compare", "/prev/cifar",
        "/shards/1/shard-cifar-1-of-2", "/shards/2/shard-cifar-2-of-2",
    ]  # fmt: skip

"""docker/nightly.sh, the nightly workflow's steps (the workflow runs nothing else), run
outside the image.

RPG_BENCH_RUNNER=local runs the very commands the image runs with the rpg-bench on PATH:
two real shards of a two-cell digits suite, merged, compared with a previous night; a
one-shard night laid out as actions/download-artifact leaves a single match, merged and
published. The docker mode's command lines, and the gh calls that find baselines, accept
one and keep the failing-night issue, are checked against stand-ins that record them.
"""

import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from paper_oracle import synthesize, write

from suite import claims
from suite.run import runner
from suite.suites import spec

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="docker/nightly.sh needs bash")

SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "nightly.sh"
COMPARE_SCHEMA = jsonschema.Draft202012Validator(
    json.loads(resources.files("suite").joinpath("schemas/compare.json").read_text())
)
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
    """The test's environment without any RPG_BENCH_* setting of the caller's, nor the
    GITHUB_* files of a CI job the tests may run in."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("RPG_BENCH_", "GITHUB_", "GH_"))}
    return kept | extra


def nightly(*args, **env: str) -> subprocess.CompletedProcess:
    """docker/nightly.sh in local mode, with this interpreter's rpg-bench and python3 first on PATH."""
    env = clean_env(
        **{
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "RPG_BENCH_RUNNER": "local",
            "RPG_BENCH_ARGS": ARGS,
        }
        | env
    )
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def actions(tmp_path: Path) -> dict[str, str]:
    """The files and flag GitHub Actions gives a step."""
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
    }


def comparison(out: Path) -> dict:
    data = json.loads((out / "compare.json").read_text())
    COMPARE_SCHEMA.validate(data)
    return data


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
    """The first night: no baseline yet, none due."""
    folders, _ = shards
    root = tmp_path_factory.mktemp("merged")
    out = root / "merged"
    result = nightly("merge", out, "--compare", root / "no-previous-night", "--if-missing", "", *folders)
    return out, result


@pytest.mark.slow
def test_shards_merge_into_every_cell_of_the_unsharded_run(shards, merged):
    folders, expected = shards
    out, result = merged
    assert len(expected) == 4
    first, second = (set(keys(f)) for f in folders)
    assert first and second and not first & second
    assert result.returncode == 0, result.stderr
    assert "none was due (a first night" in result.stdout and "4 of 4 cells ok" in result.stdout
    assert sorted(keys(out)) == sorted(expected)
    for key in expected:
        assert json.loads((out / "records" / f"{key}.json").read_text())["status"] == "ok"
    assert (out / "index.html").is_file() and (out / "claims.json").is_file()
    assert not (out / "compare.json").exists()  # nothing was compared
    assert "4 of 4 cells ok" in Path(f"{out}.summary.md").read_text()


def worse_by(source: Path, dest: Path, points: float) -> Path:
    """A copy of ``source`` whose every cell was ``points`` better: a night ``points`` ahead."""
    shutil.copytree(source, dest)
    for path in (dest / "records").glob("*.json"):
        record = json.loads(path.read_text())
        record["metrics"]["top1"] += points
        path.write_text(json.dumps(record))
    return dest


@pytest.mark.slow
def test_a_regression_fails_the_night_in_the_summary_an_annotation_and_no_baseline(shards, merged, tmp_path):
    folders, _ = shards
    prev = worse_by(merged[0], tmp_path / "prev", 50)  # the previous night was 50 points better
    out = tmp_path / "tonight"
    github = actions(tmp_path)
    result = nightly("merge", out, "--compare", prev, *folders, RPG_BENCH_RUN_ID="77", **github)
    assert result.returncode == 1, result.stderr
    assert "regression: digits-resnet18 rpg@" in result.stderr and "is not clean" in result.stderr
    data = comparison(out)
    assert data["outcome"] == "regressed" and len(data["regressions"]) == 2
    assert str(prev) in (out / "index.html").read_text()
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error title=digits: regression::")]
    assert len(errors) == 2 and "rpg@" in errors[0]
    summary = Path(github["GITHUB_STEP_SUMMARY"]).read_text()
    assert data["summary"] in summary and "4 of 4 cells ok" in summary
    assert Path(github["GITHUB_OUTPUT"]).read_text() == "baseline=no\n"
    assert json.loads((out / "run.json").read_text())["run_id"] == "77"


@pytest.mark.slow
def test_a_night_compared_names_its_baseline_run_and_becomes_the_next(shards, merged, tmp_path):
    folders, _ = shards
    prev = tmp_path / "prev"
    shutil.copytree(merged[0], prev)
    run = json.loads((prev / "run.json").read_text())
    (prev / "run.json").write_text(json.dumps(run | {"run_id": "41", "run_url": "https://ci.example/runs/41"}))
    # The previous night "reproduced" every claim; tonight's cells leave them inconclusive at
    # most: a noisier night, listed in the report, not a lost claim.
    claims = json.loads((prev / "claims.json").read_text())
    for claim in claims["claims"]:
        claim["verdict"] = "reproduced"
    (prev / "claims.json").write_text(json.dumps(claims))
    out = tmp_path / "tonight"
    github = actions(tmp_path)
    result = nightly("merge", out, "--compare", prev, "--if-missing", "unused", *folders, **github)
    assert result.returncode == 0, result.stderr
    data = comparison(out)
    assert data["outcome"] == "clean" and data["rows_compared"] == 2
    assert data["baseline"]["id"] == "41" and data["baseline"]["url"] == "https://ci.example/runs/41"
    assert data["baseline"]["date"] == run["started"] and data["baseline"]["commits"]
    assert "compare against run 41 (started" in result.stdout
    html = (out / "index.html").read_text()
    assert "inconclusive here (not a failure)" in html and 'href="https://ci.example/runs/41"' in html
    assert Path(github["GITHUB_OUTPUT"]).read_text() == "baseline=yes\n"
    assert "::" not in result.stdout  # no annotation on a clean night


@pytest.mark.slow
def test_a_missing_shard_fails_the_night_and_is_never_no_regression(shards, merged, tmp_path):
    folders, _ = shards
    out = tmp_path / "merged"
    result = nightly("merge", out, "--compare", merged[0], folders[0], **actions(tmp_path))
    assert result.returncode == 1
    assert "missing shards: 2/2" in result.stderr and "2 of 4 cells ok" in result.stdout
    data = comparison(out)
    assert data["outcome"] == "incomplete"
    kinds = {s["kind"] for s in data["skips"]}
    assert kinds >= {"shard", "cells"} and kinds & {"seeds", "row"}  # each row short of seeds, or gone
    said = result.stdout + result.stderr + (tmp_path / "step-summary.md").read_text()
    assert "no regression" not in said.lower() and "shards 2/2 were not merged" in said
    assert "::warning title=digits: not compared::" in result.stdout
    assert (out / "index.html").is_file()


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_baseline_due_and_missing_fails_the_night_loudly_and_still_becomes_the_next(shards, tmp_path):
    folders, _ = shards
    out = tmp_path / "tonight"
    github = actions(tmp_path)
    why = "the last baseline, baseline-smoke-digits of run 12 (2031-01-01), expired on 2031-04-01"
    result = nightly("merge", out, "--compare", tmp_path / "prev", "--if-missing", why, *folders, **github)
    assert result.returncode == 3, result.stderr
    data = comparison(out)
    assert data["outcome"] == "not compared" and data["skips"][0]["line"] == f"not compared: {why}"
    assert "4 of 4 cells ok" in result.stdout and "not made in full" in result.stderr
    assert why in Path(github["GITHUB_STEP_SUMMARY"]).read_text()
    assert f"::warning title=digits: not compared::not compared: {why}" in result.stdout
    # Every cell ran and nothing regressed: it may be tomorrow's baseline.
    assert Path(github["GITHUB_OUTPUT"]).read_text() == "baseline=yes\n"


@pytest.mark.slow
def test_a_profile_mismatch_is_a_loud_skip_and_the_cells_are_still_checked(shards, merged, tmp_path):
    folders, _ = shards
    prev = tmp_path / "prev"
    shutil.copytree(merged[0], prev)
    run = json.loads((prev / "run.json").read_text())
    (prev / "run.json").write_text(json.dumps(run | {"profile": "full"}))
    out = tmp_path / "tonight"
    result = nightly("merge", out, "--compare", prev, *folders)
    assert result.returncode == 3, result.stderr
    assert "it ran profile full, this run smoke" in result.stderr and "4 of 4 cells ok" in result.stdout
    data = comparison(out)
    assert data["outcome"] == "not compared" and "refused: --compare" in data["skips"][0]["line"]


def one_shard_night(shards, root: Path) -> Path:
    """What `--shard 1/1` of the two-cell suite leaves, as download-artifact extracts a single
    matched artifact: the shard's files straight in the download path, no folder of its own."""
    folders, expected = shards
    download = root / "nightly" / "shards"
    (download / "records").mkdir(parents=True)
    for folder in folders:
        for record in (folder / "records").glob("*.json"):
            shutil.copy(record, download / "records" / record.name)
    run = json.loads((folders[0] / "run.json").read_text())
    run |= {"shard": "1/1", "keys": expected, "cells": len(expected), "run_keys": expected}
    (download / "run.json").write_text(json.dumps(run))
    return download


@pytest.mark.slow
def test_a_one_shard_suite_merges_and_publishes_from_download_artifacts_single_layout(shards, merged, tmp_path):
    download = one_shard_night(shards, tmp_path)
    out = tmp_path / "nightly" / "report" / "digits"
    result = nightly("merge", out, "--compare", merged[0], "--if-missing", "unused", download)
    assert result.returncode == 0, result.stderr
    assert "4 of 4 cells ok" in result.stdout and comparison(out)["outcome"] == "clean"
    # Pages: one report artifact matched by report-* is extracted straight into reports/.
    reports = tmp_path / "reports"
    shutil.copytree(out, reports)
    site = tmp_path / "site"
    result = nightly("site", reports, site, RUN_URL="https://ci.example/runs/9")
    assert result.returncode == 0, result.stderr
    assert (site / "digits" / "index.html").is_file() and (site / "digits" / "compare.json").is_file()
    index = (site / "index.html").read_text()
    assert 'href="digits/index.html"' in index and "compare against" in index and "runs/9" in index


@pytest.mark.slow
def test_several_artifacts_each_in_a_folder_and_one_without_a_run(shards, tmp_path):
    folders, _ = shards
    download = tmp_path / "nightly" / "shards"
    for k, folder in enumerate(folders, start=1):
        shutil.copytree(folder, download / f"shard-digits-{k}-of-2")
    (download / "shard-digits-3-of-3" / "logs").mkdir(parents=True)  # a job that died before run.json
    out = tmp_path / "merged"
    result = nightly("merge", out, download)
    assert "shard-digits-3-of-3 holds no shard run (no run.json): left out" in result.stderr
    assert "4 of 4 cells ok" in result.stdout and result.returncode == 0
    assert "a shard's folder held no run" in Path(f"{out}.summary.md").read_text()


def test_no_shard_run_anywhere_fails_with_one_line(tmp_path):
    (tmp_path / "shards" / "shard-a").mkdir(parents=True)
    result = nightly("merge", tmp_path / "out", tmp_path / "shards")
    assert result.returncode == 1 and "nothing to merge" in result.stderr


def test_the_plan_gives_the_shard_matrix_and_says_when_a_run_is_no_baseline():
    result = nightly("plan", "nightly", "", "")
    assert result.returncode == 0, result.stderr
    out = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert json.loads(out["suites"]) == ["cifar", "pruning", "pose", "multitask"]
    matrix = json.loads(out["shards"])["include"]
    assert len(matrix) == 8 and {"suite": "pose", "shard": 1, "of": 1} in matrix
    assert out["args"] == "--profile nightly" and out["comparable"] == "true" and out["profile"] == "nightly"
    out = dict(line.split("=", 1) for line in nightly("plan", "full", "cifar:2", "--seeds 1").stdout.splitlines())
    assert out["comparable"] == "false" and out["args"] == "--profile full --seeds 1"
    for bad in (("nightly", "cifar:0", ""), ("weekly", "", ""), ("nightly", "cifar:1 cifar:2", "")):
        result = nightly("plan", *bad)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1


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
        ("merge", "out", "--if-missing", "why", "."),
        ("build", "extra"),
        ("plan", "nightly"),
        ("baselines", "nightly", ""),
        ("site", "reports"),
        ("accept", "latest", "cifar", "nightly", "dest"),
        ("notify", "maybe", "url"),
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

    def call(*args, rc=0, **env):  # env: more variables for the script
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
    github = actions(tmp_path)
    result, calls = fake_docker(
        "merge", tmp_path / "report" / "cifar", "--compare", prev, "--if-missing", "it expired", *shard_dirs, **github
    )
    assert result.returncode == 0, result.stderr
    assert Path(github["GITHUB_OUTPUT"]).read_text() == "baseline=yes\n"  # from the container's exit code
    argv = calls[-1]["argv"]
    image = argv.index("rpg-bench:nightly")
    options, command = argv[:image], argv[image + 1 :]
    pairs = {(a, b) for a, b in zip(options, options[1:], strict=False)}
    assert "--gpus" not in options
    assert ("--entrypoint", "bash") in pairs and ("-e", "RPG_BENCH_RUNNER=local") in pairs
    assert {("-e", "RPG_BENCH_RUN_ID"), ("-e", "GITHUB_ACTIONS")} <= pairs  # passed on from the job
    assert ("-v", f"{SCRIPT.parent}:/opt/nightly:ro") in pairs
    assert ("-v", f"{tmp_path / 'report'}:/reports") in pairs
    assert ("-v", f"{prev}:/prev/cifar:ro") in pairs
    assert ("-v", f"{shard_dirs[1]}:/shards/2/shard-cifar-2-of-2:ro") in pairs
    assert command == [
        "/opt/nightly/nightly.sh", "merge", "/reports/cifar", "--compare", "/prev/cifar", "--if-missing", "it expired",
        "/shards/1/shard-cifar-1-of-2", "/shards/2/shard-cifar-2-of-2",
    ]  # fmt: skip


def test_docker_merge_passes_a_failed_nights_code_and_no_baseline(fake_docker, tmp_path):
    shard = tmp_path / "shards"
    shard.mkdir()
    github = actions(tmp_path)
    result, calls = fake_docker("merge", tmp_path / "report" / "cifar", shard, rc=1, **github)
    assert result.returncode == 1
    assert "--compare" not in calls[-1]["argv"]
    assert Path(github["GITHUB_OUTPUT"]).read_text() == "baseline=no\n"


@pytest.fixture
def fake_gh(tmp_path):
    """A `gh` that logs its calls and answers from ``answers``: the first entry whose argv
    prefix matches gives stdout (through the real jq where the call has --jq, as gh does),
    an exit code, and for `run download` a folder to copy into --dir."""
    if shutil.which("jq") is None:
        pytest.skip("the stand-in gh applies --jq with jq, which is not installed")
    bin_ = tmp_path / "gh-bin"
    bin_.mkdir()
    log, answers = tmp_path / "gh.log", tmp_path / "gh-answers.json"
    gh = bin_ / "gh"
    gh.write_text(
        f"#!{sys.executable}\n"
        "import json, shutil, subprocess, sys\n"
        "argv = sys.argv[1:]\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(argv) + '\\n')\n"
        f"for prefix, out, rc, copy in json.load(open({str(answers)!r})):\n"
        "    if argv[: len(prefix)] == prefix:\n"
        "        if copy:\n"
        "            shutil.copytree(copy, argv[argv.index('--dir') + 1], dirs_exist_ok=True)\n"
        "        if '--jq' in argv:\n"
        "            out = subprocess.run(['jq', '-r', argv[argv.index('--jq') + 1]], input=out, text=True,\n"
        "                                 capture_output=True, check=True).stdout\n"
        "        sys.stdout.write(out)\n"
        "        sys.exit(rc)\n"
        "sys.exit('gh: no answer for ' + ' '.join(argv))\n"
    )
    gh.chmod(0o755)

    def call(*args, answer=(), **env):
        answers.write_text(json.dumps([list(a) for a in answer]))
        result = nightly(*args, PATH=f"{bin_}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                         GH_REPO="owner/rpg-bench", **env)  # fmt: skip
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return result, calls

    return call


def artifacts(*entries) -> str:
    """gh api's answer listing artifacts: (run id, created, expired) each."""
    return json.dumps(
        {
            "artifacts": [
                {"workflow_run": {"id": run}, "created_at": created, "expired": expired, "expires_at": "2031-04-01"}
                for run, created, expired in entries
            ]
        }
    )


def test_baselines_find_the_newest_unexpired_and_say_why_where_there_is_none(fake_gh):
    api = ["api", "repos/owner/rpg-bench/actions/artifacts?name=baseline-nightly-{}&per_page=100"]
    answer = [
        ([api[0], api[1].format("cifar")], artifacts((30, "2031-01-03", False), (20, "2031-01-05", False)), 0, None),
        ([api[0], api[1].format("pose")], artifacts((11, "2030-09-01", True)), 0, None),
        ([api[0], api[1].format("pruning")], artifacts(), 0, None),
        ([api[0], api[1].format("multitask")], "", 1, None),
    ]
    result, calls = fake_gh("baselines", "nightly", "", "cifar", "pose", "pruning", "multitask", answer=answer)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    found = json.loads(line.removeprefix("baselines="))
    assert found["cifar"]["run_id"] == "20" and "could not be downloaded" in found["cifar"]["if_missing"]
    assert found["pose"]["run_id"] == "" and "expired on 2031-04-01" in found["pose"]["if_missing"]
    assert found["pruning"] == {"run_id": "", "if_missing": "", "note": found["pruning"]["note"]}  # a first night
    assert found["multitask"]["run_id"] == "" and "could not be listed" in found["multitask"]["if_missing"]
    assert len(calls) == 4
    # A run with extra arguments compares nothing and asks nothing.
    result, calls = fake_gh("baselines", "nightly", "--seeds 1", "cifar")
    entry = json.loads(result.stdout.removeprefix("baselines="))["cifar"]
    assert entry["run_id"] == "" and entry["if_missing"] == "" and not calls


@pytest.mark.slow
def test_accepting_a_run_downloads_its_report_and_checks_its_profile(fake_gh, merged, tmp_path):
    report = merged[0]  # a digits report at profile smoke
    download = ["run", "download", "123", "--name", "report-digits"]
    result, calls = fake_gh(
        "accept", "123", "digits", "smoke", tmp_path / "accepted", answer=[(download, "", 0, str(report))]
    )
    assert result.returncode == 0, result.stderr
    assert "run 123's report of digits (smoke, 4 of 4 cells ok) is the new baseline" in result.stdout
    assert calls == [download + ["--dir", str(tmp_path / "accepted")]]
    result, _ = fake_gh(
        "accept", "123", "digits", "nightly", tmp_path / "other", answer=[(download, "", 0, str(report))]
    )
    assert result.returncode == 1 and "at profile smoke, not digits at nightly: not accepted" in result.stderr
    result, _ = fake_gh("accept", "124", "digits", "smoke", tmp_path / "none", answer=[(["run"], "", 1, None)])
    assert result.returncode == 1 and "has no report-digits artifact" in result.stderr


ISSUE = "Nightly reproduction is failing"


@pytest.mark.parametrize(
    "result, open_issues, expected",
    [
        ("failed", [], ["issue", "create", "--title", ISSUE]),
        ("failed", [{"number": 3, "title": "Nightly reproduction is failing on pose"}], ["issue", "create"]),
        ("failed", [{"number": 7, "title": ISSUE}], ["issue", "comment", "7"]),
        ("passed", [{"number": 7, "title": ISSUE}], ["issue", "close", "7"]),
        ("passed", [], None),
    ],
)
def test_a_failed_night_opens_or_updates_one_issue_which_a_passing_night_closes(fake_gh, result, open_issues, expected):
    answer = [(["issue", "list"], json.dumps(open_issues), 0, None), (["issue"], "", 0, None)]
    run, calls = fake_gh("notify", result, "https://ci.example/runs/5", answer=answer)
    assert run.returncode == 0, run.stderr
    assert calls[0][:2] == ["issue", "list"]
    if expected is None:
        assert len(calls) == 1 and "no open issue" in run.stdout
    else:
        assert len(calls) == 2 and calls[1][: len(expected)] == expected
        assert "https://ci.example/runs/5" in " ".join(calls[1])


def test_docker_readme_lists_every_data_folder_the_scheduled_suites_read():
    """The folders the readers expect (their own layout strings), for every suite the
    nightly and the weekly run by default, are in docker/README.md's data list."""
    from suite.data import cifar, fashion, mpii, s3dis

    folders = {
        "cifar10": cifar.layout("cifar10"),
        "cifar100": cifar.layout("cifar100"),
        "mpii": mpii.LAYOUT,
        "s3dis": s3dis.LAYOUT,
        "fashion": f"<data-root>/{fashion.TORCHVISION}/",
    }
    readme = (SCRIPT.parent / "README.md").read_text()
    for profile in ("nightly", "full"):
        plan = dict(line.split("=", 1) for line in nightly("plan", profile, "", "").stdout.splitlines())
        for name in json.loads(plan["suites"]):
            for experiment in spec.load(name).experiments:
                folder = folders[experiment.task].split("<data-root>/")[1].split("/")[0] + "/"
                assert f"`{folder}" in readme, f"suite {name} ({experiment.task}) reads {folder}"


@pytest.mark.slow
def test_the_weekly_full_run_agrees_with_the_weeks_last_good_night_and_warns_when_it_does_not(tmp_path):
    """nightly.sh agree: agree.json beside the full run's report, a summary line in the step
    summary, a warning annotation when a headline claim changed (Figure 5's, with
    permutation-only raised above RPG in the night), none when the two agree, and a warning
    when there was no good night; the step never fails."""
    every = claims.load()
    write(tmp_path / "full", *synthesize("cifar", every))
    write(tmp_path / "same", *synthesize("cifar", every))
    write(tmp_path / "raised", *synthesize("cifar", every, lambda c: 2.0 if c.method == "rpg-perm-only" else 0.0))
    calm = nightly("agree", tmp_path / "full", tmp_path / "same", **actions(tmp_path))
    assert calm.returncode == 0, calm.stderr
    assert json.loads((tmp_path / "full" / "agree.json").read_text())["tau"] == 1.0
    assert "::warning" not in calm.stdout and "Kendall's tau 1.000" in calm.stdout
    changed = nightly("agree", tmp_path / "full", tmp_path / "raised", **actions(tmp_path))
    assert changed.returncode == 0, changed.stderr
    warning = next(line for line in changed.stdout.splitlines() if line.startswith("::warning"))
    assert "fig5.both-best" in warning and "headline claim changed" in warning
    assert "fig5.both-best" in (tmp_path / "step-summary.md").read_text()
    nothing = nightly("agree", tmp_path / "full", tmp_path / "no-night", **actions(tmp_path))
    assert nothing.returncode == 0 and "no good night this week" in nothing.stdout and "::warning" in nothing.stdout
    assert not (tmp_path / "full" / "agree.json").exists()


def test_every_headline_claim_the_weekly_check_watches_exists():
    import importlib.util

    found = importlib.util.spec_from_file_location("nightly_steps", SCRIPT.parent / "nightly.py")
    steps = importlib.util.module_from_spec(found)
    found.loader.exec_module(steps)
    ids = {c.id for c in claims.load()}
    assert steps.HEADLINE and set(steps.HEADLINE) <= ids, set(steps.HEADLINE) - ids

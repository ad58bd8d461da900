"""docker/nightly.sh history and site's history, run as tests/test_nightly.py runs the
nightly's steps (RPG_BENCH_RUNNER=local: the rpg-bench on PATH, no container): nights kept
in a folder or on a `history` branch of a real (local, bare) origin, the site built from
the newest nights, a first night starting the branch and still publishing, and the docker
mode's command line against a stand-in docker."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from history_nights import DROP_FROM, commit, write_nights
from test_nightly import SCRIPT, clean_env, fake_docker, nightly  # noqa: F401 (fake_docker: a fixture)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the history branch needs git")


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """The seven Table 2 nights, oldest first, each as its merge leaves it (records, run.json, report)."""
    given = write_nights(tmp_path_factory.mktemp("nights"))
    return sorted(given, key=lambda f: json.loads((f / "run.json").read_text())["started"])


def downloaded(nights: list[Path], root: Path) -> Path:
    """Reports as the history job downloads them: report-SUITE folders under one path."""
    root.mkdir(parents=True)
    for night in nights:
        shutil.copytree(night, root / f"report-{json.loads((night / 'run.json').read_text())['run_id']}")
    return root


def regressions(site: Path) -> dict:
    return json.loads((site / "cifar-full" / "regressions.json").read_text())


@pytest.mark.slow
def test_nights_are_kept_and_the_site_shows_the_newest_of_them(nights, tmp_path):
    store, site = tmp_path / "store", tmp_path / "site"
    result = nightly("history", "--keep", downloaded(nights[:6], tmp_path / "first"), store, site)
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in (store / "full" / "cifar").iterdir())
    assert len(kept) == 6 and kept == sorted(kept) and kept[0].startswith("20260501T030100Z-7001")
    assert not list(store.rglob("checkpoints")) and (store / "full" / "cifar" / kept[0] / "records").is_dir()
    assert len(regressions(site)["nights"]) == 6

    # The seventh night, and only the newest five in the site: the drop is their third night.
    result = nightly(
        "history", "--keep", downloaded(nights[6:], tmp_path / "second"), store, site, RPG_BENCH_HISTORY_NIGHTS="5"
    )
    assert result.returncode == 0, result.stderr
    doc = regressions(site)
    assert [n["commit"] for n in doc["nights"]] == [commit(i) for i in range(3, 8)]
    (step,) = [c for c in doc["changes"] if c["kind"] == "row"]
    assert step["commit"] == commit(DROP_FROM) and step["number"] == DROP_FROM - 2
    assert (site / "cifar-full" / step["report"]).is_file() and (site / "cifar-full" / "regressions.xml").is_file()

    # A re-run of the seventh night's workflow run replaces its night, not adds one.
    again = tmp_path / "again"
    shutil.copytree(nights[6], again / "report-cifar")
    run = json.loads((again / "report-cifar" / "run.json").read_text())
    (again / "report-cifar" / "run.json").write_text(json.dumps(run | {"started": "2026-05-08T01:00:00+00:00"}))
    assert nightly("history", "--keep", again, store, site).returncode == 0
    names = sorted(p.name for p in (store / "full" / "cifar").iterdir())
    assert len(names) == 7 and names[-1] == "20260508T010000Z-7007"


def git(*args, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def checkout(origin: Path, dest: Path) -> Path:
    """A fresh clone of origin, as actions/checkout leaves the workspace."""
    git("clone", "--quiet", str(origin), str(dest), cwd=origin.parent)
    return dest


def on_branch(**env: str) -> dict[str, str]:
    return {"RPG_BENCH_HISTORY_BRANCH": "history"} | env


@pytest.mark.slow
def test_the_first_night_starts_the_history_branch_and_the_next_adds_to_it(nights, tmp_path):
    origin = tmp_path / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=tmp_path)
    seed = checkout(origin, tmp_path / "seed")
    (seed / "README").write_text("the project\n")
    git("add", "README", cwd=seed)
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "--quiet", "-m", "main", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=seed)

    def night(n: int, **env: str) -> subprocess.CompletedProcess:
        work = checkout(origin, tmp_path / f"work-{n}")
        keep = downloaded(nights[n - 1 : n], tmp_path / f"reports-{n}")
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        env = clean_env(PATH=path, RPG_BENCH_RUNNER="local", **on_branch(**env))
        store, site = work / "nightly" / "history", work / "nightly" / "history-site"
        return subprocess.run(
            ["bash", str(SCRIPT), "history", "--keep", str(keep), str(store), str(site)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    first = night(1, RPG_BENCH_RUN_ID="7001")
    assert first.returncode == 0, first.stderr
    assert "origin has no history branch yet: this night starts it" in first.stdout
    log = git("log", "--format=%H %P %s", "history", cwd=origin).splitlines()
    assert len(log) == 1 and log[0].split()[1] == "Keep"  # no parent: the branch starts here
    files = git("ls-tree", "-r", "--name-only", "history", cwd=origin).splitlines()
    assert "full/cifar/20260501T030100Z-7001/run.json" in files and "README" not in files
    assert (tmp_path / "work-1" / "nightly" / "history-site" / "cifar-full" / "index.html").is_file()

    second = night(2, RPG_BENCH_RUN_ID="7002")
    assert second.returncode == 0, second.stderr
    log = git("log", "--format=%H %P", "history", cwd=origin).splitlines()
    assert len(log) == 2 and log[0].split()[1] == log[1].split()[0]
    site = tmp_path / "work-2" / "nightly" / "history-site"
    assert [n["commit"] for n in regressions(site)["nights"]] == [commit(1), commit(2)]
    assert git("branch", "--list", cwd=tmp_path / "work-2") == "* main"  # no local branch left behind


@pytest.mark.slow
def test_the_pages_site_puts_the_history_beside_the_reports_and_publishes_without_one(nights, tmp_path):
    store, history = tmp_path / "store", tmp_path / "history"
    assert nightly("history", "--keep", downloaded(nights[:4], tmp_path / "kept"), store, history).returncode == 0
    reports = tmp_path / "reports"
    shutil.copytree(nights[3], reports / "report-cifar")
    site = tmp_path / "site"
    result = nightly("site", reports, site, history)
    assert result.returncode == 0, result.stderr
    index = (site / "index.html").read_text()
    assert 'href="cifar/index.html"' in index and 'href="history/cifar-full/index.html"' in index
    assert "cifar (full): 4 nights from 2026-05-01, 0 changes" in index
    assert (site / "history" / "cifar-full" / "regressions.xml").is_file()

    assert "Documentation" not in index  # none was built

    alone = tmp_path / "alone"
    result = nightly("site", reports, alone, tmp_path / "no-history-tonight")
    assert result.returncode == 0, result.stderr
    assert (alone / "cifar" / "index.html").is_file() and "No history tonight" in (alone / "index.html").read_text()


def test_the_built_documentation_is_published_under_docs_and_linked(nights, tmp_path):
    reports, built = tmp_path / "reports", tmp_path / "built"
    shutil.copytree(nights[0], reports / "report-cifar")
    (built / "cli").mkdir(parents=True)
    (built / "index.html").write_text("<h1>rpg-bench</h1>")
    (built / "cli" / "index.html").write_text("<h1>The command line</h1>")
    site = tmp_path / "site"
    assert nightly("site", reports, site, RPG_BENCH_SITE_DOCS=str(built)).returncode == 0
    assert '<a href="docs/index.html">Documentation</a>' in (site / "index.html").read_text()
    assert (site / "docs" / "cli" / "index.html").read_text() == "<h1>The command line</h1>"
    # A suite named docs keeps its place; the documentation waits for another night.
    shutil.copytree(nights[0], reports / "report-docs")
    run = json.loads((reports / "report-docs" / "run.json").read_text())
    (reports / "report-docs" / "run.json").write_text(json.dumps(run | {"suite": "docs"}))
    taken = tmp_path / "taken"
    result = nightly("site", reports, taken, RPG_BENCH_SITE_DOCS=str(built))
    assert result.returncode == 0 and "docs/ is taken" in result.stdout
    assert not (taken / "docs" / "cli").exists() and "Documentation" not in (taken / "index.html").read_text()


def test_with_nothing_kept_yet_the_history_step_builds_nothing_and_passes(tmp_path):
    result = nightly("history", "--keep", tmp_path / "no-reports", tmp_path / "store", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert "nothing kept tonight" in result.stdout and "no history to build" in result.stdout


def test_docker_history_keeps_and_builds_inside_the_image(fake_docker, tmp_path):  # noqa: F811
    keep = tmp_path / "reports"
    keep.mkdir()
    store, site = tmp_path / "store", tmp_path / "site"
    result, calls = fake_docker("history", "--keep", keep, store, site, RPG_BENCH_HISTORY_NIGHTS="30")
    assert result.returncode == 0, result.stderr
    argv = calls[-1]["argv"]
    image = argv.index("rpg-bench:nightly")
    options, command = argv[:image], argv[image + 1 :]
    pairs = {(a, b) for a, b in zip(options, options[1:], strict=False)}
    assert ("--entrypoint", "bash") in pairs and ("-e", "RPG_BENCH_RUNNER=local") in pairs
    assert ("-e", "RPG_BENCH_HISTORY_NIGHTS") in pairs and "--gpus" not in options
    assert {("-v", f"{store}:/store"), ("-v", f"{site}:/site"), ("-v", f"{keep}:/keep:ro")} <= pairs
    assert ("-v", f"{SCRIPT.parent}:/opt/nightly:ro") in pairs
    assert command == ["/opt/nightly/nightly.sh", "history", "--keep", "/keep", "/store", "/site"]


@pytest.mark.parametrize(
    "args",
    [
        ("history",),
        ("history", "store"),
        ("history", "--keep"),
        ("history", "--frob", "s", "t"),
        ("site", "a", "b", "c", "d"),
    ],
)
def test_bad_history_arguments_exit_2_with_one_line(args, tmp_path):
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=60
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("nightly.sh: error:")
    assert not list(tmp_path.iterdir())


def test_a_store_that_exists_is_refused_when_it_would_become_the_branch(tmp_path):
    (tmp_path / "store").mkdir()
    result = subprocess.run(
        ["bash", str(SCRIPT), "history", "store", "site"],
        capture_output=True, text=True, cwd=tmp_path, env=clean_env(**on_branch()), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "store exists" in result.stderr and not (tmp_path / "site").exists()

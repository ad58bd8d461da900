import pytest

from suite import cli


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real smoke run of the default suite (one seed), shared by the tests that read it."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    code = cli.main(["--profile", "smoke", "--seeds", "1", "--out", str(out), "--no-progress", "--no-open"])
    return out, code

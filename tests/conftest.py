import json
from importlib import resources

import jsonschema
import pytest

from suite import cli, records

SCHEMA = jsonschema.Draft202012Validator(json.loads((resources.files("suite") / records.SCHEMA).read_text()))


@pytest.fixture(autouse=True)
def records_follow_their_schema(monkeypatch):
    """Every record a test writes in this process is checked against suite/schemas/record.json."""
    write = records.write_record

    def checked(out, record):
        errors = sorted(SCHEMA.iter_errors(record), key=lambda e: list(e.path))
        assert not errors, (
            f"record {record.get('key')} breaks the schema: {errors[0].message} at {list(errors[0].path)}"
        )
        return write(out, record)

    monkeypatch.setattr(records, "write_record", checked)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real smoke run of the default suite (one seed), shared by the tests that read it."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    code = cli.main(
        ["--profile", "smoke", "--seeds", "1", "--out", str(out), "--no-progress", "--no-open", "--jobs", "1"]
    )
    return out, code


@pytest.fixture
def offline(monkeypatch):
    """No network: every connection and name lookup fails, as on a machine that is offline."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network unreachable (the test is offline)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """The user's cache folder in tmp_path, and no $RPG_BENCH_DATA_ROOT: the default data root."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RPG_BENCH_DATA_ROOT", raising=False)
    return tmp_path / "cache" / "rpg-bench" / "data"

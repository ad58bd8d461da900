"""tests/exercised.py, the fast layer's check, on a small package measured by a real coverage run."""

import subprocess
import sys

import exercised

MODULES = {
    "__init__.py": "",
    "ran.py": "def f():\n    return 1\n",
    "imported.py": "def g():\n    return 2\n\n\nclass A:\n    def m(self):\n        return 3\n",
    "constants.py": "X = 1\nY = [X, 2]\n",
    "never.py": "def h():\n    return 4\n",
}


def measure(root, program):
    """`program` run under `coverage run --source=pkg` in `root`; the data file it wrote."""
    (root / "main.py").write_text(program)
    data = root / ".coverage"
    subprocess.run(
        [sys.executable, "-m", "coverage", "run", f"--data-file={data}", "--source=pkg", "main.py"],
        cwd=root,
        check=True,
        timeout=120,
    )
    return data


def test_a_module_imported_but_never_run_and_one_never_imported_are_named_and_fail(tmp_path, capsys):
    (tmp_path / "pkg").mkdir()
    for name, text in MODULES.items():
        (tmp_path / "pkg" / name).write_text(text)
    data = measure(tmp_path, "import pkg.constants, pkg.imported, pkg.ran\npkg.ran.f()\n")
    assert exercised.main(["pkg", "--root", str(tmp_path), "--data-file", str(data)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "pkg/imported.py: imported, but none of its 2 functions ran",
        "pkg/never.py: never imported",
        "2 of 5 modules not exercised: give each a fast test (one not marked slow)",
    ]


def test_every_module_run_passes(tmp_path, capsys):
    (tmp_path / "pkg").mkdir()
    for name, text in MODULES.items():
        (tmp_path / "pkg" / name).write_text(text)
    program = (
        "import pkg.constants, pkg.imported, pkg.never, pkg.ran\npkg.ran.f()\npkg.imported.A().m()\npkg.never.h()\n"
    )
    data = measure(tmp_path, program)
    assert exercised.main(["pkg", "--root", str(tmp_path), "--data-file", str(data)]) == 0
    assert capsys.readouterr().out == "every one of 5 modules in pkg was exercised\n"


def test_no_data_is_a_failure_not_a_pass(tmp_path, capsys):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "ran.py").write_text(MODULES["ran.py"])
    assert exercised.main(["pkg", "--root", str(tmp_path), "--data-file", str(tmp_path / "absent")]) == 1
    assert "no coverage data" in capsys.readouterr().out

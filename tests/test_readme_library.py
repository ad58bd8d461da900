"""Every Python example in README.md's library section runs, and prints what it says it prints."""

import functools
import re
import socket
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## The `rpg` library"


def examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)


def expected_output(code: str) -> list[str]:
    """The comment line under each top-level print: what the README says it prints."""
    lines = code.splitlines()
    return [
        after.removeprefix("# ") for line, after in zip(lines, lines[1:], strict=False) if line.startswith("print(")
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_section_has_its_examples():
    codes = examples()
    assert len(codes) >= 5
    assert any("torchvision" in c for c in codes) and any("timm" in c for c in codes)
    assert all(expected_output(c) or "print(" not in c for c in codes)


@pytest.mark.parametrize("code", examples(), ids=lambda code: code.splitlines()[-1][:40])
def test_the_example_runs(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the examples write checkpoints
    if "init_process_group" in code:  # what torchrun sets for a one-process run
        for name, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("WORLD_SIZE", "1")
    if "torch.compile" in code:
        # Inductor's C++ build takes minutes on this CPU; aot_eager runs the same graph
        # capture and AOT backward. The README's claim of no recompiles is checked too.
        monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
        torch._dynamo.reset()
        monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    torch.manual_seed(0)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.splitlines() == expected_output(code)

"""Every Python example in the documentation runs, and prints what it says it prints: the
pages of docs/, README.md and CONTRIBUTING.md (which docs/contributing.md includes)."""

import functools
import re
import socket
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]


def examples() -> list[tuple[str, str]]:
    """(page, code) for every ```python block, in page order."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for code in re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
            found.append((str(page.relative_to(ROOT)), code))
    return found


def expected_output(code: str) -> list[str]:
    """The comment line under each top-level print: what the page says it prints."""
    lines = code.splitlines()
    return [
        after.removeprefix("# ") for line, after in zip(lines, lines[1:], strict=False) if line.startswith("print(")
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_pages_have_their_examples():
    found = examples()
    pages = {page for page, _ in found}
    assert {"docs/library/index.md", "docs/library/checkpoints.md", "docs/library/distributed.md"} <= pages
    assert {"README.md", "CONTRIBUTING.md"} <= pages
    codes = [code for _, code in found]
    assert len(codes) >= 7
    assert any("torchvision" in c for c in codes) and any("timm" in c for c in codes)
    assert all(expected_output(c) or "print(" not in c for c in codes)


@pytest.fixture
def methods_restored():
    """An example may register a method: the registry is global, so it is put back."""
    from suite.methods import registry

    before = dict(registry.METHODS)
    yield
    registry.METHODS.clear()
    registry.METHODS.update(before)


@pytest.mark.parametrize("page,code", examples(), ids=lambda v: v.splitlines()[-1][:40] if "\n" in v else v)
def test_the_example_runs(page, code, tmp_path, monkeypatch, capsys, methods_restored):
    monkeypatch.chdir(tmp_path)  # the examples write checkpoints
    if "init_process_group" in code:  # what torchrun sets for a one-process run
        for name, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("WORLD_SIZE", "1")
    if "torch.compile" in code:
        # Inductor's C++ build takes minutes on this CPU; aot_eager runs the same graph
        # capture and AOT backward. The page's claim of no recompiles is checked too.
        monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
        torch._dynamo.reset()
        monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    torch.manual_seed(0)
    exec(compile(code, str(ROOT / page), "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.splitlines() == expected_output(code)

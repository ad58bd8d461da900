"""The engine's shape: no function in suite/ over MAX_LINES lines (#37: a function that long
does several things, and each deserves a name)."""

import ast
from pathlib import Path

SUITE = Path(__file__).resolve().parent.parent / "suite"
MAX_LINES = 60


def long_functions(root: Path, limit: int) -> list[str]:
    """Every function or method under ``root`` longer than ``limit`` lines (from its ``def``
    to its last line, docstring included), as "path:line name (N lines)"."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_the_engine_is_over_sixty_lines():
    assert long_functions(SUITE, MAX_LINES) == []


def test_the_walk_finds_a_long_function_and_names_it(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES))
    (package / "mod.py").write_text(f"def short():\n    pass\n\n\nclass C:\n    def long(self):\n{body}\n")
    assert long_functions(package, MAX_LINES) == [f"pkg/mod.py:6 long ({MAX_LINES + 1} lines)"]
    assert long_functions(package, MAX_LINES + 1) == []

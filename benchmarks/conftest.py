"""The benchmarks time real work (a training step, a generator, a deployed network): the full
run executes each once, untimed, so none rots; the fast layer leaves them out."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "benchmarks" in item.path.parts:
            item.add_marker(pytest.mark.slow)

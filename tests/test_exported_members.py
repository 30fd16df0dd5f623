"""The public names import, and nothing private leaks from a part's __init__."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import headrace

PARTS = ["headrace.engine", "headrace.lineage", "headrace.spark", "headrace.store", "headrace.ui"]


def test_every_top_level_name_imports() -> None:
    for name in headrace.__all__:
        assert getattr(headrace, name) is not None, name


@pytest.mark.parametrize("part", PARTS)
def test_parts_list_only_public_names(part: str) -> None:
    module = importlib.import_module(part)
    assert module.__all__, part
    for name in module.__all__:
        assert not name.startswith("_"), name
        assert hasattr(module, name), name


def test_import_headrace_loads_no_heavy_module() -> None:
    code = ("import sys, headrace; heavy = [m for m in ('pandas', 'sqlalchemy', 'pyarrow', 'duckdb') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

"""The codebase stays readable: every module says its one job on its first line and no
Python file grows past about 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MAX_LINES = 460
PACKAGES = ("chalicelib", "exporter", "deploy", "bench")
SOURCES = [
    *sorted(
        path
        for folder in PACKAGES
        for path in (REPO_ROOT / folder).rglob("*.py")
        if path.name != "__init__.py" or path.stat().st_size
    ),
    REPO_ROOT / "app.py",
    REPO_ROOT / "clitools.py",
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_each_module_says_its_job_and_stays_short(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and docstring.strip().splitlines()[0], f"{path.name} has no docstring"
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name} has {len(text.splitlines())} lines"

"""The codebase stays readable: every module says its one job on its first line, no Python
file grows past about 450 lines, no module imports itself back through others, ``chalicelib/``
keeps at most eight top-level modules beside its stage packages, and each package imports
only what its ``__init__.py`` says it may."""

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


PROJECT = ("chalicelib", "exporter", "deploy")
TOP_LEVEL_FILES = ("app.py", "clitools.py")
MAX_TOP_LEVEL_MODULES = 8


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules() -> dict[str, Path]:
    paths = [REPO_ROOT / name for name in TOP_LEVEL_FILES]
    paths += [path for package in PROJECT for path in (REPO_ROOT / package).rglob("*.py")]
    return {_module_name(path): path for path in paths}


MODULES = _project_modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports, at the top or inside a function, as the module
    it names (``from a import b`` is ``a.b`` when that is a module, else ``a``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in MODULES:
                    found.add(target)
                elif base in MODULES:
                    found.add(base)
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_itself_back() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_chalicelib_keeps_few_top_level_modules() -> None:
    modules = sorted(
        p.stem for p in (REPO_ROOT / "chalicelib").glob("*.py") if p.stem != "__init__"
    )
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


# (package, what it may not import, the exceptions it may): each package's __init__.py
# says the same in words.
RULES = [
    ("chalicelib", ("exporter", "deploy", "clitools"), ()),
    (
        "chalicelib.ingest",
        (
            "chalicelib.csv",
            "chalicelib.erase",
            "chalicelib.athena",
            "chalicelib.dev",
            "chalicelib.delivery",
            "chalicelib.rejects",
            "chalicelib.jobs",
        ),
        ("chalicelib.rejects.record",),
    ),
    (
        "chalicelib.csv",
        (
            "chalicelib.ingest",
            "chalicelib.rejects",
            "chalicelib.erase",
            "chalicelib.athena",
            "chalicelib.dev",
            "chalicelib.delivery",
            "chalicelib.jobs",
            "chalicelib.sinks",
        ),
        ("chalicelib.ingest.strictjson",),
    ),
    ("chalicelib.rejects", ("chalicelib.dev", "chalicelib.erase", "chalicelib.athena"), ()),
    ("chalicelib.delivery", ("chalicelib.ingest", "chalicelib.dev", "chalicelib.rejects"), ()),
    ("chalicelib.athena", ("chalicelib.ingest", "chalicelib.rejects", "chalicelib.dev"), ()),
    ("chalicelib.erase", ("chalicelib.dev", "chalicelib.athena", "chalicelib.delivery"), ()),
    ("chalicelib.storage", ("chalicelib",), ("chalicelib.storage",)),
    ("exporter", ("exporter.cli",), ()),
    ("deploy", ("exporter", "deploy.cli"), ()),
]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(("package", "forbidden", "allowed"), RULES)
def test_each_package_imports_only_what_its_init_allows(
    package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    broken = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _within(module, package) and not module.endswith(".__main__")  # runs the group
        for target in targets
        if any(_within(target, f) for f in forbidden)
        and not any(_within(target, a) for a in allowed)
    )
    assert broken == []


def test_only_app_imports_the_dev_stage() -> None:
    importers = sorted(
        module
        for module, targets in GRAPH.items()
        if not _within(module, "chalicelib.dev")
        and any(_within(t, "chalicelib.dev") for t in targets)
    )
    assert importers == ["app"]


@pytest.mark.parametrize(
    "package",
    sorted(name for name, path in MODULES.items() if path.name == "__init__.py"),
)
def test_each_package_says_what_it_does(package: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8")))
    assert docstring and len(docstring) > 60, f"{package}/__init__.py has no docstring"


def _undocumented_public_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{_module_name(path)}.{node.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and not node.name.startswith("_")
        and not ast.get_docstring(node)
    ]


def test_every_public_class_says_what_it_is() -> None:
    missing = [name for path in MODULES.values() for name in _undocumented_public_classes(path)]
    assert missing == []

"""The docs a user follows stay true: commands exist, links resolve, the README's curl works."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import click
import pytest

from deploy.cli import cli as deploy_cli
from exporter.cli import cli as exporter_cli
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {path.name: path.read_text(encoding="utf-8") for path in (REPO_ROOT / "docs").glob("*.md")}
ALL_DOCS = README + "\n".join(DOCS.values())
# Every file a user reads commands from: the docs, and the comments of the templates.
NAMING_FILES = {
    path.relative_to(REPO_ROOT): path.read_text(encoding="utf-8")
    for path in [
        REPO_ROOT / "README.md",
        REPO_ROOT / "client" / "README.md",
        *sorted((REPO_ROOT / "docs").glob("*.md")),
        *sorted((REPO_ROOT / "infrastructure").rglob("*.*")),
    ]
}
CLIS: dict[str, click.Group] = {"exporter": exporter_cli, "deploy": deploy_cli}


def _commands(package: str) -> dict[str, click.Command]:
    """A group's commands by name, those it imports only when they run included."""
    group = CLIS[package]
    context = click.Context(group)
    found = {name: group.get_command(context, name) for name in group.list_commands(context)}
    return {name: command for name, command in found.items() if command is not None}


@pytest.mark.parametrize(
    ("package", "name"),
    [(package, name) for package in CLIS for name in sorted(_commands(package))],
)
def test_every_command_has_help_and_is_documented(package: str, name: str) -> None:
    command = _commands(package)[name]
    assert (command.help or "").strip(), f"{name} has no help text"
    for option in command.params:
        if option.param_type_name == "option":
            assert getattr(option, "help", None), f"{name} {option.name} has no help"
    assert f"python -m {package} {name}" in README, f"README does not show {name}"


@pytest.mark.parametrize("package", sorted(CLIS))
def test_docs_name_only_commands_that_exist(package: str) -> None:
    commands = set(_commands(package))
    for path, text in NAMING_FILES.items():
        named = set(re.findall(rf"python -m {package} ([a-z][a-z-]+)", text))
        assert named <= commands, f"{path} names python -m {package} {named - commands}"


def test_relative_links_resolve() -> None:
    sources = {REPO_ROOT / "README.md": README}
    sources.update({REPO_ROOT / "docs" / name: text for name, text in DOCS.items()})
    for path, text in sources.items():
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_quick_start_commands_exist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^dev:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_readme_curl_body_is_accepted_by_chalice_local(chalice_local: tuple[str, Path]) -> None:
    base, _ = chalice_local
    block = README.split("<!-- readme-curl", 1)[1]
    body = re.search(r"-d '(\{.*?\})'\n", block, re.S)
    assert body is not None
    request = urllib.request.Request(
        base + "events",
        data=body.group(1).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read()) == {"accepted": 1, "rejected": []}
    assert '# {"accepted": 1, "rejected": []}' in block


def test_schema_limits_in_readme_match_the_defaults() -> None:
    from chalicelib.config import Limits
    from chalicelib.ingest.budget import STORED_BYTES_PER_BODY_BYTE

    limits = Limits()
    assert limits.max_body_bytes == 1024 * 1024 and "Over 1 MiB, or over 500 events" in README
    assert limits.max_events_per_batch == 500
    assert limits.max_event_bytes == 32 * 1024 and "exceeds 32 KiB" in README
    assert f"a string over {limits.max_string_length} characters" in README
    assert "more than 8 times the body" in README and STORED_BYTES_PER_BODY_BYTE == 8


# Backticked paths that start at one of these name a file of the repository.
REPO_ENTRIES = (
    "app.py",
    "clitools.py",
    "Makefile",
    "requirements",
    "pyproject.toml",
    "chalicelib/",
    "exporter/",
    "deploy/",
    "client/",
    "docs/",
    "tests/",
    "bench/",
    "infrastructure/",
    "scripts/",
    ".chalice/",
    ".ci/",
)
# Templates and examples, not files: placeholders, globs, paths a run creates.
NOT_A_FILE = re.compile(r"[*<>{}…\s]|YYYY|\.\.\.|^client/(dist|node_modules)|^\.chalice/deploy")
DOC_FILES = [REPO_ROOT / "README.md", REPO_ROOT / "client" / "README.md"]
DOC_FILES += sorted((REPO_ROOT / "docs").glob("*.md"))


def backticked_paths(text: str) -> list[str]:
    paths = []
    for token in re.findall(r"`([^`\n]+)`", text):
        token = token.split("#", 1)[0].rstrip(":,.")
        if token.startswith(REPO_ENTRIES) and not NOT_A_FILE.search(token):
            paths.append(token)
    return paths


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_backticked_repository_paths_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = [
        path
        for path in backticked_paths(text)
        if not (REPO_ROOT / path).exists() and not (doc.parent / path).exists()
    ]
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def test_backticked_path_check_catches_a_missing_file() -> None:
    assert backticked_paths("see `chalicelib/convert.py` and `raw/YYYY/` and `docs/*.md`") == [
        "chalicelib/convert.py"
    ]
    assert not (REPO_ROOT / "chalicelib/convert.py").exists()


def _fenced_after(text: str, marker: str) -> str:
    """The first fenced code block after ``marker``."""
    block = re.search(r"```\w*\n(.*?)```", text.split(marker, 1)[1], re.S)
    assert block is not None, f"no code block after {marker}"
    return block.group(1)


def test_integration_inspector_example_is_the_e2e_test_that_runs() -> None:
    """docs/INTEGRATION.md's Playwright test is client/test/e2e/inspector.test.ts's body."""
    import textwrap

    shown = _fenced_after(DOCS["INTEGRATION.md"], "<!-- inspector-example")
    assert shown.startswith("import { test, expect } from '@playwright/test';\n")
    body = shown.split("async ({ page, request }) => {\n", 1)[1].rsplit("});", 1)[0]
    source = (REPO_ROOT / "client" / "test" / "e2e" / "inspector.test.ts").read_text()
    tested = source.split("// docs:start\n", 1)[1].split("  // docs:end", 1)[0]
    assert textwrap.dedent(body) == textwrap.dedent(tested)


def test_readme_export_command_writes_the_file_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick start's export, as written, in a folder whose analytics_data holds one event."""
    import shlex
    from datetime import UTC, datetime

    from click.testing import CliRunner

    today = datetime.now(UTC).date().isoformat()
    raw = tmp_path / "analytics_data" / "raw" / today.replace("-", "/") / "10" / "e.ndjson"
    raw.parent.mkdir(parents=True)
    raw.write_text(json.dumps({"eventId": "e-1", "sessionId": "s", "metricName": "M"}) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANALYTICS_DATA_DIR")
    command, *said = _fenced_after(README, "<!-- readme-export").splitlines()
    args = shlex.split(command.replace('"$(date -u +%F)"', today))
    assert args[:3] == [".venv/bin/python", "-m", "exporter"]
    result = CliRunner().invoke(exporter_cli, args[3:])
    assert result.exit_code == 0, result.output
    expected = [line.removeprefix("# ").replace("2026-11-28", today) for line in said]
    assert result.output.splitlines() == expected
    assert (tmp_path / "analytics_data" / "csv" / f"{today}_combined.csv").is_file()


# --------------------------------------------------------------------------------------
# Statements the docs make about the project, checked against the project
# --------------------------------------------------------------------------------------

DOCUMENTED_COMMAND = re.compile(r"(\S*?)python3? -m (exporter|deploy)(?: ([a-z][a-z-]+))?")


def _documented_commands() -> set[tuple[str, str, str]]:
    """(how it is invoked, package, command) for every command line the docs show."""
    found = set()
    for text in NAMING_FILES.values():
        for launcher, package, command in DOCUMENTED_COMMAND.findall(text):
            found.add((launcher.lstrip("`($'\"") + "python", package, command))
    return found


def test_every_documented_command_names_the_venvs_python() -> None:
    """A bare `python -m exporter` is a SyntaxError where `python` is 3.11, or missing."""
    bare = sorted(
        {(how, pkg) for how, pkg, _ in _documented_commands()}
        - {
            (".venv/bin/python", "exporter"),
            (".venv/bin/python", "deploy"),
        }
    )
    assert not bare, f"docs show commands that do not run as written: {bare}"


@pytest.mark.parametrize(
    ("package", "command"),
    sorted({(package, command) for _, package, command in _documented_commands()}),
)
def test_documented_commands_run_as_written_from_the_repository(package: str, command: str) -> None:
    """Each command exactly as the docs start it (`.venv/bin/python -m …`), in a shell at
    the repository root, as a person pastes it after the README's set-up."""
    line = f".venv/bin/python -m {package} {command} --help".replace("  ", " ")
    done = subprocess.run(
        ["bash", "-c", line], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{line}: {done.stderr}"
    assert "Usage:" in done.stdout


def test_make_bench_runs_every_benchmark() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    benches = {path.name for path in (REPO_ROOT / "bench").glob("bench_*.py")}
    assert benches == set(re.findall(r"bench/(bench_\w+\.py)", recipe))
    said = README.split("`make bench` runs them all", 1)[1].split("\n\n", 1)[0]
    assert benches == set(re.findall(r"bench/(bench_\w+\.py)", said))


def test_settings_the_readme_places_in_the_stage_config_are_there() -> None:
    stages = json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())["stages"]
    sentence = README.split("All limits are per stage:", 1)[1].split("[docs/SPEC.md]", 1)[0]
    in_config, defaults = sentence.split("are set in `.chalice/config.json`", 1)
    for name in re.findall(r"`([A-Z_]+)`", in_config):
        assert all(name in stage["environment_variables"] for stage in stages.values()), name
    for name in re.findall(r"`([A-Z_]+)`", defaults.split("built-in defaults", 1)[0]):
        assert all(name not in stage["environment_variables"] for stage in stages.values())
        assert name in (REPO_ROOT / "chalicelib" / "config.py").read_text(), name


def test_docs_list_every_value_that_enables_the_client() -> None:
    env_ts = (REPO_ROOT / "client" / "src" / "env.ts").read_text()
    match = re.search(r"/\^\(([a-z0-9|]+)\)\$/i\.test\(String\(vars\.VITE_ENABLE", env_ts)
    assert match, "client/src/env.ts no longer reads VITE_ENABLE_CSV_ANALYTICS as expected"
    values = match.group(1).split("|")
    for path, text in NAMING_FILES.items():
        for line in re.findall(r"^VITE_ENABLE_CSV_ANALYTICS=.*$", text, re.M):
            comment = line.split("#", 1)[1]
            assert all(re.search(rf"\b{value}\b", comment) for value in values), (path, line)


def test_integration_guide_does_not_say_webdriver_is_stored() -> None:
    privacy = DOCS["INTEGRATION.md"].split("## 4. Privacy", 1)[1].split("\n- ", 2)[1]
    assert privacy.startswith("Stored per event")
    for sentence in re.split(r"(?<=\.)\s", privacy):
        if "`webdriver`" in sentence:
            assert "not stored" in sentence, sentence

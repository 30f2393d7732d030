"""deploy.cli: `python -m deploy` holds the deployment commands, `python -m exporter` not."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from deploy.cli import cli as deploy_cli
from exporter.cli import cli as exporter_cli
from tests.conftest import REPO_ROOT

DEPLOYMENT_COMMANDS = ["apply-throttling", "configure-prod", "cost", "smoke-test"]


def test_the_group_holds_the_deployment_commands() -> None:
    assert sorted(deploy_cli.commands) == DEPLOYMENT_COMMANDS
    assert not set(DEPLOYMENT_COMMANDS) & set(
        exporter_cli.list_commands(click.Context(exporter_cli))
    )


def test_runs_as_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: python -m deploy [OPTIONS] COMMAND")
    for name in DEPLOYMENT_COMMANDS:
        assert name in done.stdout


def test_short_help_option() -> None:
    result = CliRunner().invoke(deploy_cli, ["-h"])
    assert result.exit_code == 0 and "configure-prod" in result.stdout


@pytest.mark.parametrize("name", DEPLOYMENT_COMMANDS)
def test_exporter_no_longer_has_them(name: str) -> None:
    result = CliRunner().invoke(exporter_cli, [name], prog_name="python -m exporter")
    assert result.exit_code == 2
    assert f"No such command '{name}'" in result.stderr


def test_neither_command_line_imports_the_other() -> None:
    for package, other in (("deploy", "exporter"), ("exporter", "deploy")):
        code = (
            f"import sys, {package}.cli; "
            f"print([m for m in sys.modules if m.split('.')[0] == {other!r}])"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]", (package, done.stdout)

"""exporter/options.py: every data command takes its days and its source the same way."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from exporter.cli import cli
from tests.factories import event

DAY_RANGE_COMMANDS = ["export", "delivery", "rejected", "replay", "report", "erase"]


def _command(name: str) -> click.Command:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    return command


@pytest.mark.parametrize("name", DAY_RANGE_COMMANDS)
def test_every_day_range_command_shows_date_and_to_date(name: str) -> None:
    shown = CliRunner().invoke(cli, [name, "--help"]).output
    assert "--date" in shown and "--to-date" in shown
    assert "--from " not in shown and "--to " not in shown


def test_athena_query_reads_its_day_like_the_others() -> None:
    for name in ("athena-query", "export"):
        result = CliRunner().invoke(cli, [name, "--date", "28/11/2026"])
        assert result.exit_code == 2
        assert "'28/11/2026' is not a date like 2026-11-28 (YYYY-MM-DD)" in result.output


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Two days of one session's events in a local data folder."""
    for day in ("27", "28"):
        folder = tmp_path / "raw" / "2026" / "11" / day / "10"
        folder.mkdir(parents=True)
        lines = [json.dumps(event(sessionId="s-1", eventId=f"e-{day}-{n}")) for n in range(3)]
        (folder / "a.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return tmp_path


@pytest.mark.parametrize(
    "days",
    [
        ["--date", "2026-11-27", "--to-date", "2026-11-28"],
        ["--from", "2026-11-27", "--to", "2026-11-28"],
    ],
)
def test_erase_takes_date_and_to_date_and_still_its_old_spellings(
    lake: Path, days: list[str]
) -> None:
    args = ["erase", "--session-id", "s-1", *days, "--source", str(lake), "--dry-run"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "6 event" in result.output


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (["--date", "2026-11-27", "--from", "2026-11-27"], "not both"),
        (["--to-date", "2026-11-28"], "Missing option '--date'"),
    ],
)
def test_erase_refuses_both_spellings_and_no_day(lake: Path, days: list[str], message: str) -> None:
    args = ["erase", "--session-id", "s-1", *days, "--source", str(lake), "--dry-run"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and message in result.output


def test_the_old_spellings_are_hidden_options_of_erase_only() -> None:
    hidden = {
        name: sorted(
            o for p in _command(name).params if getattr(p, "hidden", False) for o in p.opts
        )
        for name in DAY_RANGE_COMMANDS
    }
    assert hidden == {name: (["--from", "--to"] if name == "erase" else []) for name in hidden}

"""Nothing a request sent reaches the operator's terminal as a control sequence: every line
`python -m exporter` prints (`rejected`, `replay --dry-run`, `erase`, their errors) shows
escape sequences, C1 controls and bidi overrides escaped, on a terminal and in a file."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as app_module
from clitools import echo, terminal_safe
from exporter.cli import cli
from tests.conftest import REPO_ROOT
from tests.factories import batch, body_bytes, event

OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # writes "evil" to the clipboard
TITLE = "\x1b]0;pwned\x07"  # sets the window title
FAKE_ALL_CLEAR = "\x1b[2J\x1b[H0 all good"  # clears the screen, then a line of its own
CONCEAL = "\x1b[8m"
C1_CSI = "\x9b2J"  # the one-character CSI
BIDI = "\u202eevil\u202c\u2066x\u2069"
HOSTILE = OSC52 + TITLE + FAKE_ALL_CLEAR + CONCEAL + C1_CSI + BIDI + "\n9999 fake\r\u2028"
# Any of these in output means a terminal acted on what a request sent.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@pytest.fixture
def hostile_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A data folder the route filled from hostile POSTs: rejects whose metricName,
    reason, context key and Content-Type carry escape sequences."""
    settings = dataclasses.replace(app_module.SETTINGS, data_dir=str(tmp_path))
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    monkeypatch.setattr(app_module, "collector", app_module._make_collector())
    with Client(app_module.app, stage_name="dev") as client:
        body = batch(
            event(metricName=HOSTILE, value="not a number"),
            event(value=HOSTILE),
            context={"device": "d", "evil" + HOSTILE: 1},
        )
        for content_type in ("text/plain", HOSTILE.replace("\n", " ").replace("\r", " ")):
            answer = client.http.post(
                "/events", headers={"Content-Type": content_type}, body=body_bytes(body)
            )
            assert answer.status_code in (400, 415)
        body = batch(event(metricName=HOSTILE, value=HOSTILE))
        answer = client.http.post(
            "/events", headers={"Content-Type": "application/json"}, body=body_bytes(body)
        )
        assert answer.status_code == 200 and answer.json_body["rejected"]
    [day] = {p.relative_to(tmp_path / "rejected").parts[:3] for p in tmp_path.rglob("*.ndjson")}
    return tmp_path, "-".join(day)


def strings(value: Any) -> str:
    """Every string in a JSON value, keys too, joined."""
    if isinstance(value, dict):
        return "".join(strings(k) + strings(v) for k, v in value.items())
    if isinstance(value, list):
        return "".join(map(strings, value))
    return value if isinstance(value, str) else ""


def assert_shown_not_obeyed(output: str) -> None:
    assert not UNSAFE.search(output), repr(UNSAFE.search(output))
    assert "\\u001b]52;c;ZXZpbA==\\u0007" in output  # shown, escaped


COMMANDS = {
    "rejected": ["rejected"],
    "rejected --json": ["rejected", "--json"],
    "replay --dry-run": ["replay", "--dry-run"],
    "replay --dry-run --json": ["replay", "--dry-run", "--json"],
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_commands_show_stored_escape_sequences_escaped(
    hostile_day: tuple[Path, str], args: list[str]
) -> None:
    root, day = hostile_day
    result = CliRunner().invoke(cli, [*args, "--date", day, "--source", str(root)])
    assert result.exit_code == 0, result.output
    assert_shown_not_obeyed(result.stdout + result.stderr)
    if "--json" in args:  # still JSON, with the same values
        assert OSC52 in strings(json.loads(result.stdout))


def test_redirected_to_a_file_the_output_is_escaped_too(hostile_day: tuple[Path, str]) -> None:
    root, day = hostile_day
    out = root / "out.txt"
    with out.open("wb") as handle:
        subprocess.run(
            [sys.executable, "-m", "exporter", "rejected", "--date", day, "--source", str(root)],
            cwd=REPO_ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=60,
        )
    text = out.read_text(encoding="utf-8")
    assert_shown_not_obeyed(text)
    assert "\n0 all good" not in text and "\n9999 fake" not in text


def test_erase_output_and_errors_are_escaped(hostile_day: tuple[Path, str]) -> None:
    root, day = hostile_day
    folder = root / "raw" / day.replace("-", "/") / "10"
    folder.mkdir(parents=True)
    (folder / f"events{OSC52}.ndjson").write_text('{"sessionId": "s-1"}\n')
    result = CliRunner().invoke(
        cli, ["erase", "--session-id", "s-1", "--from", day, "--source", str(root), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "would erase 1 event(s)" in result.stdout
    assert_shown_not_obeyed(result.stdout)
    # An error line quoting a stored path: escaped as well.
    broken = folder / f"x{TITLE}.gz"  # cut short: it holds a match but cannot be read whole
    broken.write_bytes(gzip.compress(b'{"sessionId": "s-1"}\n' * 1000)[:-20])
    failed = CliRunner().invoke(
        cli, ["erase", "--session-id", "s-1", "--from", day, "--source", str(root)]
    )
    assert failed.exit_code == 1 and "cannot be read to its end" in failed.stderr
    assert not UNSAFE.search(failed.stderr) and "\\u001b]0;pwned\\u0007" in failed.stderr


def test_terminal_safe_escapes_as_json_does() -> None:
    text = "a\x1bb\x9bc\u202ed\ne\tf\\"
    escaped = terminal_safe(text)
    assert escaped == "a\\u001bb\\u009bc\\u202ed\\ne\\tf\\"
    assert json.loads(f'"{escaped[:-1]}"') == text[:-1]  # JSON escapes: it reads back
    assert terminal_safe("a\nb\tc\x1b", layout=True) == "a\nb\tc\\u001b"


def test_every_command_prints_through_the_one_helper() -> None:
    """No command module calls click.echo itself (the helper escapes; click does not)."""
    modules = [*(REPO_ROOT / "exporter").rglob("*.py"), *(REPO_ROOT / "deploy").rglob("*.py")]
    offenders = [p.name for p in modules if "click.echo(" in p.read_text(encoding="utf-8")]
    assert offenders == []
    assert "click.echo(" in (REPO_ROOT / "clitools.py").read_text(encoding="utf-8")


def test_echo_keeps_layout(capsys: Any) -> None:
    echo(f"count\treason\n1\t{terminal_safe('x' + chr(10) + 'y')}")
    assert capsys.readouterr().out == "count\treason\n1\tx\\ny\n"

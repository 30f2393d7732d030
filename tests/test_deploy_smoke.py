"""deploy.smoke: `smoke-test` against a real `chalice local`, and its checks on a broken stage."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from deploy import smoke
from exporter.cli import cli as exporter_cli
from tests.conftest import free_port


def test_smoke_test_passes_against_chalice_local(chalice_local: tuple[str, Path]) -> None:
    base, data_dir = chalice_local
    result = CliRunner().invoke(
        smoke.smoke_test, [base, "--origin", "http://localhost:5173", "--timeout", "10"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:4]] == ["PASS"] * 4, result.output
    assert lines[-1].startswith("smokeTestId: ")
    smoke_id = lines[-1].split()[1]

    stored = [
        json.loads(line)
        for path in (data_dir / "raw").rglob("*")
        if path.is_file()
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    tagged = [r for r in stored if r.get("metricAttributes", {}).get("smokeTestId") == smoke_id]
    assert len(tagged) == 1, stored
    assert tagged[0]["metricName"] == "SmokeTest"
    # Marked as test traffic: one column tells an analyst to drop the row.
    assert tagged[0]["synthetic"] is True


def test_smoke_events_are_one_filter_away_in_the_csv(chalice_local: tuple[str, Path]) -> None:
    base, data_dir = chalice_local
    result = CliRunner().invoke(smoke.smoke_test, [base, "--timeout", "10"])
    assert result.exit_code == 0, result.output
    raw = [p for p in (data_dir / "raw").rglob("*") if p.is_file()]
    out = data_dir.parent / "smoke.csv"
    converted = CliRunner().invoke(exporter_cli, ["json-to-csv", *map(str, raw), "-o", str(out)])
    assert converted.exit_code == 0, converted.output
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    marked = [row for row in rows if row["synthetic"] == "true"]
    assert marked and all(row["metricName"] == "SmokeTest" for row in marked)
    assert all(row["metricName"] != "SmokeTest" for row in rows if row["synthetic"] != "true")


def test_smoke_test_without_trailing_slash_joins_paths(chalice_local: tuple[str, Path]) -> None:
    """A base URL without its trailing slash: the four checks pass, the event is stored; a
    stage's path (``chalice url`` gives ``…/api/``) is kept, not replaced."""
    base, data_dir = chalice_local
    result = CliRunner().invoke(smoke.smoke_test, [base.rstrip("/")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":", 1)[0] for line in lines[:4]] == [
        "PASS GET /health",
        "PASS OPTIONS /events (preflight)",
        "PASS POST /events (one SmokeTest event, text/plain)",
        "PASS POST /events (malformed body → 400)",
    ], result.output
    assert "accepted=1" in lines[2]
    smoke_id = lines[-1].split()[1]
    stored = [
        line
        for path in (data_dir / "raw").rglob("*")
        if path.is_file()
        for line in path.read_text().splitlines()
        if smoke_id in line
    ]
    assert len(stored) == 1 and json.loads(stored[0])["metricName"] == "SmokeTest", stored

    asked: list[str] = []

    def answer(method: str, url: str, **_kwargs: Any) -> smoke.Reply:
        asked.append(f"{method} {url}")
        return smoke.Reply(200, {}, b"{}")

    for stage in ("https://x.example/api", "https://x.example/api/"):
        asked.clear()
        list(smoke.run_smoke_checks(stage, "https://a.example", "id", answer, 1, 0))
        assert asked == [
            "GET https://x.example/api/health",
            "OPTIONS https://x.example/api/events",
            "POST https://x.example/api/events",
            "POST https://x.example/api/events",
        ]


def test_smoke_test_closed_port_is_one_line() -> None:
    port = free_port()  # bound and released: nothing listens there now
    result = CliRunner().invoke(smoke.smoke_test, [f"http://127.0.0.1:{port}/", "--timeout", "3"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("FAIL ")
    assert f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_smoke_checks_report_each_failure() -> None:
    """A stage that answers but misbehaves: every check says what is wrong."""

    def broken(method: str, url: str, **_kwargs: Any) -> smoke.Reply:
        if url.endswith("/health"):
            return smoke.Reply(502, {}, b'{"message": "Internal server error"}')
        if method == "OPTIONS":
            return smoke.Reply(403, {"Vary": "Origin"}, b'{"message": "origin not allowed"}')
        return smoke.Reply(200, {}, b'{"accepted": 0, "rejected": []}')

    checks = list(
        smoke.run_smoke_checks("https://x.example/api/", "https://a.example", "id", broken, 1, 0)
    )
    assert [c.ok for c in checks] == [False, False, False, False]
    assert "ALLOWED_ORIGINS" in checks[1].detail
    assert "accepted=0" in checks[2].detail


def test_smoke_event_body_is_one_valid_tagged_event() -> None:
    from chalicelib.config import Limits
    from chalicelib.ingest.body import parse_body
    from chalicelib.ingest.validate import BatchValidator

    raw = smoke.smoke_event_body("abc", 1_700_000_000_000)
    validator = BatchValidator(Limits())
    result = validator.process(parse_body(raw, "text/plain", validator.limits), 1_700_000_000_500)
    assert len(result.records) == 1 and not result.rejected
    assert json.loads(result.records[0])["metricAttributes"] == {"smokeTestId": "abc"}

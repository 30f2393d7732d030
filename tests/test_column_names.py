"""Column names a tool cannot confuse. Through the route (keys refused),
the CLI (case variants from different events merged into one column) and DuckDB reading
the CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as app_module
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import LocalDirectorySink
from exporter.cli import cli
from tests.factories import batch, body_bytes, event


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Client]:
    """The app's POST /events storing under tmp_path/data/raw/."""
    collector = Collector(
        BatchValidator(app_module.SETTINGS.limits),
        lambda: LocalDirectorySink(tmp_path / "data"),
        app_module.app.log,
    )
    monkeypatch.setattr(app_module, "collector", collector)
    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client


def post(client: Client, *events: dict[str, Any]) -> Any:
    answer = client.http.post(
        "/events", headers={"Content-Type": "text/plain"}, body=body_bytes(batch(*events))
    )
    assert answer.status_code == 200
    return answer.json_body


def to_csv(inputs: list[Path], out: Path) -> str:
    done = CliRunner().invoke(cli, ["json-to-csv", "-o", str(out), *map(str, inputs)])
    assert done.exit_code == 0, done.output
    return out.read_text(encoding="utf-8")


def read_csv(path: Path, select: str = "*", tail: str = "") -> duckdb.DuckDBPyRelation:
    relation = duckdb.sql(f"SELECT {select} FROM read_csv('{path}', header = true) {tail}")
    assert relation is not None
    return relation


def raw_files(root: Path) -> list[Path]:
    return sorted(path for path in (root / "raw").rglob("*") if path.is_file())


@pytest.mark.parametrize(
    "attributes",
    [
        {"A": 1, "a": 2},
        {"Straße": 1, "STRASSE": 2, "straße": 3},
        {"n": {"A": 1}, "N_a": 2},
        {"x": {"y": {"Z": 1}}, "X_Y": {"z": 2}},
    ],
    ids=["top-level", "unicode", "nested-vs-flat", "two-nested"],
)
def test_keys_whose_columns_differ_only_in_case_are_refused(
    client: Client, tmp_path: Path, attributes: dict[str, Any]
) -> None:
    answer = post(client, event(eventId="ok"), event(eventId="clash", metricAttributes=attributes))
    assert answer["accepted"] == 1
    [rejection] = answer["rejected"]
    assert rejection["index"] == 1 and "differ only in letter case" in rejection["error"]


@pytest.mark.parametrize(
    "char",
    [
        "\u200b",
        "\u00ad",
        "\u202e",
        "\ufeff",
        "\u2060",
        "\u0085",
        "\u2028",
        "\u2029",
        "\x1c",
        "\x1d",
        "\x1e",
        "\x0b",
        "\x0c",
        "\r",
    ],
)
def test_keys_with_invisible_or_line_breaking_characters_are_refused(
    client: Client, char: str
) -> None:
    answer = post(client, event(metricAttributes={"a": 1, f"a{char}": 2}))
    [rejection] = answer["rejected"]
    assert f"U+{ord(char):04X}" in rejection["error"]
    assert "line break or invisible format character" in rejection["error"]


def test_case_variants_from_different_events_are_one_column_for_duckdb(
    client: Client, tmp_path: Path
) -> None:
    # The review: keys A and a made DuckDB rename one to attr_a_1, so attr_a gave the
    # other's values.
    post(client, event(eventId="upper", metricAttributes={"A": "from A"}))
    post(client, event(eventId="lower", metricAttributes={"a": "from a"}))
    post(client, event(eventId="nested", metricAttributes={"n": {"X": "nX"}}))
    post(client, event(eventId="flat", metricAttributes={"N_x": "N_x"}))
    out = tmp_path / "out.csv"
    text = to_csv(raw_files(tmp_path / "data"), out)
    header = text.splitlines()[0].split(",")
    assert [c for c in header if c.lower() == "attr_a"] == ["attr_A"]  # the first spelling
    assert [c for c in header if c.lower() == "attr_n_x"] == ["attr_N_x"]
    assert not [c for c in read_csv(out).columns if c.lower().startswith("attr_a_")]
    rows = read_csv(out, "eventId, attr_a, attr_n_x", "ORDER BY eventId").fetchall()
    assert rows == [
        ("flat", None, "N_x"),
        ("lower", "from a", None),
        ("nested", None, "nX"),
        ("upper", "from A", None),
    ]


def test_header_cells_from_raw_files_from_elsewhere_stay_one_line(tmp_path: Path) -> None:
    # Keys the route refuses can still come in raw files written by something else.
    keys = ["a", "a\u200b", "a\u00ad", "b\u0085c", "d\u2028e", "f\u2029g", "h\x1ci", "j\x0bk"]
    line: dict[str, Any] = {"eventId": "e1", "sessionId": "s", "timestamp": 1, "metricName": "m"}
    line["metricAttributes"] = {key: n for n, key in enumerate(keys)}
    source = tmp_path / "elsewhere.ndjson"
    source.write_text(json.dumps(line) + "\n", encoding="utf-8")
    text = to_csv([source], tmp_path / "out.csv")
    assert len(text.splitlines()) == 2  # splitlines() breaks on \x85, \u2028, \x1c, \v...
    header = text.splitlines()[0].split(",")
    shown = [c for c in header if c.startswith("attr_")]
    assert sorted(shown) == sorted(
        [
            "attr_a",
            "attr_a\\u200b",
            "attr_a\\u00ad",
            "attr_b\\u0085c",
            "attr_d\\u2028e",
            "attr_f\\u2029g",
            "attr_h\\u001ci",
            "attr_j\\u000bk",
        ]
    )
    table = read_csv(tmp_path / "out.csv")
    assert len(table.fetchall()) == 1 and len(set(c.lower() for c in table.columns)) == len(header)

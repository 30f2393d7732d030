"""`--bom` and the CSV_BOM stage setting: a UTF-8 byte-order mark that spreadsheets need
(LibreOffice's default import, Excel on Windows) and analysis tools read past."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas
import polars
import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as app_module
from chalicelib.config import Settings
from exporter.cli import cli
from tests.factories import event

BOM = b"\xef\xbb\xbf"
CITY = "Zürich 東京"


def raw_line(**overrides: Any) -> bytes:
    record = {**event(), "serverTimestamp": "2026-11-27T10:00:00.000Z", "device": CITY}
    record.update(overrides)
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "raw" / "2026" / "11" / "27" / "10" / "a.ndjson"
    path.parent.mkdir(parents=True)
    path.write_bytes(raw_line(eventId="a") + raw_line(eventId="b"))
    return tmp_path / "data"


def export(data_dir: Path, out: Path, *flags: str) -> bytes:
    args = ["export", "--date", "2026-11-27", "--source", str(data_dir), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, *flags], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_without_the_flag_there_is_no_bom(data_dir: Path, tmp_path: Path) -> None:
    assert export(data_dir, tmp_path / "plain.csv").startswith(b"timestamp,")


def test_bom_is_the_only_difference(data_dir: Path, tmp_path: Path) -> None:
    plain = export(data_dir, tmp_path / "plain.csv")
    marked = export(data_dir, tmp_path / "marked.csv", "--bom")
    assert marked == BOM + plain


def test_json_to_csv_takes_bom_too(data_dir: Path, tmp_path: Path) -> None:
    source = next((data_dir / "raw").rglob("*.ndjson"))
    out = tmp_path / "one.csv"
    result = CliRunner().invoke(cli, ["json-to-csv", str(source), "-o", str(out), "--bom"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(BOM + b"timestamp,")


def _python_csv(path: Path) -> tuple[list[str], str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    return list(rows[0]), rows[0]["device"]


def _pandas(path: Path) -> tuple[list[str], str]:
    frame = pandas.read_csv(path, dtype=str)
    return list(frame.columns), str(frame["device"][0])


def _polars(path: Path) -> tuple[list[str], str]:
    frame = polars.read_csv(path, infer_schema=False)
    return frame.columns, str(frame["device"][0])


def _duckdb(path: Path) -> tuple[list[str], str]:
    relation = duckdb.read_csv(str(path), all_varchar=True)
    return relation.columns, str(relation.fetchall()[0][relation.columns.index("device")])


@pytest.mark.parametrize("read", [_python_csv, _pandas, _polars, _duckdb])
def test_analysis_tools_read_the_header_past_the_bom(
    data_dir: Path, tmp_path: Path, read: Any
) -> None:
    out = tmp_path / "marked.csv"
    export(data_dir, out, "--bom")
    columns, device = read(out)
    assert columns[0] == "timestamp"
    assert "device" in columns and device == CITY


def test_the_stage_setting_marks_the_lambdas_daily_file(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.from_env({"CSV_BOM": "true"}).csv_bom
    assert not Settings.from_env({}).csv_bom
    body = gzip.compress(raw_line(eventId="a"), mtime=0)
    s3.put_object(Bucket=bucket, Key="raw/2026/11/27/10/a.gz", Body=body)
    monkeypatch.setitem(app_module._clients, "s3", s3)
    marked = dataclasses.replace(app_module.SETTINGS, bucket=bucket, csv_bom=True)
    monkeypatch.setattr(app_module, "SETTINGS", marked)
    with Client(app_module.app, stage_name="dev") as client:
        tick = client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        tick["time"] = "2026-11-28T00:15:00Z"
        client.lambda_.invoke("build_daily_csv", tick)
    daily = s3.get_object(Bucket=bucket, Key="csv/2026-11-27_combined.csv")["Body"].read()
    assert daily.startswith(BOM + b"timestamp,")
    assert CITY in daily.decode("utf-8-sig")

"""python -m exporter, through click's CliRunner, on local folders and a moto S3."""

from __future__ import annotations

import csv
import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from tests.conftest import REPO_ROOT
from tests.factories import event


def raw_line(**overrides: Any) -> bytes:
    record = {**event(), "serverTimestamp": "2026-11-27T10:00:00.000Z"}
    record.update(overrides)
    return json.dumps(record).encode() + b"\n"


def write_raw(root: Path, key: str, *lines: bytes, compress: bool = False) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if compress else data)


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "analytics_data"
    write_raw(
        root, "raw/2026/11/27/10/a.gz", raw_line(eventId="a"), raw_line(eventId="b"), compress=True
    )
    write_raw(
        root,
        "raw/2026/11/27/11/b.ndjson",
        raw_line(eventId="b"),
        b"oops\n",
        raw_line(eventId="c", metricAttributes={"q": "=HYPERLINK()"}),
    )
    write_raw(root, "raw/2026/11/28/00/c.ndjson", raw_line(eventId="d"))
    return root


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_export_one_day_from_a_directory(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = invoke("export", "--date", "2026-11-27", "--source", str(data_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert [r["eventId"] for r in rows] == ["a", "b", "c"]
    assert rows[2]["attr_q"] == "'=HYPERLINK()"
    assert f"wrote 3 rows to {out}" in result.output
    assert "1 duplicate(s) dropped; 1 bad line(s) sent to" in result.output
    errors = out.with_name("out.errors.jsonl").read_text().splitlines()
    assert json.loads(errors[0])["content"] == "oops"


def test_default_output_is_beside_the_source_not_under_the_working_directory(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["export", "--date", "2026-11-28", "--source", str(data_dir)])
    assert result.exit_code == 0, result.output
    out = data_dir / "csv" / "2026-11-28_combined.csv"
    assert [r["eventId"] for r in rows_of(out)] == ["d"]
    assert f"wrote 1 rows to {out}" in result.output
    assert list(elsewhere.iterdir()) == []  # no ./analytics_data made here


def test_source_defaults_to_analytics_data_dir_then_analytics_data(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))
    result = CliRunner().invoke(cli, ["export", "--date", "2026-11-28"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "csv" / "2026-11-28_combined.csv").is_file()
    monkeypatch.delenv("ANALYTICS_DATA_DIR")
    monkeypatch.chdir(tmp_path)  # holds analytics_data/
    result = CliRunner().invoke(cli, ["export", "--date", "2026-11-27"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 rows to analytics_data/csv/2026-11-27_combined.csv" in result.output
    assert (tmp_path / "analytics_data/csv/2026-11-27_combined.errors.jsonl").is_file()
    monkeypatch.chdir(tmp_path / "analytics_data")
    result = CliRunner().invoke(cli, ["export", "--date", "2026-11-27"])
    assert result.exit_code == 2 and "analytics_data is not a directory" in result.output


def test_out_in_a_missing_folder_outside_the_source_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reprots" / "day.csv"  # a typo
    result = CliRunner().invoke(
        cli, ["export", "--date", "2026-11-27", "--source", str(data_dir), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert f"folder {out.parent} does not exist" in result.output
    assert not out.parent.exists()
    inside = data_dir / "exports" / "day.csv"  # inside the folder being exported: made
    result = invoke(
        "export", "--date", "2026-11-27", "--source", str(data_dir), "--out", str(inside)
    )
    assert result.exit_code == 0 and inside.is_file()
    result = CliRunner().invoke(
        cli, ["json-to-csv", str(inside), "-o", str(tmp_path / "nope" / "x.csv")]
    )
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_csv_and_errors_files_get_the_usual_permissions(
    data_dir: Path, tmp_path: Path, umask: int, mode: int
) -> None:
    old = os.umask(umask)
    try:
        result = invoke("export", "--date", "2026-11-27", "--source", str(data_dir))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for name in ("2026-11-27_combined.csv", "2026-11-27_combined.errors.jsonl"):
        assert stat.S_IMODE((data_dir / "csv" / name).stat().st_mode) == mode, name


def test_export_a_range_deduplicates_across_days(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "range.csv"
    result = invoke(
        "export",
        "--date",
        "2026-11-27",
        "--to-date",
        "2026-11-28",
        "--source",
        str(data_dir),
        "--out",
        str(out),
        "--no-neutralize",
    )
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert [r["eventId"] for r in rows] == ["a", "b", "c", "d"]
    assert rows[2]["attr_q"] == "=HYPERLINK()"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01"], "is not a date like"),
        (["--date", "yesterday"], "is not a date like"),
        (["--date", "2026-11-28", "--to-date", "2026-11-27"], "--to-date is before --date"),
        (["--date", "2026-01-01"], "no raw events for 2026-01-01"),
    ],
)
def test_export_errors_are_one_clear_line(data_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["export", *args, "--source", str(data_dir)])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_source_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["export", "--date", "2026-11-27", "--source", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2 and "is not a directory" in result.output


# --- S3 ------------------------------------------------------------------------------------


def test_export_from_s3_with_a_prefix(
    moto_endpoint: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(
        Bucket=bucket,
        Key="team/raw/2026/11/27/10/x.gz",
        Body=gzip.compress(raw_line(eventId="s3-a") + raw_line(eventId="s3-b")),
    )
    out = tmp_path / "s3.csv"
    result = invoke(
        "export",
        "--date",
        "2026-11-27",
        "--source",
        f"s3://{bucket}/team",
        "--endpoint-url",
        moto_endpoint,
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert [r["eventId"] for r in rows_of(out)] == ["s3-a", "s3-b"]


def test_export_from_s3_without_out_writes_in_the_working_directory(
    moto_endpoint: str, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=bucket, Key="raw/2026/11/27/10/", Body=b"")  # a console's "folder"
    s3.put_object(Bucket=bucket, Key="raw/2026/11/27/10/x.gz", Body=gzip.compress(raw_line()))
    monkeypatch.chdir(tmp_path)
    result = invoke(
        "export",
        "--date",
        "2026-11-27",
        "--source",
        f"s3://{bucket}",
        "--endpoint-url",
        moto_endpoint,
    )
    assert result.exit_code == 0, result.output
    assert "wrote 1 rows to 2026-11-27_combined.csv" in result.output
    assert "from 1 raw object(s)" in result.output  # the folder key is not read
    assert (tmp_path / "2026-11-27_combined.csv").is_file()


def test_missing_bucket_is_named(moto_endpoint: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "export",
            "--date",
            "2026-11-27",
            "--source",
            "s3://no-such-bucket",
            "--endpoint-url",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 1
    assert "bucket no-such-bucket does not exist" in result.output


@pytest.mark.usefixtures("no_aws_credentials")
def test_no_credentials_is_explained(moto_endpoint: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["export", "--date", "2026-11-27", "--source", "s3://b", "--endpoint-url", moto_endpoint],
    )
    assert result.exit_code == 1
    assert "no AWS credentials found" in result.output


@pytest.mark.usefixtures("no_aws_credentials")
def test_unknown_profile_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    result = CliRunner().invoke(cli, ["export", "--date", "2026-11-27", "--source", "s3://b"])
    assert result.exit_code == 1
    assert "could not be found" in result.stderr and "AWS_PROFILE" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- json-to-csv ----------------------------------------------------------------------------


def test_json_to_csv_converts_any_raw_files(tmp_path: Path) -> None:
    write_raw(tmp_path, "one.gz", raw_line(eventId="1"), compress=True)
    write_raw(tmp_path, "two.json", raw_line(eventId="2") + b"[broken\n" + raw_line(eventId="1"))
    out = tmp_path / "out.csv"
    result = invoke(
        "json-to-csv", str(tmp_path / "one.gz"), str(tmp_path / "two.json"), "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert [r["eventId"] for r in rows_of(out)] == ["1", "2"]
    assert "1 duplicate(s) dropped; 1 bad line(s) sent to" in result.output
    [bad] = (tmp_path / "out.errors.jsonl").read_text().splitlines()
    assert json.loads(bad)["content"] == "[broken"


def test_json_to_csv_of_a_file_with_no_events_fails_with_one_line(tmp_path: Path) -> None:
    readme = REPO_ROOT / "README.md"
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(cli, ["json-to-csv", str(readme), "-o", str(out)])
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: nothing converted: all ") and "not events" in line
    assert not out.exists()


def test_export_of_a_day_of_only_bad_lines_fails(tmp_path: Path) -> None:
    write_raw(tmp_path, "raw/2026/11/27/10/a.ndjson", b"oops\n", b"[1, 2]\n")
    out = tmp_path / "x.csv"
    result = invoke("export", "--date", "2026-11-27", "--source", str(tmp_path), "--out", str(out))
    assert result.exit_code == 1
    assert "nothing converted: all 2 line(s) of 1 file(s)" in result.output
    assert not out.exists()


def test_json_to_csv_missing_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["json-to-csv", str(tmp_path / "x.gz"), "-o", "o.csv"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_runs_as_python_dash_m_without_a_progress_bar_on_pipes(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "export",
            "--date",
            "2026-11-27",
            "--source",
            str(data_dir),
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    assert "wrote 3 rows" in done.stdout


def test_a_deeply_nested_line_is_a_bad_line_not_a_traceback(tmp_path: Path) -> None:
    raw = tmp_path / "deep.ndjson"
    deep = b'{"eventId": "deep", "metricAttributes": ' + b'{"a": ' * 990 + b"1" + b"}" * 991
    raw.write_bytes(json.dumps(event(eventId="ok")).encode() + b"\n" + deep + b"\n")
    out = tmp_path / "out.csv"
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "json-to-csv", str(raw), "-o", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "wrote 1 rows" in result.stdout and "1 bad line(s)" in result.stdout
    [bad] = [json.loads(line) for line in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    assert bad["line"] == 2


def test_max_columns_puts_the_rest_in_the_overflow_column(tmp_path: Path) -> None:
    raw = tmp_path / "wide.ndjson"
    wide = event(metricAttributes={f"k{i}": i for i in range(40)})
    raw.write_text(json.dumps(wide) + "\n")
    out = tmp_path / "out.csv"
    result = invoke("json-to-csv", str(raw), "-o", str(out), "--max-columns", "20")
    assert result.exit_code == 0 and "_overflow" in result.output
    with out.open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert len(row) == 20 and json.loads(row["_overflow"])

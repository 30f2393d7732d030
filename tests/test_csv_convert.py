"""The two-pass engine: round trips, worker processes, the fast row writer."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.csv.convert import convert
from chalicelib.csv.read import BadLine
from tests.csv_helpers import ndjson, run, source

# --- round trip ---------------------------------------------------------------------------

keys = st.from_regex(r"[a-z]{1,6}", fullmatch=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
attributes = st.recursive(
    st.dictionaries(keys, scalars, max_size=4),
    lambda children: st.dictionaries(keys, st.one_of(scalars, children), max_size=3),
    max_leaves=8,
)
events = st.fixed_dictionaries(
    {
        "timestamp": st.integers(min_value=0, max_value=2**45),
        "sessionId": st.text(min_size=1, max_size=20),
        "metricName": st.text(min_size=1, max_size=20),
        "value": st.one_of(
            st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-1000, 1000)
        ),
        "demoContentId": st.one_of(st.none(), st.text(max_size=20)),
        "device": st.text(max_size=10),
        "metricAttributes": attributes,
    }
)


def expected_cells(record: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: dict[str, Any]) -> None:
        for key, item in value.items():
            if isinstance(item, dict):
                walk(f"{prefix}{key}_", item)
            elif item is not None:
                flat[prefix + key] = item

    for key, value in record.items():
        if key == "metricAttributes":
            walk("attr_", value)
        elif value is not None:
            flat[key] = value
    return flat


def read_back(cell: str, original: Any) -> Any:
    if isinstance(original, bool):
        return cell == "true"
    if isinstance(original, int):
        return int(cell)
    if isinstance(original, float):
        return float(cell)
    return cell


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(events, min_size=1, max_size=8))
def test_round_trip_events_to_ndjson_to_csv_and_back(records: list[dict[str, Any]]) -> None:
    for index, record in enumerate(records):
        record["eventId"] = f"event-{index}"
    rows, _, report, bad = run(source("s", ndjson(*records)), neutralize=False)
    assert bad == [] and report.rows == len(records)
    for record, row in zip(records, rows, strict=True):
        flat = expected_cells(record)
        for column, cell in row.items():
            if column in flat:
                assert read_back(cell, flat[column]) == flat[column], column
            else:
                assert cell == "", column


# --- parallel reading ---------------------------------------------------------------------


def test_worker_processes_give_the_same_bytes(tmp_path: Path) -> None:
    from functools import partial

    from chalicelib.storage.local import LocalStore

    files = {
        "a.gz": gzip.compress(
            ndjson(
                {"eventId": "1", "metricAttributes": {"x": "comma, here"}},
                {"eventId": "2", "note": "two\nlines"},
            )
            + b"not json\n"
        ),
        "b.ndjson": ndjson({"eventId": "1", "late": 1}, {"eventId": "3", "n": 1.5}),
        "c.ndjson": ndjson(*[{"eventId": str(i % 50), "q": '"q"'} for i in range(200)]),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    store = LocalStore(tmp_path)
    sources = [(name, partial(store.open_read, name)) for name in files]
    outputs = []
    for jobs in (1, 2):
        out = io.BytesIO()
        bad: list[BadLine] = []
        report = convert(sources, out, jobs=jobs, on_bad_line=bad.append)
        outputs.append((out.getvalue(), report.rows, report.duplicates, bad))
    assert outputs[0] == outputs[1]
    text, rows, duplicates, bad = outputs[0]
    assert rows == 50 and duplicates == 154 and len(bad) == 1
    parsed = list(csv.DictReader(io.StringIO(text.decode(), newline="")))
    assert parsed[1]["note"] == "two\nlines" and parsed[0]["attr_x"] == "comma, here"
    assert parsed[0]["late"] == "" and parsed[2]["late"] == ""


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.just("")),
        min_size=2,
        max_size=12,
    )
)
def test_fast_row_writer_matches_csv_module(values: list[Any]) -> None:
    from chalicelib.csv.spool import csv_row

    expected = io.StringIO()
    csv.writer(expected, lineterminator="").writerow(values)
    assert csv_row(values) == expected.getvalue()


_CELL = st.one_of(
    st.sampled_from(["plain", "two\nlines", "crlf\r\nin cell", "a, b", 'q"q', "", "=1"]),
    st.integers(-5, 5),
)
_RECORD = st.fixed_dictionaries(
    {"eventId": st.integers(0, 30).map(str), "sessionId": st.sampled_from(["s1", "s2"])},
    optional={
        "note": _CELL,
        "late": _CELL,
        "metricAttributes": st.dictionaries(st.sampled_from(["a", "b", "c"]), _CELL, max_size=3),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.lists(st.lists(_RECORD, min_size=1, max_size=40), min_size=1, max_size=3),
    read_bytes=st.sampled_from([16, 64, 1 << 20]),
    max_columns=st.sampled_from([6, 1000]),
    compress=st.booleans(),
)
def test_block_copy_writes_what_row_by_row_writes(
    sources: list[list[dict[str, Any]]], read_bytes: int, max_columns: int, compress: bool
) -> None:
    """Pass 2's fast path (runs of rows copied whole, tall rows joined across blocks) gives
    the bytes of the reference path that formats every row on its own: line breaks in
    cells, duplicates, columns that appear late or overflow, blocks of any size, a plain
    or a gzip spool."""
    from unittest import mock

    from chalicelib.csv import convert as convert_module

    named = [source(f"s{index}", ndjson(*records)) for index, records in enumerate(sources)]
    outputs = []
    for reference in (False, True):
        out = io.BytesIO()
        with mock.patch.object(convert_module, "READ_BYTES", read_bytes):
            if reference:
                with mock.patch.object(
                    convert_module._SourceReplay,
                    "in_blocks",
                    convert_module._SourceReplay.row_by_row,
                ):
                    report = convert(named, out, max_columns=max_columns, compress_spool=compress)
            else:
                report = convert(named, out, max_columns=max_columns, compress_spool=compress)
        outputs.append((out.getvalue(), report.rows, report.duplicates))
    assert outputs[0] == outputs[1]

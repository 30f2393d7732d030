"""The column budget: a file has at most ``max_columns`` columns, the keys past it go into
one JSON overflow column, and no value is lost, whatever the sources hold."""

from __future__ import annotations

import contextlib
import io
import json
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.csv.columns import FIXED_COLUMNS, OVERFLOW_COLUMN, flatten_record
from chalicelib.csv.convert import convert
from tests.csv_helpers import ndjson, run, source


def values_of(row: dict[str, str]) -> dict[str, str]:
    """A row's cells, the overflow's included: what a reader can recover."""
    cells = {key: value for key, value in row.items() if value and key != OVERFLOW_COLUMN}
    if row.get(OVERFLOW_COLUMN):
        overflow = json.loads(row[OVERFLOW_COLUMN])
        assert not set(overflow) & set(cells), "a key is both a column and in the overflow"
        cells.update(overflow)
    return cells


def expected(record: dict[str, Any]) -> dict[str, str]:
    return flatten_record(json.loads(json.dumps(record)))


def test_a_wide_source_keeps_its_first_columns_and_overflows_the_rest() -> None:
    records = [
        {
            "eventId": f"e{n}",
            "sessionId": "s",
            "metricAttributes": {f"k{n}_{i}": i for i in range(30)},
        }
        for n in range(20)
    ]
    rows, header, report, _ = run(source("wide", ndjson(*records)), max_columns=50)
    assert len(header) == 50 and header[-1] == OVERFLOW_COLUMN
    assert header[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert report.overflowed
    # The first record's keys got columns; later ones are in the overflow.
    assert "attr_k0_0" in header and "attr_k19_0" not in header
    assert [values_of(row) for row in rows] == [expected(r) for r in records]


def test_no_overflow_column_when_everything_fits() -> None:
    records = [{"eventId": "a", "metricAttributes": {"x": 1}}]
    _, header, report, _ = run(source("s", ndjson(*records)), max_columns=12)
    assert OVERFLOW_COLUMN not in header and not report.overflowed


def test_columns_found_in_most_objects_win_over_a_burst_of_one_off_keys() -> None:
    """An attacker's burst of junk keys early in the day must not push out the keys that
    every object has: those are promoted back out of the burst object's overflow."""
    common = {"action": "click", "button": "ok"}
    junk = [
        {
            "eventId": f"j{n}",
            "sessionId": "x",
            "metricAttributes": {f"junk{n}_{i}": i for i in range(10)},
        }
        for n in range(10)
    ]
    first = [*junk, {"eventId": "late", "sessionId": "s", "metricAttributes": common}]
    others = [
        source(
            f"obj{n}", ndjson({"eventId": f"o{n}", "sessionId": "s", "metricAttributes": common})
        )
        for n in range(3)
    ]
    rows, header, _, _ = run(source("burst", ndjson(*first)), *others, max_columns=20)
    assert {"attr_action", "attr_button"} <= set(header) and len(header) <= 20
    late = next(row for row in rows if row["eventId"] == "late")
    assert late["attr_action"] == "click" and "attr_action" not in (late[OVERFLOW_COLUMN] or "{}")
    every_record = first + [
        {"eventId": f"o{n}", "sessionId": "s", "metricAttributes": common} for n in range(3)
    ]
    assert [values_of(row) for row in rows] == [expected(r) for r in every_record]


def test_event_id_always_keeps_its_column() -> None:
    records = [
        {"sessionId": "s", "metricAttributes": {f"k{i}": i for i in range(40)}},
        {"sessionId": "s", "eventId": "dup"},
        {"sessionId": "s", "eventId": "dup"},
    ]
    rows, header, report, _ = run(source("s", ndjson(*records)), max_columns=20)
    assert "eventId" in header and len(header) <= 20
    assert report.duplicates == 1 and len(rows) == 2


def test_workers_give_the_same_bytes_with_an_overflow(tmp_path: Path) -> None:
    paths = []
    for n in range(4):
        records = [
            {
                "eventId": f"{n}-{i}",
                "sessionId": "s",
                "metricAttributes": {f"k{n}_{i}_{j}": j for j in range(8)},
            }
            for i in range(30)
        ]
        path = tmp_path / f"raw-{n}.ndjson"
        path.write_bytes(ndjson(*records))
        paths.append(path)
    outputs = []
    for jobs in (1, 2):
        out = io.BytesIO()
        convert(
            [(str(path), partial(path.open, "rb")) for path in paths],  # type: ignore[misc]
            out,
            max_columns=40,
            jobs=jobs,
        )
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] and OVERFLOW_COLUMN.encode() in outputs[0]


keys = st.sampled_from([f"k{i}" for i in range(40)])
records = st.lists(
    st.fixed_dictionaries(
        {
            "eventId": st.uuids().map(str),
            "sessionId": st.just("s"),
            "metricAttributes": st.dictionaries(
                keys, st.integers(-5, 5) | st.text(max_size=4), max_size=8
            ),
        },
        optional={"ctx": st.text(max_size=3)},
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=4), st.integers(min_value=11, max_value=30))
def test_every_value_is_kept_in_its_column_or_the_overflow(
    sources: list[list[dict[str, Any]]], max_columns: int
) -> None:
    made = [source(f"s{n}", ndjson(*items)) for n, items in enumerate(sources)]
    rows, header, _, _ = run(*made, max_columns=max_columns)
    assert len(header) <= max_columns
    every_record = [record for items in sources for record in items]
    assert [values_of(row) for row in rows] == [expected(r) for r in every_record]


def test_memory_holds_one_header_not_one_per_new_column() -> None:
    """Each record adds columns (the worst case for header copies); the budget caps them."""
    records = [
        {
            "eventId": f"e{n}",
            "sessionId": "s",
            "metricAttributes": {f"k{n}_{i}": i for i in range(100)},
        }
        for n in range(300)
    ]
    out = io.BytesIO()
    report = convert([("s", lambda: contextlib.nullcontext(io.BytesIO(ndjson(*records))))], out)
    assert len(report.columns) == 1000 and report.rows == 300


def test_a_records_own_overflow_key_goes_into_the_overflow_under_its_name() -> None:
    """A literal _overflow key (raw lines from elsewhere) is a column of its own: never
    taken for the overflow cell, lost, or promoted into columns, and the export goes on."""
    first = {"eventId": "1", "sessionId": "s", "a": 1, "b": 2, "c": 3}
    others = [
        {"eventId": "2", "sessionId": "s", "_overflow": "hello"},
        {"eventId": "3", "sessionId": "s", "_overflow": '{"a": "X"}', "d": 4},
    ]
    sources = [source("one", ndjson(first, *others)), source("two", ndjson({"eventId": "4"}))]
    rows, header, _, _ = run(*sources, max_columns=12)
    assert header[-1] == OVERFLOW_COLUMN and header.count(OVERFLOW_COLUMN) == 1
    by_id = {row["eventId"]: values_of(row) for row in rows}
    assert by_id["2"][OVERFLOW_COLUMN] == "hello"
    assert by_id["3"][OVERFLOW_COLUMN] == '{"a": "X"}' and by_id["3"].get("a") is None
    assert by_id["3"]["d"] == "4"

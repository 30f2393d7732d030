"""Reading raw objects: gzip or plain, NDJSON or concatenated, bad lines kept."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from typing import Any

import pytest

from chalicelib.csv.read import MAX_LINE_BYTES, iter_json_objects
from tests.csv_helpers import ndjson, run, source

# --- reading ------------------------------------------------------------------------------

READ_CASES = [
    pytest.param(b'{"a":1}\n{"a":2}\n', [1, 2], id="ndjson"),
    pytest.param(b'{"a":1}\n{"a":2}', [1, 2], id="no-final-newline"),
    pytest.param(b'{"a":1}{"a":2}{"a":3}', [1, 2, 3], id="concatenated-no-delimiter"),
    pytest.param(b'{"a":1} {"a":2}\n\n{"a":3}\r\n', [1, 2, 3], id="mixed-whitespace"),
    pytest.param(b"", [], id="empty-object"),
]


@pytest.mark.parametrize(("data", "values"), READ_CASES)
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_reads_plain_or_gzip_ndjson_and_concatenated(
    data: bytes, values: list[int], compressed: bool
) -> None:
    payload = gzip.compress(data) if compressed else data
    found = [v["a"] for _, v, _ in iter_json_objects(io.BytesIO(payload), "s")]
    assert found == values


def test_numbers_beyond_64_bits_stay_exact_and_big_floats_stay_floats() -> None:
    line = (
        b'{"eventId":"a","n":99999999999999999999999,"f":1e300,'
        b'"metricAttributes":{"m":-99999999999999999999,"g":-2.5e19}}\n'
    )
    rows, *_ = run(source("s", line))
    [row] = rows
    assert row["n"] == "99999999999999999999999"
    assert row["attr_m"] == "-99999999999999999999"
    assert float(row["f"]) == 1e300 and float(row["attr_g"]) == -2.5e19


def test_truncated_gzip_keeps_what_was_read_and_reports_the_rest() -> None:
    data = gzip.compress(ndjson(*[{"eventId": f"e{i}", "pad": "x" * 50} for i in range(2000)]))
    rows, _, report, bad = run(source("cut.gz", data[: len(data) // 2]))
    assert 0 < len(rows) < 2000 and report.bad_lines == 1
    assert "truncated" in bad[0].reason and bad[0].source == "cut.gz"


def test_multi_member_gzip_is_read_whole() -> None:
    payload = gzip.compress(b'{"a":1}\n') + gzip.compress(b'{"a":2}\n')
    rows, *_ = run(source("s", payload))
    assert len(rows) == 2


def test_megabytes_of_concatenated_objects_without_newline() -> None:
    records = [{"eventId": f"e{i}", "pad": "x" * 300} for i in range(12_000)]
    data = b"".join(json.dumps(r).encode() for r in records)
    assert len(data) > 3 * MAX_LINE_BYTES
    rows, _, report, bad = run(source("s", data))
    assert bad == [] and report.rows == 12_000
    assert [r["eventId"] for r in rows[:3]] == ["e0", "e1", "e2"]


BAD_LINES = [
    pytest.param(b"not json", "not JSON", id="garbage"),
    pytest.param(b"[1, 2]", "not a JSON object", id="array"),
    pytest.param(b"42", "not a JSON object", id="number"),
    pytest.param(b'{"a": NaN}', "not JSON", id="nan"),
    pytest.param(b'{"a": 1', "not JSON", id="truncated"),
    pytest.param(b'{"a": "\xff"}', "not UTF-8", id="not-utf8"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_a_bad_line_is_reported_and_the_rest_converts(line: bytes, reason: str) -> None:
    data = ndjson({"eventId": "before"}) + line + b"\n" + ndjson({"eventId": "after"})
    rows, _, report, bad = run(source("raw/x.gz", data))
    assert [r["eventId"] for r in rows] == ["before", "after"]
    assert report.bad_lines == 1
    [only] = bad
    assert only.source == "raw/x.gz" and only.line == 2 and reason in only.reason
    assert only.content


def test_garbage_after_good_objects_on_one_line_keeps_the_good_ones() -> None:
    rows, _, _, bad = run(source("s", b'{"eventId":"a"}{"eventId":"b"}oops\n'))
    assert [r["eventId"] for r in rows] == ["a", "b"]
    assert bad[0].content == "oops"


# --- odd input found in review: none of it may sink a file ---------------------------------


@pytest.mark.parametrize(
    "first",
    [b"{}", b'{"metricAttributes": null}', b'{"metricAttributes": {}}', b'{"a": {}}'],
)
def test_a_record_with_no_cells_first_in_a_source(first: bytes) -> None:
    rows, header, report, bad = run(
        source("a", first + b"\n" + ndjson({"eventId": "x"})),
        source("b", ndjson({"eventId": "y", "late": 1})),
    )
    assert bad == [] and report.rows == 3
    assert [r["eventId"] for r in rows] == ["", "x", "y"]
    assert rows[2]["late"] == "1" and rows[0]["timestamp"] == ""
    assert all(len(r) == len(header) for r in rows)


def test_lines_orjson_refuses_to_write_still_convert() -> None:
    data = (
        b'"\\ud800"\n'
        b'{"eventId": "a", "s": ["\\ud800"]}\n'
        b'{"eventId": "b", "a": 1e19, "x": [100000000000000000000000]}\n'
        b'{"eventId": "c", "x": [100000000000000000000000, {"y": -99999999999999999999}]}\n'
    )
    rows, _, report, bad = run(source("s", data))
    assert [r["eventId"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["s"] == '["\\\\ud800"]' or "ud800" in rows[0]["s"]
    assert rows[1]["x"] == "[100000000000000000000000]"
    assert rows[2]["x"] == '[100000000000000000000000,{"y":-99999999999999999999}]'
    assert report.bad_lines == 1 and bad[0].reason == "not a JSON object"


def test_a_number_that_overflows_is_a_bad_line_not_infinity() -> None:
    rows, _, report, bad = run(
        source("s", b'{"eventId": "a", "v": 1e999}\n' + ndjson({"eventId": "b"}))
    )
    assert [r["eventId"] for r in rows] == ["b"] and report.bad_lines == 1
    assert "1e999" in bad[0].reason


@pytest.mark.parametrize("count", [10_000, 30_000], ids=["one-line", "longer-than-a-line-read"])
def test_decoding_resumes_after_a_bad_object_among_concatenated_ones(count: int) -> None:
    objects = [json.dumps({"eventId": f"e{i}", "pad": "x" * 40}).encode() for i in range(count)]
    objects.insert(count // 2, b"{oops}")
    data = b"".join(objects)
    _, _, report, bad = run(source("s", data))
    assert report.rows == count
    assert [b.content for b in bad] == ["{oops}"]


# --- bounded work: nesting, decompression bombs, blank lines, floods of bad lines ----------


def test_a_line_nested_a_thousand_levels_is_a_bad_line_and_the_rest_converts() -> None:
    deep = b'{"eventId": "deep", "metricAttributes": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001
    deep_list = b'{"eventId": "list", "x": ' + b"[" * 900 + b"]" * 900 + b"}"
    good = ndjson({"eventId": "ok"})
    rows, _, report, bad = run(source("s", good + deep + b"\n" + deep_list + b"\n" + good))
    assert [r["eventId"] for r in rows] == ["ok"]
    assert report.duplicates == 1 and report.bad_lines == 2
    assert {b.line for b in bad} == {2, 3}


def test_objects_nested_past_the_flatten_depth_become_one_json_cell() -> None:
    value: Any = {"leaf": 1}
    for _ in range(40):
        value = {"n": value}
    rows, header, _, _ = run(source("s", ndjson({"eventId": "e", "metricAttributes": value})))
    [column] = [c for c in header if c.startswith("attr_")]
    assert column == "attr_" + "_".join(["n"] * 32)
    rest = json.loads(rows[0][column])  # the 8 levels below the depth limit, as JSON
    for _ in range(8):
        rest = rest["n"]
    assert rest == {"leaf": 1}


def test_a_gzip_bomb_stops_at_the_decompression_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import chalicelib.csv.read as read

    monkeypatch.setattr(read, "EXPANSION_FLOOR_BYTES", 1024 * 1024)
    bomb = gzip.compress(ndjson({"eventId": "before"}) + b"\x00" * (64 * 1024 * 1024), 9)
    assert len(bomb) < 100_000
    rows, _, _, bad = run(source("bomb", bomb), source("next", ndjson({"eventId": "after"})))
    assert [r["eventId"] for r in rows] == ["before", "after"]
    assert any("decompression bomb" in b.reason for b in bad)
    kept = sum(len(b.content) for b in bad)
    assert kept < 12 * 1024 * 1024  # bounded by the budget, not by the bomb


def test_bad_lines_are_kept_up_to_a_bound_then_counted() -> None:
    from chalicelib.csv.spool import MAX_BAD_LINES_KEPT

    data = b"not json\n" * (MAX_BAD_LINES_KEPT + 500) + ndjson({"eventId": "ok"})
    rows, _, report, bad = run(source("flood", data))
    assert len(rows) == 1 and report.bad_lines == MAX_BAD_LINES_KEPT + 500
    assert len(bad) == MAX_BAD_LINES_KEPT + 1
    assert bad[-1].reason.startswith("500 more bad line(s) in this object were counted")


def test_line_numbers_stay_exact_across_runs_of_blank_lines() -> None:
    data = b"\n" * 5 + b'{"a":1}\n' + b"\n" * 3_000_000 + b"bad\n\n" + b'{"a":2}'
    found = [
        (number, value if isinstance(value, dict) else value.reason[:7])
        for number, value, _ in iter_json_objects(io.BytesIO(gzip.compress(data)), "s")
    ]
    assert found == [(6, {"a": 1}), (3_000_007, "not JSO"), (3_000_009, {"a": 2})]


def test_a_file_of_blank_lines_is_read_in_bounded_memory() -> None:
    """Runs of newlines are skipped as bytes: never a list of one empty line per newline
    (a 1 MiB chunk of them would be a million-entry list, every chunk)."""
    data = gzip.compress(b"\n" * (32 * 1024 * 1024) + b'{"a":1}\n')
    tracemalloc.start()
    try:
        found = list(iter_json_objects(io.BytesIO(data), "s"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(number, value) for number, value, _ in found] == [(32 * 1024 * 1024 + 1, {"a": 1})]
    assert peak < 6 * 1024 * 1024  # a few chunks of bytes, no per-line objects

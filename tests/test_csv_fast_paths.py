"""The exporter's fast paths agree with plain reference paths, byte for byte: lines read a
chunk at a time, cells gathered by one dict merge and joined in C, the dedupe key's
fingerprint inlined, drop lists held in memory then spilled in runs, pass 2's block
copies. The reference converts each record on its own with ``flatten_record`` and
``csv.writer`` and deduplicates with a set."""

from __future__ import annotations

import copy
import csv
import io
import json
from array import array
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.csv import dedupe, read, spool
from chalicelib.csv.columns import flatten_cells, flatten_record, order_columns
from chalicelib.csv.convert import convert
from tests.csv_helpers import source

_TEXT = st.one_of(
    st.sampled_from(
        ["plain", "a, b", 'q"q', "two\nlines", "cr\ronly", "crlf\r\nin", "", "=1+1", " -2", "ü"]
    ),
    st.text(max_size=8),
)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),  # past 64 bits: the exact re-read
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
_ATTRIBUTES = st.dictionaries(
    st.sampled_from(["action", "button", "path", "depth"]),
    st.one_of(
        _SCALAR,
        st.lists(_SCALAR, max_size=3),
        st.dictionaries(st.sampled_from(["x", "y"]), _SCALAR, max_size=2),
    ),
    max_size=4,
)
_RECORD = st.fixed_dictionaries(
    {
        "sessionId": st.one_of(st.sampled_from(["s1", "s2", "ü"]), st.integers(0, 2)),
        "eventId": st.one_of(st.sampled_from(["e1", "e2", "e3", ""]), st.integers(0, 3)),
        "timestamp": st.integers(0, 2**45),
    },
    optional={
        "note": _TEXT,
        "late": _SCALAR,
        "metricAttributes": _ATTRIBUTES,
        # A nested top-level object: flatten's general path, after cells made as text.
        "context": st.dictionaries(st.sampled_from(["x", "y"]), _SCALAR, max_size=2),
        "after": _SCALAR,
    },
)


def reference_csv(sources: list[list[dict[str, Any]]]) -> tuple[bytes, int]:
    """Every record formatted on its own, later copies of a typed key left out."""
    columns: set[str] = set()
    rows: list[dict[str, str]] = []
    seen: set[tuple[Any, ...]] = set()
    for records in sources:
        for record in records:
            columns.update(flatten_cells(copy.deepcopy(record), True))
            session_id, event_id = record.get("sessionId"), record.get("eventId")
            key = (type(session_id), session_id, type(event_id), event_id)
            if event_id not in (None, "") and key in seen:
                continue
            seen.add(key)
            rows.append(flatten_record(copy.deepcopy(record)))
    header = order_columns(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([row.get(column, "") for column in header] for row in rows)
    return out.getvalue().encode("utf-8"), len(rows)


def ndjson_with_blanks(records: list[dict[str, Any]], blanks: list[int]) -> bytes:
    lines = []
    for record, gap in zip(records, blanks * len(records), strict=False):
        lines.append(b"\n" * gap + json.dumps(record).encode() + b"\n")
    return b"".join(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.lists(st.lists(_RECORD, min_size=1, max_size=30), min_size=1, max_size=3),
    blanks=st.lists(st.sampled_from([0, 0, 0, 1, 3]), min_size=1, max_size=5),
    read_bytes=st.sampled_from([7, 64, 1 << 20]),
    drops_held=st.sampled_from([1, 3, 1 << 16]),
    # Triples held per partition before a spill (pass 1 inlines the add, and its spill).
    spill_entries=st.sampled_from([3, 9, dedupe.SPILL_ENTRIES]),
)
def test_the_export_is_byte_for_byte_the_reference_conversion(
    sources: list[list[dict[str, Any]]],
    blanks: list[int],
    read_bytes: int,
    drops_held: int,
    spill_entries: int,
) -> None:
    named = [
        source(f"s{index}", ndjson_with_blanks(records, blanks))
        for index, records in enumerate(sources)
    ]
    out = io.BytesIO()
    with (
        mock.patch.object(read, "READ_BYTES", read_bytes),
        mock.patch.object(dedupe, "DROPS_HELD", drops_held),
        mock.patch.object(dedupe, "MAX_RUNS", 2),
        mock.patch.object(dedupe, "SPILL_ENTRIES", spill_entries),
        mock.patch.object(spool, "SPILL_ENTRIES", spill_entries),
    ):
        report = convert(named, out)
    expected, kept = reference_csv(sources)
    assert out.getvalue() == expected
    assert (report.rows, report.duplicates) == (kept, sum(map(len, sources)) - kept)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.just(b""),
            st.just(b"  "),
            st.just(b"\r"),
            st.integers(0, 10**6).map(
                lambda n: json.dumps({"n": n, "pad": "x" * (n % 40)}).encode()
            ),
        ),
        max_size=40,
    ),
    read_bytes=st.sampled_from([1, 5, 33, 1 << 20]),
    final_newline=st.booleans(),
)
def test_lines_read_a_chunk_at_a_time_are_numbered_as_one_by_one(
    lines: list[bytes], read_bytes: int, final_newline: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    expected = [
        (number, json.loads(line))
        for number, line in enumerate(data.split(b"\n"), start=1)
        if line.strip()
    ]
    with mock.patch.object(read, "READ_BYTES", read_bytes):
        found = [(n, v) for n, v, _ in read.iter_json_objects(io.BytesIO(data), "s")]
    assert found == expected


# Not the separator: ("a\x1e", "b") and ("a", "\x1eb") share a fingerprint either way.
_ID = st.text(st.characters(exclude_characters="\x1e", exclude_categories=["Cs"]), max_size=6)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(_ID, st.integers()), _ID.filter(bool)), max_size=20, unique=True)
)
def test_the_inlined_key_fingerprint_is_dedupe_fingerprint(keys: list[tuple[Any, str]]) -> None:
    """Pass 1 fingerprints two string ids inline: the same 16 bytes as
    ``dedupe.fingerprint``, which the other key types (and ``exporter report``) use."""
    import tempfile
    from array import array

    from chalicelib.csv.spool import spool_source

    records = [{"sessionId": session, "eventId": event} for session, event in keys]
    name, opener = source("s", ndjson_with_blanks(records, [0]))
    with tempfile.TemporaryDirectory() as work:
        spooled = spool_source(0, name, opener, work, True, False, 1000)
    expected: dict[int, array[int]] = {}
    for row, (session, event) in enumerate(keys):
        key = dedupe.fingerprint(session, event)
        expected.setdefault(key[0], array("q")).extend([*array("q", key), row])
    found = {p: array("q", data) for p, data in enumerate(spooled.fingerprints) if data}
    assert found == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(_TEXT, st.integers(), st.floats(allow_nan=False), st.just('["a","b"]')),
        min_size=2,
        max_size=12,
    )
)
def test_the_quoted_row_is_csv_writers_row(values: list[Any]) -> None:
    """``quoted_row`` searches the cells' texts only for what their plain join holds."""
    from chalicelib.csv.spool import csv_row, quoted_row

    expected = io.StringIO()
    csv.writer(expected, lineterminator="").writerow(values)
    texts = list(map(str, values))
    assert quoted_row(texts, ",".join(texts)) == csv_row(values)
    assert csv_row(values) == expected.getvalue()


def test_cells_are_the_text_csv_writes_also_around_a_nested_top_level_object() -> None:
    """Numbers become their ``str`` text as they are flattened; one before a nested object
    (where flatten takes its general path) is not taken for a formula there."""
    record = {
        "n": -5,
        "f": -1.5,
        "s": "=x",
        "flag": True,
        "list": [1, "=a"],
        "none": None,
        "obj": {"k": -2, "t": "=y", "deeper": {"e": 2.5}},
        "z": 3,
        "metricAttributes": {"a": -1, "big": 2**70},
    }
    assert flatten_cells(record, True) == {
        "n": "-5",
        "f": "-1.5",
        "s": "'=x",
        "flag": "true",
        "list": '[1,"=a"]',
        "none": "",
        "obj_k": "-2",
        "obj_t": "'=y",
        "obj_deeper_e": "2.5",
        "z": "3",
        "attr_a": "-1",
        "attr_big": str(2**70),
    }


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), max_size=40),
    order=st.randoms(use_true_random=False),
)
def test_the_dedupe_index_finds_the_same_later_rows_in_c_as_row_by_row(
    keys: list[tuple[int, int]], order: Any
) -> None:
    """Later copies of a key (rows ascending: the C path; shuffled: the loop) are the rows
    a plain first-seen set names; the index less them keeps each key's first row."""
    ascending = [(high, low, row) for row, (high, low) in enumerate(keys)]
    first: dict[tuple[int, int], int] = {}
    for high, low, row in ascending:
        first.setdefault((high, low), row)
    expected = sorted(row for high, low, row in ascending if first[high, low] != row)
    shuffled = list(ascending)
    order.shuffle(shuffled)
    for triples in (ascending, shuffled):
        flat = array("q", [number for triple in triples for number in triple])
        later = dedupe._later_rows(flat)
        assert sorted(later) == expected
        kept = dedupe._without(flat, later)
        assert sorted(zip(kept[0::3], kept[1::3], kept[2::3], strict=True)) == sorted(
            (high, low, row) for (high, low), row in first.items()
        )

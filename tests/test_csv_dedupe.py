"""Duplicates: one row per id, the first kept, in constant memory."""

from __future__ import annotations

from tests.csv_helpers import ndjson, run, source

# --- duplicates -------------------------------------------------------------------------


def test_duplicates_keep_the_first_row_within_and_across_sources() -> None:
    first = source(
        "a", ndjson({"eventId": "x", "n": 1}, {"eventId": "y", "n": 2}, {"eventId": "x", "n": 3})
    )
    second = source("b", ndjson({"eventId": "y", "n": 4}, {"eventId": "z", "n": 5}))
    rows, _, report, _ = run(first, second)
    assert [(r["eventId"], r["n"]) for r in rows] == [("x", "1"), ("y", "2"), ("z", "5")]
    assert report.duplicates == 2


def test_rows_without_event_id_are_all_kept() -> None:
    rows, _, report, _ = run(source("s", ndjson({"n": 1}, {"n": 1})))
    assert len(rows) == 2 and report.duplicates == 0


def test_many_ids_with_repeats_spread_over_partitions() -> None:
    records = [{"eventId": f"id-{i % 9000}", "n": i} for i in range(20_000)]
    rows, _, report, _ = run(source("s", ndjson(*records)), compress_spool=True)
    assert report.rows == 9000 and report.duplicates == 11_000
    assert [r["n"] for r in rows[:3]] == ["0", "1", "2"]


def test_a_flood_of_copies_of_one_event_keeps_one_row_in_bounded_memory() -> None:
    """Many copies of one (sessionId, eventId) cost no memory each: repeats inside a
    spilled block go straight to the on-disk drop list."""
    copies = 60_000  # > 4 spilled blocks of one partition
    records = [{"eventId": "same", "sessionId": "s", "n": i} for i in range(copies)]
    records.insert(30_000, {"eventId": "other", "sessionId": "s", "n": -1})
    rows, _, report, _ = run(source("flood", ndjson(*records)))
    assert [(r["eventId"], r["n"]) for r in rows] == [("same", "0"), ("other", "-1")]
    assert report.duplicates == copies - 1


def test_drop_list_is_merged_in_row_order_across_blocks_and_sources() -> None:
    import tempfile

    from chalicelib.csv.dedupe import Fingerprints, fingerprint

    with tempfile.TemporaryDirectory() as work:
        index = Fingerprints(work, compact=True)
        keys = [("s", f"e{i % 7}") for i in range(20_000)]
        for row, key in enumerate(keys):
            index.add(fingerprint(*key), row)
        drops = list(index.drops())
    first: dict[tuple[str, str], int] = {}
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    assert drops == [row for row, key in enumerate(keys) if first[key] != row]


def test_duplicates_compare_ids_as_sent() -> None:
    records = [
        {"eventId": None, "n": 1},
        {"eventId": None, "n": 2},
        {"eventId": "", "n": 3},
        {"eventId": 1, "n": 4},
        {"eventId": "1", "n": 5},
        {"eventId": "-5", "n": 6},
        {"eventId": "'-5", "n": 7},
        {"eventId": 1, "n": 8},
    ]
    rows, _, report, _ = run(source("s", ndjson(*records)))
    assert [r["n"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    assert report.duplicates == 1


def test_another_session_cannot_take_over_an_event_id() -> None:
    """Ids come from browsers: a client that posts someone else's eventId first must not
    make the export drop the victim's event. The key is (sessionId, eventId)."""
    records = [
        {"eventId": "victim-id", "sessionId": "attacker", "n": 1},
        {"eventId": "victim-id", "sessionId": "victim", "n": 2},
        {"eventId": "victim-id", "sessionId": "victim", "n": 3},  # a real retry
    ]
    rows, _, report, _ = run(source("s", ndjson(*records)))
    assert [(r["sessionId"], r["n"]) for r in rows] == [("attacker", "1"), ("victim", "2")]
    assert report.duplicates == 1


def test_typed_keys_stay_distinct_even_when_both_repeat() -> None:
    records = [{"eventId": 1, "n": 1}, {"eventId": "1", "n": 2}]
    rows, _, report, _ = run(source("s", ndjson(*records, *records)))
    assert [r["n"] for r in rows] == ["1", "2"] and report.duplicates == 2

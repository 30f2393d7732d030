"""`python -m exporter report`: the counts behind the charts (exporter/report/aggregate.py,
counting.py, delivery.py) and the page the command writes, on folders and a moto S3."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.layout import keys_for_days
from chalicelib.storage.local import LocalStore
from exporter.cli import cli
from exporter.report.aggregate import ReportData, count_range
from exporter.report.counting import LABEL_CHARS, NONE, OTHER, Buckets, CappedCounter, label
from exporter.report.delivery import delivery_of
from exporter.report.sections import build_sections

DAY = date(2026, 11, 27)
DAY_PATH = "2026/11/27"


def record(event_id: str | None, session: str = "s-1", hour: int = 10, **fields: Any) -> bytes:
    value: dict[str, Any] = {
        "sessionId": session,
        "metricName": "PageView",
        "serverTimestamp": f"2026-11-27T{hour:02d}:15:00.000Z",
        "pagePath": "/",
        "uaBrowser": "Firefox",
        "uaOs": "Linux",
        "uaDeviceType": "desktop",
        "country": "DE",
        "isBot": False,
        **fields,
    }
    if event_id is not None:
        value["eventId"] = event_id
    return json.dumps(value).encode() + b"\n"


def write(root: Path, key: str, *lines: bytes, compress: bool = False) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if compress else data)


def count(root: Path, days: tuple[date, ...] = (DAY,), jobs: int = 1) -> ReportData:
    store = LocalStore(root)
    raw = keys_for_days(store, "raw/", days)
    rejected = keys_for_days(store, "rejected/", days)
    return count_range(store, raw, rejected, days, jobs=jobs)


def test_duplicates_are_dropped_as_export_drops_them_the_first_copy_kept(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"raw/{DAY_PATH}/10/a.gz",
        record("e1", pagePath="/first"),
        record("e2"),
        record(None),  # no eventId: never a duplicate
        record(None),
        compress=True,
    )
    write(
        tmp_path,
        f"raw/{DAY_PATH}/11/b.ndjson",
        record("e1", pagePath="/retry"),  # the same event again, in a later object
        record("e1", session="s-2"),  # the same id in another session: another event
        b"not json\n",
        b"[1, 2]\n",
    )
    data = count(tmp_path)
    assert (data.events, data.duplicates, data.bad_lines, data.raw_objects) == (5, 1, 2, 2)
    assert data.by_field["pagePath"].counts == {"/first": 1, "/": 4}


def test_events_and_sessions_per_hour_from_server_time_else_the_folder(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"raw/{DAY_PATH}/10/a.ndjson",
        record("a", session="s-1", hour=9),
        record("b", session="s-1", hour=10),
        record("c", session="s-1", hour=10),
        record("d", session="s-2", hour=10),
        record("e", session="s-3", serverTimestamp="not a time"),  # → the folder's hour, 10
        record("f", session="s-4", serverTimestamp="2026-11-01T03:00:00Z"),  # replayed: → 10
    )
    data = count(tmp_path)
    assert data.per_bucket[9] == 1 and data.per_bucket[10] == 5 and sum(data.per_bucket) == 6
    assert data.sessions_per_bucket[9] == 1 and data.sessions_per_bucket[10] == 4
    assert data.sessions == 4


def test_a_range_of_more_than_three_days_is_counted_per_day(tmp_path: Path) -> None:
    days = tuple(date(2026, 11, d) for d in range(24, 28))
    write(tmp_path, f"raw/{DAY_PATH}/10/a.ndjson", record("a"), record("b", session="s-2"))
    write(tmp_path, "raw/2026/11/24/23/a.ndjson", record("c", serverTimestamp="2026-11-24T23:59Z"))
    data = count(tmp_path, days)
    assert data.buckets.labels == ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"]
    assert data.per_bucket == [1, 0, 0, 2] and data.sessions_per_bucket == [1, 0, 0, 2]


def test_landing_referrer_and_utm_source_are_counted_once_per_session(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"raw/{DAY_PATH}/10/a.ndjson",
        record("a", session="s-1", referrer="https://news.example/", utm_source="hn"),
        record("b", session="s-1", referrer="https://news.example/", utm_source="hn"),
        record("c", session="s-2"),
        record("d", session="s-2", referrer="https://late.example/"),
        record("e", session="s-3", referrer=""),
    )
    data = count(tmp_path)
    assert data.by_field["referrer"].counts == {
        "https://news.example/": 1,
        "https://late.example/": 1,
        NONE: 1,
    }
    assert data.by_field["utm_source"].counts == {"hn": 1, NONE: 2}


def test_bot_share_is_broken_down_by_bot_reason_only_when_records_carry_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"raw/{DAY_PATH}/10/a.ndjson",
        record("a"),
        record("b", isBot=True),
        record("c", isBot="true"),  # not the boolean: not a bot
    )
    data = count(tmp_path)
    assert data.bots == 1 and not data.has_bot_reason
    bots = next(s for s in build_sections(data) if s.id == "bots")
    assert [row[0] for row in bots.table.rows] == ["people", "bot"]

    write(
        tmp_path,
        f"raw/{DAY_PATH}/11/b.ndjson",
        record("d", isBot=True, botReason="crawler: Googlebot"),
        record("e", isBot=True, botReason="webdriver"),
        record("f", isBot=True, botReason="webdriver"),
    )
    data = count(tmp_path)
    assert data.bots == 4 and data.has_bot_reason
    bots = next(s for s in build_sections(data) if s.id == "bots")
    assert bots.title == "Bots: 66.7 % of events"
    assert bots.table.rows == [
        ("people", 2, "33.3 %"),
        ("bot: webdriver", 2, "33.3 %"),
        ("bot: no reason given", 1, "16.7 %"),  # ties by value: "(none)" first
        ("bot: crawler: Googlebot", 1, "16.7 %"),
    ]


def test_delivery_from_seq_counts_gaps_per_session(tmp_path: Path) -> None:
    write(tmp_path, f"raw/{DAY_PATH}/10/a.ndjson", record("a"))
    assert count(tmp_path).delivery is None  # no record carries seq

    write(
        tmp_path,
        f"raw/{DAY_PATH}/11/b.ndjson",
        *(record(f"s1-{n}", session="s-1", seq=n) for n in (1, 2, 3, 5)),  # 4 lost
        *(record(f"s2-{n}", session="s-2", seq=n) for n in (40, 41)),  # began yesterday
        record("s2-41", session="s-2", seq=41),  # a retried copy: dropped by the dedupe
        record("bad", session="s-3", seq=True),  # not a number: no seq
    )
    found = count(tmp_path).delivery
    assert found is not None
    assert (found.sessions, found.expected, found.received) == (2, 7, 6)
    assert dict(found.bands) == {"100 %": 1, "90-99 %": 0, "50-89 %": 1, "under 50 %": 0}
    assert found.rate == pytest.approx(6 / 7)


def test_delivery_of_is_none_without_sessions_and_caps_repeats() -> None:
    assert delivery_of([]) is None
    found = delivery_of([(1, 2, 5)])  # more events than numbers: repeats, not >100 %
    assert found is not None and found.rate == 1.0


def test_rejects_are_counted_by_reason(tmp_path: Path) -> None:
    reject = {"receivedAt": "x", "requestId": "r", "index": 0, "event": {"metricName": "M"}}
    write(
        tmp_path,
        f"rejected/{DAY_PATH}/10/r.ndjson",
        json.dumps({**reject, "reason": "value must be a number"}).encode() + b"\n",
        json.dumps({**reject, "reason": "value must be a number"}).encode() + b"\n",
        json.dumps({"reason": "body is not JSON", "status": 400}).encode() + b"\n",
        b"garbage\n",
    )
    data = count(tmp_path)
    assert (data.rejects.events, data.rejects.bodies, data.rejects.unreadable) == (2, 1, 1)
    assert data.reject_reasons().top(5) == [("value must be a number", 2), ("body is not JSON", 1)]
    assert data.events == 0 and data.reject_objects == 1


def test_top_n_keeps_the_largest_and_sums_the_rest_into_other() -> None:
    counter = CappedCounter(max_keys=4)
    for key, times in (("a", 5), ("b", 3), ("c", 3), ("d", 1), ("e", 2), ("f", 1)):
        for _ in range(times):
            counter.add(key)
    # "e" and "f" came after the cap: counted as other from the start.
    assert counter.counts == {"a": 5, "b": 3, "c": 3, "d": 1, OTHER: 3}
    assert counter.top(2) == [("a", 5), ("b", 3), (OTHER, 7)]
    assert counter.top(10) == [("a", 5), ("b", 3), ("c", 3), ("d", 1), (OTHER, 3)]
    assert counter.total == 15


def test_labels_cut_long_text_and_show_other_types_as_json() -> None:
    assert label(None) == label("") == NONE
    assert label(7) == "7" and label(True) == "true" and label({"b": 1}) == '{"b":1}'
    long = label("x" * 1000)
    assert len(long) == LABEL_CHARS and long.endswith("…")


def test_hours_of_a_day_and_of_a_short_range() -> None:
    one = Buckets((DAY,))
    assert len(one) == 24 and one.labels[7] == "07:00" and one.short_labels[7] == "07"
    two = Buckets((DAY, date(2026, 11, 28)))
    assert len(two) == 48 and two.labels[25] == "11-28 01:00"
    assert two.of_time("2026-11-28T01:59:59Z", two.day_index(), -1) == 25
    assert two.of_time("2026-11-28T24:00:00Z", two.day_index(), -1) == -1
    assert two.of_key("raw/2026/11/28/05/x.gz") == 29


def test_worker_processes_give_the_same_numbers(tmp_path: Path) -> None:
    for hour in range(3):
        lines = [
            record(f"{hour}-{n}", session=f"s-{n % 7}", hour=hour, seq=n + 1) for n in range(50)
        ]
        write(tmp_path, f"raw/{DAY_PATH}/{hour:02d}/a.ndjson", *lines, record("0-1", session="s-1"))
    one, two = count(tmp_path, jobs=1), count(tmp_path, jobs=2)
    assert (one.events, one.duplicates, one.sessions) == (two.events, two.duplicates, two.sessions)
    assert one.duplicates == 3 and one.events == 150  # "0-1" of s-1, sent again each hour
    assert one.sessions_per_bucket == two.sessions_per_bucket and one.delivery == two.delivery


# The command: the page it writes.

HOSTILE_PATH = '/p?<script>alert("x")</script>&a=1'


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["report", *args])


def test_the_command_writes_one_page_with_every_chart_its_table_and_escaped_values(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        f"raw/{DAY_PATH}/10/a.ndjson",
        record("a", pagePath=HOSTILE_PATH, referrer="https://x/<img src=x onerror=1>", seq=1),
        record("b", metricName="$x$ </svg><script>bad()</script>", isBot=True, seq=2),
    )
    write(tmp_path, f"rejected/{DAY_PATH}/10/r.ndjson", b'{"reason": "<b>bold</b>", "index": 0}\n')
    out = tmp_path / "day.html"
    result = invoke("--date", "2026-11-27", "--source", str(tmp_path), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2 event(s) in 1 session(s), 1 reject(s)" in result.output
    page = out.read_text(encoding="utf-8")
    for section in ("events-per-hour", "sessions-per-hour", "pages", "referrers", "utm-sources"):
        assert f'<section id="{section}"' in page and f'id="{section}-table"' in page
    for section in ("browsers", "os", "devices", "countries", "bots", "rejects", "delivery"):
        assert f'<section id="{section}"' in page and f'id="{section}-table"' in page
    assert page.count("<svg ") == 12
    # Only the page's own markup: no script element, no URL to fetch, no event handler.
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # the table's cell
    assert "&lt;/svg&gt;&lt;script&gt;bad()&lt;/script&gt;" in page  # the chart's legend
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_without_data_or_with_a_bad_output_folder_it_says_so_in_one_line(tmp_path: Path) -> None:
    result = invoke("--date", "2026-11-27", "--source", str(tmp_path))
    assert result.exit_code == 1
    assert "no raw events or rejects for 2026-11-27" in result.output
    write(tmp_path, f"raw/{DAY_PATH}/10/a.ndjson", record("a"))
    result = invoke("--date", "2026-11-27", "--source", str(tmp_path), "--out", "/nope/r.html")
    assert result.exit_code == 2 and "folder /nope does not exist" in result.output
    result = invoke("--date", "2026-11-28", "--to-date", "2026-11-27", "--source", str(tmp_path))
    assert result.exit_code == 2 and "--to-date is before --date" in result.output


def test_the_default_output_is_named_after_the_days_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, f"raw/{DAY_PATH}/10/a.ndjson", record("a"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    result = invoke("--date", "2026-11-27", "--to-date", "2026-11-28")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "2026-11-27_2026-11-28_report.html").is_file()


def test_an_s3_source_is_read_the_same_way(
    tmp_path: Path, moto_endpoint: str, s3: Any, bucket: str
) -> None:
    body = gzip.compress(record("a", pagePath="/from-s3") + record("a") + record("b"))
    s3.put_object(Bucket=bucket, Key=f"prod/raw/{DAY_PATH}/10/x.gz", Body=body)
    out = tmp_path / "s3.html"
    args = ["--date", "2026-11-27", "--source", f"s3://{bucket}/prod", "--out", str(out)]
    result = invoke(*args, "--endpoint-url", moto_endpoint)
    assert result.exit_code == 0, result.output
    assert "2 event(s) in 1 session(s)" in result.output and "1 duplicate(s)" in result.output
    page = out.read_text(encoding="utf-8")
    assert f"s3://{bucket}/prod/" in page and "/from-s3" in page


def test_make_devs_demo_server_answers_report_with_todays_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo page's "Today's data as charts" link: /report/ on the demo server."""
    import threading
    import urllib.error
    import urllib.request
    from datetime import UTC, datetime
    from functools import partial
    from http.server import ThreadingHTTPServer

    from scripts.dev import CLIENT_DIR, DemoHandler

    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    handler = partial(DemoHandler, directory=str(CLIENT_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/report/"
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url, timeout=120)
        assert missing.value.code == 404
        assert missing.value.headers["Content-Type"].startswith("text/plain")
        assert "no raw events or rejects" in missing.value.read().decode()

        now = datetime.now(UTC)
        write(
            tmp_path,
            f"raw/{now:%Y/%m/%d/%H}/a.ndjson",
            record("a", pagePath="/today", serverTimestamp=now.isoformat()),
        )
        with urllib.request.urlopen(url, timeout=120) as answer:
            assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/html")
            page = answer.read().decode()
        assert f"Analytics report: {now:%Y-%m-%d}" in page and "/today" in page
    finally:
        server.shutdown()
        server.server_close()


def test_the_command_line_loads_matplotlib_only_to_draw_a_report() -> None:
    """The report command's module loads for `python -m exporter --help` (every command's
    help) and for `report` itself; matplotlib (about 45 MB with numpy) must come only when a
    report is drawn."""
    import subprocess
    import sys

    probe = "import sys, exporter.report.command; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"

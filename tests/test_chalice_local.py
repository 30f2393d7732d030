"""The Chalice traps that only a real `chalice local` shows: it enforces no body
size and hands chunked bodies over empty; preflight must work there too."""

from __future__ import annotations

import csv
import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from tests.factories import batch, body_bytes, event


def request(
    base: str, method: str, path: str, body: bytes | None = None, /, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def test_post_lands_as_a_line_under_raw_and_a_csv_part(chalice_local: tuple[str, Path]) -> None:
    base, data_dir = chalice_local
    body = body_bytes(batch(event(eventId="local-trap-1"), event(eventId="local-trap-2")))
    status, _, answer = request(base, "POST", "/events", body, **{"Content-Type": "text/plain"})
    assert status == 200 and json.loads(answer) == {"accepted": 2, "rejected": []}
    lines = [
        json.loads(line)
        for path in (data_dir / "raw").rglob("*.ndjson")
        for line in path.read_bytes().splitlines()
    ]
    assert {"local-trap-1", "local-trap-2"} <= {line["eventId"] for line in lines}
    # The part is made in the background, about 1.5 s after the write.
    wait_for(lambda: {"local-trap-1", "local-trap-2"} <= part_ids(data_dir), "the CSV part")


def part_ids(data_dir: Path) -> set[str]:
    parts = (data_dir / "csv" / "parts").rglob("*.csv")
    return {row["eventId"] for part in parts for row in csv.DictReader(part.open(newline=""))}


def wait_for(condition: Callable[[], object], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.1)


def test_chunked_body_is_refused_clearly_not_taken_as_empty_batch(
    chalice_local: tuple[str, Path],
) -> None:
    base, _ = chalice_local
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.putrequest("POST", "/events")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        payload = body_bytes(batch())
        connection.send(f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n")
        answer = connection.getresponse()
        status, text = answer.status, answer.read()
    finally:
        connection.close()
    assert status == 400
    assert "chunked transfer encoding is not supported" in json.loads(text)["message"]


def test_body_over_one_mib_is_413_even_though_chalice_local_has_no_limit(
    chalice_local: tuple[str, Path],
) -> None:
    base, _ = chalice_local
    big = body_bytes(batch(event(metricAttributes={"pad": "x" * 4000}), context={})) + b" " * (
        1024 * 1024
    )
    status, headers, answer = request(
        base, "POST", "/events", big, **{"Content-Type": "application/json"}
    )
    assert status == 413
    assert "limit is 1048576 bytes" in json.loads(answer)["message"]
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_preflight_and_errors_carry_cors_under_chalice_local(
    chalice_local: tuple[str, Path],
) -> None:
    base, _ = chalice_local
    status, headers, _ = request(
        base,
        "OPTIONS",
        "/events",
        None,
        Origin="http://127.0.0.1:5173",
        **{"Access-Control-Request-Method": "POST"},
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    status, headers, answer = request(
        base, "POST", "/events", b"{oops", **{"Content-Type": "application/json"}
    )
    assert status == 400 and "not valid JSON" in json.loads(answer)["message"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    status, _, answer = request(base, "POST", "/events", b"{}", **{"Content-Type": "text/csv"})
    assert status == 415


def test_the_server_survives_a_burst_of_concurrent_posts(chalice_local: tuple[str, Path]) -> None:
    import concurrent.futures

    base, data_dir = chalice_local
    tag = f"burst-{time.time_ns()}"

    def post(index: int) -> int:
        body = body_bytes(batch(*[event(eventId=f"{tag}-{index}-{n}") for n in range(25)]))
        return request(base, "POST", "/events", body, **{"Content-Type": "application/json"})[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, range(40)))
    assert statuses == [200] * 40
    stored = [
        json.loads(line)["eventId"]
        for path in (data_dir / "raw").rglob("*.ndjson")
        for line in path.read_bytes().splitlines()
        if tag.encode() in line
    ]
    assert len(stored) == len(set(stored)) == 40 * 25


def test_a_burst_of_simultaneous_connections_is_queued_not_refused(
    chalice_local: tuple[str, Path],
) -> None:
    """socketserver listens with a backlog of 5; the dev loop widens it for chalice local."""
    import threading

    base, _ = chalice_local
    count = 60
    start = threading.Barrier(count)
    statuses: list[int] = []

    def post() -> None:
        body = body_bytes(batch(event()))
        start.wait()  # every connection at once
        try:
            statuses.append(
                request(base, "POST", "/events", body, **{"Content-Type": "text/plain"})[0]
            )
        except OSError as exc:
            statuses.append(-1)
            raise AssertionError(f"connection failed: {exc!r}") from exc

    threads = [threading.Thread(target=post) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * count

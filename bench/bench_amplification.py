"""Bytes stored per byte received: the review's amplification cases through the HTTP route.

Each case runs in a fresh child process (the stage settings are read when ``app`` is
imported), posts its body to ``POST /events`` with Chalice's test client into a local
data folder, and prints the body's bytes, what landed in raw/ and rejected/, and the ratio
(the rule in docs/SPEC.md: at most 8 times the body, in each):

- context: 7 context keys of 4,000 characters and 500 minimal events, as text/plain;
- rejects: a 1,000-character context and 500 events of ``0`` (every one rejected);
- rejects+ua: the same with STORE_USER_AGENT=true and a 612-character user agent;
- honest: what the browser client sends at its worst for this rule (25 of its smallest
  events, a context just under 1 KiB).

    .venv/bin/python bench/bench_amplification.py
    .venv/bin/python bench/bench_amplification.py --thresholds   # docs/SPEC.md's table

``--thresholds`` prints, for the client's smallest events and several context sizes, the
largest batch the rule stores (the table in docs/SPEC.md, "Stored bytes per request").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REVIEW_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) " + "A" * 580
assert len(REVIEW_USER_AGENT) == 612


def minimal_event(n: int) -> dict[str, Any]:
    return {"timestamp": 1, "sessionId": "s", "metricName": "m"}


def client_event(n: int) -> dict[str, Any]:
    """The smallest event the browser client sends: a one-letter metric name, no value."""
    return {
        "eventId": f"0190b6f2-7d1c-4a51-9c8e-{n:012d}",
        "timestamp": 1707782430123,
        "sessionId": "9b2e6f1c-0d7a-4c3e-8f5b-2a1d4e6c8b90",
        "metricName": "m",
        "value": None,
    }


def cases() -> dict[str, tuple[bytes, dict[str, str], str]]:
    """name → (body, extra environment, user agent)."""
    big_context = {f"k{i}": "x" * 4000 for i in range(7)}
    events = [minimal_event(n) for n in range(500)]
    context_case = json.dumps({"context": big_context, "events": events}, separators=(",", ":"))
    rejects = json.dumps({"context": {"c": "x" * 992}, "events": [0] * 500}, separators=(",", ":"))
    honest = json.dumps(
        {
            "sentAt": 1707782431000,
            "context": {"c": "x" * 1013},
            "events": [client_event(n) for n in range(25)],
        },
        separators=(",", ":"),
    )
    chrome = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    )
    return {
        "context": (context_case.encode(), {}, "curl/8.5.0"),
        "rejects": (rejects.encode(), {}, "curl/8.5.0"),
        "rejects+ua": (rejects.encode(), {"STORE_USER_AGENT": "true"}, REVIEW_USER_AGENT),
        "honest": (honest.encode(), {}, chrome),
        "honest+ua": (honest.encode(), {"STORE_USER_AGENT": "true"}, chrome),
    }


def folder_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def child(name: str) -> None:
    body, _, user_agent = cases()[name]
    sys.path.insert(0, str(ROOT))
    from chalice.test import Client

    import app as app_module

    app_module.app.log.setLevel("WARNING")  # the request's log line would crowd the output
    with Client(app_module.app, stage_name="dev") as client:
        answer = client.http.post(
            "/events",
            headers={"Content-Type": "text/plain", "User-Agent": user_agent},
            body=body,
        )
    data = Path(os.environ["ANALYTICS_DATA_DIR"])
    raw, rejected = folder_bytes(data / "raw"), folder_bytes(data / "rejected")
    print(
        json.dumps(
            {
                "case": name,
                "status": answer.status_code,
                "bodyBytes": len(body),
                "rawBytes": raw,
                "rawRatio": round(raw / len(body), 1),
                "rejectedBytes": rejected,
                "rejectedRatio": round(rejected / len(body), 1),
                "message": json.loads(answer.body).get("message", "")[:160],
            }
        )
    )


def largest_batch(context_bytes: int, page_path: bool, user_agent: str | None) -> int:
    """The most of the client's smallest events stored with a context of about
    ``context_bytes`` (``user_agent`` given: STORE_USER_AGENT=true with it)."""
    sys.path.insert(0, str(ROOT))
    from chalicelib.config import Limits
    from chalicelib.ingest.budget import stored_budget
    from chalicelib.ingest.enrich import Enricher
    from chalicelib.ingest.validate import BatchValidator

    validator = BatchValidator(Limits())
    enricher = Enricher(store_user_agent=user_agent is not None)
    headers = {"user-agent": user_agent or cases()["honest"][2]}
    # Keys of 1,000 characters (a value may hold 4,096), JSON about context_bytes long.
    full, rest = divmod(context_bytes, 1009)
    context = {f"k{i}": "x" * 1000 for i in range(full)}
    context["c"] = "x" * max(0, rest - 8)
    for events in range(1, 501):
        batch = [client_event(n) for n in range(events)]
        if page_path:
            batch = [{**item, "context": {"pagePath": "/"}} for item in batch]
        raw = json.dumps(
            {"sentAt": 1707782431000, "context": context, "events": batch}, separators=(",", ":")
        ).encode()
        result = validator.process(
            json.loads(raw), 1707782431000, lambda c: enricher.fields(headers, c)
        )
        if sum(map(len, result.records)) > stored_budget(len(raw)):
            return events - 1
    return 500


def thresholds() -> None:
    print("context bytes | pagePath | no page context | pagePath, 512-char UA stored")
    for size in (512, 768, 1023, 1536, 2048, 4096):
        row = [largest_batch(size, True, None), largest_batch(size, False, None)]
        row.append(largest_batch(size, True, "x" * 512))
        print(f"{size:>13} | " + " | ".join("any" if n == 500 else str(n) for n in row))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    if sys.argv[1:] == ["--thresholds"]:
        thresholds()
        return
    for name, (_, extra, _) in cases().items():
        with tempfile.TemporaryDirectory(prefix="amplification-") as data:
            env = {
                **os.environ,
                "ANALYTICS_STAGE": "dev",
                "ANALYTICS_SINK": "local",
                "ANALYTICS_DATA_DIR": data,
                "ALLOWED_ORIGINS": "*",
                **extra,
            }
            env.pop("ANALYTICS_BUCKET", None)
            subprocess.run(
                [sys.executable, __file__, "--child", name], cwd=ROOT, env=env, check=True
            )


if __name__ == "__main__":
    main()

"""Check a running endpoint end to end (the `smoke-test` command), standard library only.

Four checks, one line each: ``GET /health``, the CORS preflight of ``/events``, one
tagged ``SmokeTest`` event sent as ``text/plain``, and a malformed body answered 400.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.request import Request, urlopen

import click

from clitools import echo

SMOKE_USER_AGENT = "Mozilla/5.0 (compatible; owned-analytics-smoke-test/1)"


class Unreachable(Exception):
    """The endpoint could not be reached at all (DNS, refused, TLS, timeout)."""


@dataclass(frozen=True)
class Reply:
    """One HTTP answer the smoke test got: status, headers, body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def snippet(self, limit: int = 160) -> str:
        text = self.body.decode("utf-8", "replace").replace("\n", " ").strip()
        return text if len(text) <= limit else text[:limit] + "…"


def http_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request; any HTTP status is a Reply, anything else is ``Unreachable``."""
    request = Request(url, data=body, method=method, headers=dict(headers or {}))
    # Browser-shaped, on no crawler list: a stage with DROP_BOTS=true still stores the
    # smoke event (a bare "name/1" is a program's header, which the bot rule flags).
    request.add_header("User-Agent", SMOKE_USER_AGENT)
    try:
        with urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers.items()), response.read())
    except HTTPError as exc:
        with exc:
            return Reply(exc.code, dict(exc.headers.items()), exc.read())
    except URLError as exc:
        reason = exc.reason
        raise Unreachable(f"cannot reach {url}: {reason}") from None
    except TimeoutError:
        raise Unreachable(f"no answer from {url} within {timeout:g} s") from None
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        raise Unreachable(f"cannot reach {url}: {exc}") from None


# The context key that marks test traffic: a CSV column an analyst drops rows by
# (`synthetic` is true) whatever else the event says.
SYNTHETIC_KEY = "synthetic"


def smoke_event_body(smoke_test_id: str, now_ms: int) -> bytes:
    batch = {
        "sentAt": now_ms,
        "context": {"device": "smoke-test", "appVersion": "smoke-test", SYNTHETIC_KEY: True},
        "events": [
            {
                "eventId": f"smoke-{smoke_test_id}",
                "timestamp": now_ms,
                "sessionId": f"smoke-{smoke_test_id}",
                "metricName": "SmokeTest",
                "value": None,
                "metricAttributes": {"smokeTestId": smoke_test_id},
            }
        ],
    }
    return json.dumps(batch).encode("utf-8")


@dataclass(frozen=True)
class Check:
    """One smoke-test step and its outcome, printed as a PASS or FAIL line."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def _cors_ok(reply: Reply, origin: str) -> tuple[bool, str]:
    value = reply.header("Access-Control-Allow-Origin")
    if value in (origin, "*"):
        return True, f"Access-Control-Allow-Origin: {value}"
    if value is None:
        return False, f"no Access-Control-Allow-Origin (is {origin} in ALLOWED_ORIGINS?)"
    return False, f"Access-Control-Allow-Origin is {value!r}, not {origin!r} or '*'"


def run_smoke_checks(
    base_url: str,
    origin: str,
    smoke_test_id: str,
    request: Callable[..., Reply],
    timeout: float,
    now_ms: int,
) -> Iterator[Check]:
    """The four checks, in order; ``Unreachable`` escapes to the caller."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    health_url, events_url = urljoin(base, "health"), urljoin(base, "events")

    reply = request("GET", health_url, timeout=timeout)
    ok = reply.status == 200
    yield Check("GET /health", ok, f"{reply.status} {reply.snippet()}")

    reply = request(
        "OPTIONS",
        events_url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=timeout,
    )
    cors_ok, cors_detail = _cors_ok(reply, origin)
    ok = reply.status in (200, 204) and cors_ok
    yield Check("OPTIONS /events (preflight)", ok, f"{reply.status}, {cors_detail}")

    reply = request(
        "POST",
        events_url,
        headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"},
        body=smoke_event_body(smoke_test_id, now_ms),
        timeout=timeout,
    )
    answer = reply.json()
    accepted = answer.get("accepted") if isinstance(answer, dict) else None
    cors_ok, cors_detail = _cors_ok(reply, origin)
    ok = reply.status == 200 and accepted == 1 and cors_ok
    detail = f"{reply.status}, accepted={accepted}, {cors_detail}"
    if not ok:
        detail += f", body {reply.snippet()}"
    yield Check("POST /events (one SmokeTest event, text/plain)", ok, detail)

    reply = request(
        "POST",
        events_url,
        headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"},
        body=b'{"events": [',
        timeout=timeout,
    )
    answer = reply.json()
    message = answer.get("message") if isinstance(answer, dict) else None
    ok = reply.status == 400 and isinstance(message, str) and bool(message)
    detail = (
        f"{reply.status}, message={message!r}" if message else f"{reply.status} {reply.snippet()}"
    )
    yield Check("POST /events (malformed body → 400)", ok, detail)


@click.command("smoke-test")
@click.argument("url")
@click.option(
    "--origin",
    default="http://localhost",
    show_default=True,
    help="Origin to send; for prod use one of the stage's ALLOWED_ORIGINS.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
def smoke_test(url: str, origin: str, timeout: float) -> None:
    """Check a running endpoint: health, CORS preflight, one event, a bad body.

    URL is the API's base, e.g. the output of `chalice url --stage prod` or
    http://127.0.0.1:8000/ for `chalice local`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    smoke_test_id = str(uuid.uuid4())
    now_ms = time.time_ns() // 1_000_000
    failed = 0
    posted = False
    try:
        for check in run_smoke_checks(url, origin, smoke_test_id, http_request, timeout, now_ms):
            echo(check.line())
            failed += not check.ok
            posted = posted or check.name.startswith("POST /events (one")
    except Unreachable as exc:
        echo(f"FAIL {exc}")
        click.get_current_context().exit(1)
    if posted:
        echo(
            f"smokeTestId: {smoke_test_id} (metricName SmokeTest, attr_smokeTestId; "
            f"{SYNTHETIC_KEY}=true marks it as test traffic)"
        )
    if failed:
        click.get_current_context().exit(1)

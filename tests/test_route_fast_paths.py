"""The route's fast paths say what its reference paths say (issue 25), on near misses.

Two fast paths, each beside its reference:

- the direct check of the usual event and envelope (``shape.py``) beside the compiled
  validator alone (and ``jsonschema``): the same verdict, the same message, the same records;
- the body read by orjson, its keys counted on the validator's walk (``read_body`` and
  ``BatchResult.keys``), beside the strict reading (``parse_body``): the same answer, the
  same stored records and the same kept rejects, for repeated keys at every level, escaped
  quotes, spaced colons and integers past 64 bits.

A few seconds: near-miss lists and 200 generated bodies.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.config import Limits
from chalicelib.ingest import collect
from chalicelib.ingest.body import parse_body
from chalicelib.ingest.collect import Answer, Collector
from chalicelib.ingest.enrich import Enricher
from chalicelib.ingest.shape import _INEXACT_FLOAT, EventShape
from chalicelib.ingest.strictjson import INEXACT_FLOAT, keys_and_exact
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import MemorySink
from tests.factories import SENT_AT, batch, event

NOW_MS = SENT_AT + 500
LIMITS = Limits()
FAST = BatchValidator(LIMITS, new_event_id=lambda: "generated-id")
REFERENCE = BatchValidator(LIMITS, new_event_id=lambda: "generated-id")
REFERENCE.shape = EventShape({})  # no direct checks: the compiled validators for everything
JSONSCHEMA = jsonschema.Draft7Validator(FAST.event_schema)


def nested(depth: int) -> dict[str, Any]:
    """Attributes nested ``depth`` objects deep (the top level is 1)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


BASE = event(eventId="e-1")
NEAR_MISSES: dict[str, list[Any]] = {
    "eventId": [1, None, True, "", "x" * 64, "x" * 65, "a b", "é", "a/b", "abc\n"],
    "timestamp": [True, 1.0, 1.5, -1, 0, 10**14, 10**14 + 1, 2**63, 2**64, 1e19, "1", None],
    "sessionId": ["", "x" * 128, "x" * 129, 1, None, ["s"]],
    "metricName": ["", "x" * 128, "x" * 129, 0, False],
    "value": [True, False, "1", "NaN", float("nan"), float("inf"), 2**70, 1e19, -1e19, 1e18, []],
    "demoContentId": [None, "x" * 256, "x" * 257, 1, True, {}],
    "metricAttributes": [
        None,
        "",
        "x" * 16384,
        "x" * 16385,
        '{"a": 1}',
        '{"a": 1, "a": 2}',
        "[1]",
        {f"k{i}": i for i in range(100)},
        {f"k{i}": i for i in range(101)},
        [],
        1,
        True,
        nested(LIMITS.max_attribute_depth),
        nested(LIMITS.max_attribute_depth + 1),
        {"l": [nested(LIMITS.max_attribute_depth - 1)]},
        {"l": [nested(LIMITS.max_attribute_depth)]},
        {"a": {"b": 1e19}},
        {"a": float("nan"), "b": 2**64},
        {"A": 1, "a": 2},
        {"\u03a3": 1, "\u03c3": 2},
        {"n": {"A": 1}, "N_a": 2},
        {"a\u200b": 1},
        {"x" * 257: 1},
        {"s": "x" * 4097},
        {"l": ["x" * 4097]},
    ],
    "seq": [0, 1, 2**31 - 1, 2**31, 1.0, 2.5, True, "1", None],
    "context": [
        {},
        {"device": "x"},
        {"eventId": 1},
        {"EVENTID": 1},
        {"attr_x": 1},
        {"a" * 64: 1},
        {"a" * 65: 1},
        {"device\n": 1},
        {"k": [1]},
        {"k": {"a": 1}},
        {"k": "x" * 4096},
        {"k": "x" * 4097},
        {"k": 1e19, "j": 2**64},
        {"k": True, "j": None, "i": 1.5, "h": float("nan")},
        {f"k{i}": i for i in range(32)},
        {f"k{i}": i for i in range(33)},
        {"device": "x", "Device": "y"},
        {"language": "de"},
        [],
        "x",
    ],
    "unexpected": [1, None],
}
# Python's re reads "$" as "before a final newline"; the schema's ECMA-262 patterns (and
# the compiled validator) as the end: there jsonschema is not the reference.
NEWLINE_PATTERNS = [("eventId", "abc\n"), ("context", {"device\n": 1})]
EVENTS = [
    *({**BASE, name: value} for name, values in NEAR_MISSES.items() for value in values),
    *({k: v for k, v in BASE.items() if k != name} for name in BASE),
    {"timestamp": 1, "sessionId": "s", "metricName": "m"},
    [],
    "event",
    None,
    [{"a": 1}],
]


@pytest.mark.parametrize("candidate", EVENTS, ids=range(len(EVENTS)))
def test_direct_check_and_compiled_validator_agree(candidate: Any) -> None:
    message = FAST.event_error(candidate)
    assert message == FAST.event_error(candidate, direct=False)
    if not any(isinstance(candidate, dict) and candidate.get(k) == v for k, v in NEWLINE_PATTERNS):
        assert (message is None) == JSONSCHEMA.is_valid(candidate), message


EVENTS_VALUES: list[Any] = [[], [{}] * 500, [{}] * 501, {}, "x", None, [1]]
ENVELOPES: list[Any] = [
    *({"events": [{}], "sentAt": value} for value in NEAR_MISSES["timestamp"]),
    *({"events": [{}], "context": value} for value in NEAR_MISSES["context"]),
    *({"events": value} for value in EVENTS_VALUES),
    {"events": [{}], "extra": 1},
    {"sentAt": 1},
    {},
    [],
    None,
]


@pytest.mark.parametrize("body", ENVELOPES, ids=range(len(ENVELOPES)))
def test_direct_envelope_check_and_compiled_validator_agree(body: Any) -> None:
    message = FAST.envelope_error(body)
    assert message == FAST.envelope_error(body, direct=False)
    newline_key = isinstance(body, dict) and body.get("context") == {"device\n": 1}
    if not newline_key:
        assert (message is None) == jsonschema.Draft7Validator(FAST.envelope_schema).is_valid(body)


def test_records_rejections_and_key_counts_agree_on_a_batch_of_near_misses() -> None:
    body = batch()
    body["events"] = list(EVENTS)
    fast = FAST.process(json.loads(json.dumps(body)), NOW_MS)
    reference = REFERENCE.process(json.loads(json.dumps(body)), NOW_MS)
    assert fast.records == reference.records and fast.rejected == reference.rejected
    assert len(fast.records) > 30 and len(fast.rejected) > 50
    # The count made on the walk is keys_and_exact's, -1 for the floats past 2**63 in it.
    assert fast.keys == reference.keys == keys_and_exact(body) == -1
    exact = batch(*(e for e in body["events"] if keys_and_exact(e) >= 0))
    assert FAST.process(exact, NOW_MS).keys == keys_and_exact(exact) > 0


def test_the_two_bounds_for_inexact_floats_are_one() -> None:
    assert _INEXACT_FLOAT == INEXACT_FLOAT


# --- the body read fast and the body read strictly ---------------------------------------


def routes(
    raw: bytes, monkeypatch: pytest.MonkeyPatch, drop_bots: bool = False
) -> list[tuple[Answer, list[bytes], list[bytes]]]:
    """The collector's answer, stored records and kept rejects: read fast, then strictly."""
    outcomes = []
    for strict in (False, True):
        with monkeypatch.context() as patch:
            if strict:
                patch.setattr(collect, "read_body", lambda r, c, lim: (parse_body(r, c, lim), -1))
            sink, rejects = MemorySink(), MemorySink()
            collector = Collector(
                FAST,
                lambda sink=sink: sink,  # type: ignore[misc]
                logging.getLogger("test"),
                clock_ms=lambda: NOW_MS,
                reject_sink_factory=lambda rejects=rejects: rejects,  # type: ignore[misc]
                enricher=Enricher(drop_bots=drop_bots),
            )
            headers = {"user-agent": "curl/8.5.0" if drop_bots else "Mozilla/5.0 (X11; Linux)"}
            answer = collector.collect(raw, "text/plain", "request-1", headers)
            outcomes.append((answer, sink.lines(), rejects.lines()))
    return outcomes


GOOD = b'{"eventId":"e-%d","timestamp":1707782430123,"sessionId":"s","metricName":"m"%s}'
HEAD = b'{"sentAt":1707782431000,"context":{"device":"d"},"events":['


def body_of(*events: bytes, head: bytes = HEAD) -> bytes:
    return head + b",".join(events) + b"]}"


def one(extra: bytes, number: int = 1) -> bytes:
    return GOOD % (number, extra)


BODIES = {
    "usual": body_of(one(b',"metricAttributes":{"a":1,"b":"x"}'), one(b"", 2)),
    "repeated top-level key": body_of(one(b""))[:-1] + b',"events":[]}',
    "repeated context key": body_of(one(b""), head=HEAD.replace(b'"d"}', b'"d","device":"e"}')),
    "repeated event key": body_of(one(b',"sessionId":"t"')),
    "repeated attribute key": body_of(one(b',"metricAttributes":{"a":1,"a":2}')),
    "repeated nested key": body_of(one(b',"metricAttributes":{"n":{"a":1,"a":2}}')),
    "repeated key in a list": body_of(one(b',"metricAttributes":{"l":[{"a":1,"a":2}]}')),
    "repeated key in a rejected event": body_of(one(b',"bad":1,"bad":2'), one(b"", 2)),
    "repeated key in a non-object event": body_of(b'[{"a":1,"a":2}]', one(b"")),
    "repeated key, escaped": body_of(one(b',"\\u0062":1,"b":2')),
    "repeated key and too many events": body_of(*[one(b',"x":1,"x":2')] * 501),
    "repeated key and a bad envelope": body_of(one(b""), head=b'{"extra":1,"extra":2,"events":['),
    "escaped quote and colon": body_of(one(b',"demoContentId":"a\\":b"')),
    "attributes as a string": body_of(one(b',"metricAttributes":"{\\"a\\":1}"')),
    "attributes as a string with a repeated key": body_of(
        one(b',"metricAttributes":"{\\"a\\":1,\\"a\\":2}"')
    ),
    "spaced colon": body_of(one(b',"value" : 1')),
    "quote before a tab in a string": body_of(one(b',"demoContentId":"a\\"\\t"')),
    "integer past 64 bits in value": body_of(one(b',"value":18446744073709551616')),
    "integer past 64 bits in attributes": body_of(
        one(b',"metricAttributes":{"big":-99999999999999999999}')
    ),
    "integer past 64 bits in context": body_of(
        one(b""), head=HEAD.replace(b'"d"}', b'"d","big":18446744073709551616}')
    ),
    "integer past 64 bits in timestamp": body_of(
        b'{"timestamp":18446744073709551616,"sessionId":"s","metricName":"m"}'
    ),
    "integer past 64 bits in sentAt": body_of(
        one(b""), head=HEAD.replace(b"1707782431000", b"18446744073709551616")
    ),
    "float near 2**63": body_of(one(b',"value":9.3e18,"metricAttributes":{"f":-9.3e18}')),
    "per-event context": body_of(one(b',"context":{"language":"de"}')),
    "per-event context repeated": body_of(one(b',"context":{"language":"de","language":"fr"}')),
}


@pytest.mark.parametrize("raw", BODIES.values(), ids=BODIES.keys())
def test_fast_and_strict_reading_give_the_same_answer_records_and_rejects(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, strict = routes(raw, monkeypatch)
    assert fast == strict


def test_a_dropped_bots_body_with_a_repeated_key_is_refused_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = body_of(one(b',"metricAttributes":{"a":1,"a":2}'))
    fast, strict = routes(raw, monkeypatch, drop_bots=True)
    assert fast == strict and fast[0].status == 400
    fast, strict = routes(body_of(one(b"")), monkeypatch, drop_bots=True)
    assert fast == strict and fast[0].body["dropped"] == 1


KEYS = st.sampled_from(["a", "b", "A", "eventId", "value", "n", "\\u0061", 'q\\"'])
SCALAR_TEXT = st.sampled_from(
    [b"1", b"-1", b"1.5", b"null", b"true", b'"x"', b'"\\":"', b"18446744073709551616", b"9.3e18"]
)


@st.composite
def objects(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A JSON object's text whose keys may repeat, compact or spaced."""
    members = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(KEYS).encode()
        nest = depth < 2 and draw(st.integers(0, 3)) == 0
        value = draw(objects(depth + 1)) if nest else draw(SCALAR_TEXT)
        if draw(st.integers(0, 5)) == 0:
            value = b"[" + value + b"]"
        colon = b" : " if draw(st.integers(0, 9)) == 0 else b":"
        members.append(b'"' + key + b'"' + colon + value)
    return b"{" + b",".join(members) + b"}"


@st.composite
def generated_bodies(draw: st.DrawFn) -> bytes:
    events = []
    for number in range(draw(st.integers(1, 3))):
        extra = b""
        if draw(st.booleans()):
            extra += b',"metricAttributes":' + draw(objects())
        if draw(st.booleans()):
            key = draw(st.sampled_from([b"value", b"demoContentId", b"sessionId", b"seq"]))
            extra += b',"' + key + b'":' + draw(SCALAR_TEXT)
        events.append(one(extra, number))
    return body_of(*events)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_bodies())
def test_fast_and_strict_reading_agree_on_generated_bodies(raw: bytes) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, strict = routes(raw, monkeypatch)
    assert fast == strict


def test_the_bench_body_takes_the_fast_path() -> None:
    """The usual batch: every event checked directly, and no strict reading needed."""
    body = orjson.loads(orjson.dumps(batch(*(event(seq=i + 1) for i in range(25)))))
    assert all(FAST.shape.keys(e) >= 0 for e in body["events"])
    raw = orjson.dumps(body)
    assert FAST.process(orjson.loads(raw), NOW_MS).keys == raw.count(b'":')

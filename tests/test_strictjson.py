"""strictjson: what the route and the raw reader refuse, and the fast reading of bodies
that must say exactly what the strict decoder says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.ingest.strictjson import StrictJSONError, strict_loads, strict_loads_bytes


def outcome(read: Any, data: Any) -> tuple[str, Any]:
    try:
        return "value", read(data)
    except (StrictJSONError, ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


TRICKY = [
    b'{"a":1,"a":2}',
    b'{"a" :1,"a":2}',
    b'{"a":1, "a" : 2}',
    b'{"a":{"b":1},"c":{"b":2,"b":3}}',
    b'{"x":"\\":","a":1,"a":2}',
    b'{"a\\":b":1}',
    b'{"k":123456789012345678901234567890}',
    b'{"k":-123456789012345678901234567890}',
    b'{"k":1e999}',
    b'{"k":NaN}',
    b'{"k":[Infinity]}',
    b'{"k":"\\ud800"}',
    b'{"":1,"":2}',
    b'{"a":1}\n',
    b'[{"a":1},{"a":1,"a":1}]',
    b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"k":' + b"9" * 5000 + b"}",
    b'{"k":1.5e300,"j":9.3e18}',
    b'{"events":[{"sessionId":"s","x":"a\\\\"}],"events":[]}',
]


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_the_fast_reading_says_what_the_strict_decoder_says(text: bytes) -> None:
    assert outcome(strict_loads_bytes, text) == outcome(strict_loads, text.decode())


keys = st.sampled_from(["a", "b", 'q"', "k:", "\\", ""])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='ab":\\ \n', max_size=5),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def texts(draw: st.DrawFn) -> bytes:
    """JSON texts, compact or spaced, sometimes with a key repeated."""
    value = draw(values)
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]))
    text = json.dumps(value, separators=separators)
    if draw(st.booleans()) and text.startswith("{") and len(text) > 2:
        key = json.dumps(draw(keys))
        text = "{" + key + separators[1] + "1," + text[1:]  # maybe a repeat of a key
    return text.encode()


@settings(max_examples=500, deadline=None)
@given(texts())
def test_fast_and_strict_readings_agree_on_generated_texts(text: bytes) -> None:
    assert outcome(strict_loads_bytes, text) == outcome(strict_loads, text.decode())

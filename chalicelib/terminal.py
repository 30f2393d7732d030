"""Text for a terminal: what a request sent is shown there, never obeyed.

One helper for every place stored or received text is printed: the command lines
(``clitools.echo`` and their error lines) and the route's log line (which ``make dev``
prints to the developer's terminal).
"""

from __future__ import annotations

import re

# What a terminal acts on instead of showing: C0 controls (ESC starts CSI and OSC
# sequences: clipboard writes, window titles, clear-screen) and DEL; C1 controls (U+0080 to
# U+009F, among them the one-character CSI and OSC); line and paragraph separators; and
# the bidirectional marks, overrides and isolates that reorder the text after them.
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_CHARACTER = re.compile(f"[\x00-\x1f{_OTHERS}]")
# The same but newline and tab, which our own output is laid out with.
_UNSAFE_IN_LAYOUT = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    return _SHORT_ESCAPES.get(character) or f"\\u{ord(character):04x}"


def terminal_safe(text: str, *, layout: bool = False) -> str:
    """``text`` with every character a terminal would act on written as its JSON escape
    (``\\u001b``, ``\\n``): what a request sent is shown, never obeyed. JSON escapes,
    so JSON output stays valid JSON with the same values. ``layout``: keep newlines and
    tabs, for text we laid out ourselves (values in it are escaped with ``layout`` off)."""
    pattern = _UNSAFE_IN_LAYOUT if layout else _UNSAFE_CHARACTER
    return pattern.sub(_escape, text)

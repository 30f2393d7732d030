"""Cell and column rules: what one stored record becomes as CSV cells, and the column order.

Shared by the converter (``csv/convert.py``) and the Athena query builder
(``chalicelib/athena/``), so both follow one set of rules: the fixed leading
columns, other top-level fields sorted, then ``attr_*`` sorted; nested objects
joined with ``_``; lists as JSON; formula-like text neutralised.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import orjson

from chalicelib.ingest.strictjson import DECODER, INEXACT_FLOAT

FIXED_COLUMNS = (
    "timestamp",
    "serverTimestamp",
    "sessionId",
    "metricName",
    "value",
    "demoContentId",
    "device",
    "deviceCodename",
    "language",
)
ATTRIBUTE_PREFIX = "attr_"
# Keys past a file's column budget: one JSON object per row, {column: cell text},
# always the last column. A leading _ cannot be a context key or an attr_ column.
OVERFLOW_COLUMN = "_overflow"
DEFAULT_MAX_COLUMNS = 1000
# Nested objects deeper than this become one JSON cell (the route allows 5 levels).
MAX_FLATTEN_DEPTH = 32
# Cells a spreadsheet would run as a formula (OWASP "CSV injection") start with one
# of these, or with = + - @ after padding a spreadsheet skips or trims: whitespace,
# control characters and invisible format characters. The same rule, as ranges, is
# what the Athena query applies (chalicelib/athena/sql.py).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PADDING_RANGES = (
    ("\x00", "\x20"),
    ("\x7f", "\xa0"),
    ("\u1680", "\u1680"),
    ("\u180e", "\u180e"),
    ("\u2000", "\u200f"),
    ("\u2028", "\u202f"),
    ("\u205f", "\u2064"),
    ("\u3000", "\u3000"),
    ("\ufeff", "\ufeff"),
)


def json_text(value: Any) -> str:
    """Compact JSON; the standard library takes over where orjson refuses (integers
    beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class InexactNumber(Exception):
    """A value read by orjson may have lost digits (it turns integers outside
    [-2**63, 2**64) into floats): read its line again, exactly."""


def _holds_inexact(value: Any) -> bool:
    if type(value) is float:
        return not -INEXACT_FLOAT < value < INEXACT_FLOAT
    if type(value) is list:
        if _STRINGS_ONLY.issuperset(map(type, value)):
            return False  # the usual list, told in C (and no nesting: no recursion either)
        return any(_holds_inexact(item) for item in value)
    if type(value) is dict:
        return any(_holds_inexact(item) for item in value.values())
    return False


_STRINGS_ONLY = frozenset({str})


def _char_class(ranges: Iterable[tuple[str, str]]) -> str:
    return "".join(f"\\u{ord(a):04x}-\\u{ord(b):04x}" for a, b in ranges)


_PADDED_FORMULA = re.compile(f"[{_char_class(FORMULA_PADDING_RANGES)}]*[=+\\-@]")
# First characters that call for a closer look: triggers and padding. Most cells
# start with something else, and `c in _LOOK_CLOSER` is the cheapest test.
_LOOK_CLOSER = frozenset(FORMULA_TRIGGERS) | frozenset(
    chr(code) for a, b in FORMULA_PADDING_RANGES for code in range(ord(a), ord(b) + 1)
)
_TRIGGER_CHARS = frozenset(FORMULA_TRIGGERS)


def runs_as_formula(text: str) -> bool:
    """Would a spreadsheet run this text cell as a formula?"""
    return bool(text) and (text[0] in _TRIGGER_CHARS or _PADDED_FORMULA.match(text) is not None)


def neutralize(text: str) -> str:
    """A leading ' makes a spreadsheet show the text instead of running it."""
    return "'" + text if text and text[0] in _LOOK_CLOSER and runs_as_formula(text) else text


# Control characters (Cc: C0, DEL, C1 with \x85), line and paragraph separators (Zl, Zp:
# \u2028, \u2029) and invisible format characters (Cf: \u200b, \xad, bidi controls,
# \ufeff...): what str.splitlines and other line splitters break on, or what cannot be seen.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def header_cell(column: str, neutralize_formulas: bool) -> str:
    """A column name as the header shows it: control, line-break and invisible format
    characters (possible in keys of raw lines from elsewhere; the route refuses them)
    escaped as \\uXXXX, so that a header is one line and reads as what it holds."""
    if not column.isprintable():  # False for every such character (and a few others)
        column = "".join(map(_shown_char, column))
    return neutralize(column) if neutralize_formulas else column


def _shown_char(char: str) -> str:
    if unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def format_cell(value: Any, neutralize_formulas: bool) -> str:
    """The CSV text of one value: what the converter writes for it."""
    return _cell_text(value, neutralize_formulas)


def _cell_text(value: Any, neutral: bool, exact: bool = True) -> str:
    """A value's cell text: strings (neutralized) as they are, numbers as str() gives
    them (as the csv module writes them: the shortest round-trip text for floats), None
    as empty, lists and objects as JSON."""
    kind = type(value)
    if kind is str:
        return neutralize(value) if neutral else value
    if kind is bool:
        return "true" if value else "false"
    if kind is list or kind is dict:
        if not exact and _holds_inexact(value):
            raise InexactNumber
        return json_text(value)
    if value is None:
        return ""
    return str(value)


def flatten_record(record: dict[str, Any], neutralize_formulas: bool = True) -> dict[str, str]:
    """Top-level fields as they are, ``metricAttributes`` as ``attr_*``, nested with ``_``."""
    cells = flatten_cells(record, neutralize_formulas).items()
    return {key: value for key, value in cells if value != ""}


def flatten_cells(record: dict[str, Any], neutral: bool, exact: bool = True) -> dict[str, str]:
    """Cells as the text of a CSV row's cells (before quoting): numbers as ``str`` gives
    them, as the csv module writes them, so a row is one join. Reuses ``record`` (it is
    not needed again).

    ``exact`` is False for values read by orjson: ``InexactNumber`` then says the
    line must be read again with ``read.exact_numbers``."""
    attributes = record.pop("metricAttributes", None)
    cells = record
    for key, value in record.items():
        kind = type(value)
        if kind is str:
            if neutral and value and value[0] in _LOOK_CLOSER and runs_as_formula(value):
                cells[key] = "'" + value
        elif kind is int:
            cells[key] = str(value)
        elif kind is float:
            if not exact and not -INEXACT_FLOAT < value < INEXACT_FLOAT:
                raise InexactNumber
            cells[key] = str(value)  # the shortest round-trip text
        elif value is None:
            cells[key] = ""
        elif kind is dict:
            nested = key
            break  # rare: a nested top-level object; take the general path below
        else:
            cells[key] = _cell_text(value, neutral, exact)
    else:
        if type(attributes) is dict:  # the usual attributes, without a call between
            _flatten_into(cells, ATTRIBUTE_PREFIX, attributes, neutral, exact, 1)
        elif attributes is not None:
            _add_attributes(cells, attributes, neutral, exact)
        return cells
    # The values before ``nested`` are cell text already (a number's text is no formula).
    flat: dict[str, str] = {}
    done = True
    for key, value in record.items():
        if done:
            if key != nested:
                flat[key] = value
                continue
            done = False
        if type(value) is dict:
            _flatten_into(flat, key + "_", value, neutral, exact, 1)
        else:
            if type(value) is float and not exact and not -INEXACT_FLOAT < value < INEXACT_FLOAT:
                raise InexactNumber
            flat[key] = _cell_text(value, neutral, exact)
    if attributes is not None:
        _add_attributes(flat, attributes, neutral, exact)
    return flat


def _add_attributes(cells: dict[str, str], attributes: Any, neutral: bool, exact: bool) -> None:
    if type(attributes) is dict:
        _flatten_into(cells, ATTRIBUTE_PREFIX, attributes, neutral, exact, 1)
    elif type(attributes) is str:
        parsed = _parse_object(attributes)
        if parsed is None:
            cells["metricAttributes"] = _cell_text(attributes, neutral)
        else:
            _flatten_into(cells, ATTRIBUTE_PREFIX, parsed, neutral, True, 1)
    else:
        cells["metricAttributes"] = _cell_text(attributes, neutral, exact)


def _parse_object(text: str) -> dict[str, Any] | None:
    # Rare (the collector stores objects), so the exact, slower parser is fine.
    try:
        parsed = DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _flatten_into(
    cells: dict[str, str],
    prefix: str,
    value: dict[str, Any],
    neutral: bool,
    exact: bool,
    depth: int,
) -> None:
    for key, item in value.items():
        kind = type(item)
        if kind is str:  # the usual attribute first
            cells[prefix + key] = (
                "'" + item
                if neutral and item and item[0] in _LOOK_CLOSER and runs_as_formula(item)
                else item
            )
        elif kind is dict:
            if depth < MAX_FLATTEN_DEPTH:
                _flatten_into(cells, f"{prefix}{key}_", item, neutral, exact, depth + 1)
            else:
                cells[prefix + key] = _cell_text(item, neutral, exact)
        elif kind is float:
            if not exact and not -INEXACT_FLOAT < item < INEXACT_FLOAT:
                raise InexactNumber
            cells[prefix + key] = str(item)
        elif kind is int:
            cells[prefix + key] = str(item)
        elif kind is bool:
            cells[prefix + key] = "true" if item else "false"
        elif kind is list and (exact or _STRINGS_ONLY.issuperset(map(type, item))):
            cells[prefix + key] = json_text(item)  # _cell_text's rule, without its checks
        elif item is not None:
            cells[prefix + key] = _cell_text(item, neutral, exact)


def case_spellings(names: Iterable[str]) -> dict[str, str]:
    """For each name ignoring letter case, the one spelling a file's header uses: the
    first in code-point order (``attr_A`` before ``attr_a``). Tools match column names
    ignoring case (DuckDB renames a second ``attr_a``), so such columns are merged."""
    spelling: dict[str, str] = {}
    for name in names:
        folded = name.lower()
        if folded not in spelling or name < spelling[folded]:
            spelling[folded] = name
    return spelling


def order_columns(names: Iterable[str]) -> list[str]:
    """Fixed columns, other top-level fields sorted, ``attr_*`` sorted, then the overflow."""
    present = set(names)
    fixed = set(FIXED_COLUMNS)
    fixed.add(OVERFLOW_COLUMN)
    others = sorted(n for n in present if n not in fixed and not n.startswith(ATTRIBUTE_PREFIX))
    attributes = sorted(n for n in present if n.startswith(ATTRIBUTE_PREFIX))
    overflow = [OVERFLOW_COLUMN] if OVERFLOW_COLUMN in present else []
    return [*FIXED_COLUMNS, *others, *attributes, *overflow]

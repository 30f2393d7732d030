"""Which attribute keys the route takes, given that each becomes a CSV column name.

Two rules (docs/SPEC.md, "Column names"):

- a key holds no control character but tab and newline (which the CSV header shows
  escaped, as ``\\u0009`` and ``\\u000a``), no other character a line splitter breaks on
  (``str.splitlines``: ``\\r \\v \\f \\x1c-\\x1e \\x85 \\u2028 \\u2029``) and no invisible
  format character (category Cf: ``\\u200b``, ``\\u00ad``, bidi controls, ``\\ufeff``...):
  ``attr_a`` and ``attr_a\\u200b`` would look the same;
- the columns of one event differ by more than letter case once nested objects are
  joined with ``_`` (``{"A": 1, "a": 2}``, ``{"n": {"A": 1}, "N_a": 2}``): DuckDB, Athena
  and spreadsheets match column names ignoring case.

Across events (one file holding ``attr_A`` from one event and ``attr_a`` from another),
the converter merges such columns instead (``csv/columns.py``, ``case_spellings``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.ingest.messages import shown

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def refused_character(key: str) -> str | None:
    """The first character of ``key`` a column name may not hold, or None."""
    for char in key:
        if char not in "\t\n" and unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def key_problem(keys: Iterable[str]) -> str | None:
    """Why one of these keys (isprintable() was False for them together) cannot name a
    column, or None."""
    for key in keys:
        char = refused_character(key)
        if char is not None:
            return (
                f"metricAttributes key {shown(ascii(key))} holds U+{ord(char):04X}, a control "
                "character, line break or invisible format character (keys become CSV column "
                "names)"
            )
    return None


def flat_names(attributes: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """The column names (without ``attr_``) an attributes object flattens to."""
    for key, value in attributes.items():
        if type(value) is dict:
            yield from flat_names(value, f"{prefix}{key}_")
        else:
            yield prefix + key


def case_clash(attributes: Mapping[str, Any]) -> str | None:
    """Why two of the event's columns would differ only in letter case, or None."""
    seen: dict[str, str] = {}
    for name in flat_names(attributes):
        other = seen.setdefault(name.lower(), name)
        if other != name:
            return (
                f"metricAttributes keys {shown(other)} and {shown(name)} become columns "
                "that differ only in letter case (attr_…): use one spelling (DuckDB, Athena "
                "and spreadsheets match column names ignoring case)"
            )
    return None


def needs_case_check(attributes: Mapping[str, Any]) -> bool:
    """Cheap first look: nested objects, or two keys of the top level equal ignoring case."""
    return any(type(value) is dict for value in attributes.values()) or len(
        {key.lower() for key in attributes}
    ) != len(attributes)

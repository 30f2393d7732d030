"""Trino SQL expressions that turn one raw line into the converter's cells.

Each function returns a piece of Athena (Trino) SQL: quoting, the day's partition
predicates, and the per-row expressions that follow ``chalicelib/csv/columns.py``:
parse the line as a JSON object, flatten nested objects into ``key_child`` names
(``metricAttributes`` as ``attr_*``), and render each value as the converter writes
it: text neutralised past leading padding, numbers as Python's ``str()``, booleans
as ``true``/``false``, lists as JSON.

Only functions that Trino and DuckDB share (through sqlglot) are used, with the
same meaning in both, so the tests can run the SQL on DuckDB. Every name from the
outside world reaches the SQL through :func:`quote_identifier` or
:func:`quote_literal`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from chalicelib.csv.columns import ATTRIBUTE_PREFIX, FORMULA_PADDING_RANGES, FORMULA_TRIGGERS

MAP_TYPE = "MAP(VARCHAR, JSON)"
# Object levels below the top one that are flattened into columns: the route allows
# metricAttributes 5 levels deep (MAX_ATTRIBUTE_DEPTH), so 8 leave room. Objects
# deeper than this are one JSON cell (the converter goes on to 32).
FLATTEN_LEVELS = 8
ATTRIBUTES_FIELD = "metricAttributes"
FLATTEN_SEPARATOR = "_"


# --- quoting -------------------------------------------------------------------------


def _check_text(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character: {value!r}")


def quote_identifier(name: str) -> str:
    """A Trino/Athena delimited identifier: double quotes, embedded quotes doubled."""
    _check_text(name, "identifier")
    if not name:
        raise ValueError("identifier must not be empty")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A Trino/Athena string literal: single quotes, embedded quotes doubled.

    Backslashes have no special meaning in Trino string literals, so nothing else
    needs escaping.
    """
    _check_text(value, "string literal")
    return "'" + value.replace("'", "''") + "'"


def text_value(value: str) -> str:
    """A string as SQL: a literal, with any NUL character (which a literal cannot
    hold, but a JSON key can) joined in as chr(0)."""
    if "\x00" not in value:
        return quote_literal(value)
    return "(" + " || chr(0) || ".join(quote_literal(p) for p in value.split("\x00")) + ")"


def table_ref(database: str, table: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(table)}"


def as_date(day: dt.date | str) -> dt.date:
    """A date, or its ``YYYY-MM-DD`` text, as a date (a datetime as its date)."""
    if isinstance(day, dt.datetime):
        return day.date()
    if isinstance(day, dt.date):
        return day
    try:
        return dt.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"date {day!r} is not YYYY-MM-DD") from None


def partition_predicates(day: dt.date | str) -> str:
    """``year``/``month``/``day`` equal to the zero-padded path segments of that UTC day.

    With partition projection these pin the query to the 24 hour prefixes of one day:
    Athena lists nothing else.
    """
    d = as_date(day)
    return (
        f'"year" = {quote_literal(f"{d:%Y}")} '
        f'AND "month" = {quote_literal(f"{d:%m}")} '
        f'AND "day" = {quote_literal(f"{d:%d}")}'
    )


# --- small helpers -------------------------------------------------------------------


def let(value: str, name: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value`` once (SQL has no LET: a one-element
    array and a lambda stand in for it)."""
    return f"element_at(transform(ARRAY[{value}], {name} -> {body}), 1)"


def json_format_sql(value: str) -> str:
    """The JSON text of a JSON value (a string keeps its quotes)."""
    return f"json_format({value})"


def is_json_null(value: str) -> str:
    # A JSON null inside a map may come back as SQL NULL or as JSON 'null'.
    return f"({value} IS NULL OR {json_format_sql(value)} = 'null')"


def as_object(value: str) -> str:
    """The JSON value as a map when it is an object, else NULL (cheap for scalars:
    the first character decides before anything is parsed)."""
    return f"IF(substr({json_format_sql(value)}, 1, 1) = '{{', TRY_CAST({value} AS {MAP_TYPE}))"


def parsed_record(line: str) -> str:
    """The line as a map of its top-level fields; NULL unless it is a JSON object."""
    return f"TRY(CAST(json_parse({line}) AS {MAP_TYPE}))"


def empty_object() -> str:
    return f"CAST(MAP() AS {MAP_TYPE})"


def attributes_object(record: str) -> str:
    """``metricAttributes`` as a map: an object, or a string holding one (the converter
    reads both); NULL otherwise."""
    field = f"element_at({record}, {quote_literal(ATTRIBUTES_FIELD)})"
    held = f"TRY(CAST(json_parse(json_extract_scalar({field}, '$')) AS {MAP_TYPE}))"
    return (
        f"COALESCE({as_object(field)}, IF(substr({json_format_sql(field)}, 1, 1) = '\"', {held}))"
    )


# --- flattening ----------------------------------------------------------------------


def top_level_keys(record: str, attributes: str) -> str:
    """Top-level fields that are cells: all (nulls too) but ``metricAttributes``,
    which is a cell only when it is neither null nor an object (or a string holding one)."""
    kept = (
        f"k <> {quote_literal(ATTRIBUTES_FIELD)} OR "
        f"({attributes} IS NULL AND NOT {is_json_null(f'element_at({record}, k)')})"
    )
    return f"filter(map_keys({record}), k -> {kept})"


def _present_keys(obj: str) -> str:
    """Keys of an object whose value is not null (nested nulls are not cells)."""
    return f"filter(map_keys({obj}), c -> NOT {is_json_null(f'element_at({obj}, c)')})"


def first_keys(top: str, attributes: str) -> str:
    """Level 0 names: the top-level cells (``top``, from :func:`top_level_keys`), then
    ``attr_`` + each attribute key (``attributes``: a map, empty when there are none)."""
    prefixed = (
        f"transform({_present_keys(attributes)}, c -> {quote_literal(ATTRIBUTE_PREFIX)} || c)"
    )
    return f"concat({top}, {prefixed})"


def first_values(record: str, top: str, attributes: str) -> str:
    """Level 0 values, in the order of :func:`first_keys`."""
    nested = f"transform({_present_keys(attributes)}, c -> element_at({attributes}, c))"
    return f"concat(transform({top}, k -> element_at({record}, k)), {nested})"


def _expand(array: str, values: str, leaf: str, children: Callable[[str], str]) -> str:
    """``array`` one level deeper: the entry of each object value replaced by one per
    child (``children("m")``, ``m`` the object), the others kept (``leaf``), in order."""
    each = let(as_object(f"{values}[i]"), "m", f"IF(m IS NULL, ARRAY[{leaf}], {children('m')})")
    # sequence(1, 0) counts down in Trino: an empty array stays as it is.
    return (
        f"IF(cardinality({array}) = 0, {array}, "
        f"flatten(transform(sequence(1, cardinality({array})), i -> {each})))"
    )


def deeper(keys: str, values: str) -> tuple[str, str]:
    """Names and values one level down, in the same order: the entry ``name`` of an
    object becomes one ``name_child`` entry per child that is not null."""
    separator = quote_literal(FLATTEN_SEPARATOR)
    names = _expand(
        keys,
        values,
        f"{keys}[i]",
        lambda m: f"transform({_present_keys(m)}, c -> {keys}[i] || {separator} || c)",
    )
    children = _expand(
        values,
        values,
        f"{values}[i]",
        lambda m: f"transform({_present_keys(m)}, c -> element_at({m}, c))",
    )
    return names, children


# --- rendering -----------------------------------------------------------------------


def _class_char(char: str) -> str:
    """One character of a regex class as SQL: escaped when special there, chr(n) when
    not printable ASCII (the query text stays plain ASCII)."""
    if char in "]\\^-":
        return quote_literal("\\" + char)
    if not " " < char < "\x7f":
        return f"chr({ord(char)})"
    return quote_literal(char)


def _in_padding(char: str) -> bool:
    return any(a <= char <= b for a, b in FORMULA_PADDING_RANGES)


def formula_pattern() -> str:
    """SQL for the regex of ``columns.runs_as_formula``: a trigger that acts on its own
    (tab, carriage return) first, or = + - @ after any run of padding characters."""
    alone = [c for c in FORMULA_TRIGGERS if _in_padding(c)]
    after_padding = [c for c in FORMULA_TRIGGERS if not _in_padding(c)]
    parts = [quote_literal("\\A(?:[")]
    parts += [_class_char(c) for c in alone]
    parts.append("']|['")
    for a, b in FORMULA_PADDING_RANGES:
        parts.append(_class_char(a))
        if b != a:
            parts += ["'-'", _class_char(b)]
    parts.append("']*['")
    parts += [_class_char(c) for c in after_padding]
    parts.append(quote_literal("])"))
    return f"concat({', '.join(parts)})"


def neutralized(text: str) -> str:
    """A leading ' when the text would run as a formula (``columns.neutralize``)."""
    return let(text, "s", f"IF(regexp_like(s, {formula_pattern()}), '''' || s, s)")


def _float_layout(sign: str) -> str:
    """Python's repr of a float from its significant digits ``d`` (no leading or
    trailing zeros) and the decimal exponent ``x`` of the first one: positional from
    1e-4 up to 1e16, else d.ddde+XX."""
    scientific = (
        "substr(d, 1, 1) || IF(length(d) > 1, '.' || substr(d, 2), '') || 'e' || "
        "IF(x < 0, '-', '+') || IF(abs(x) < 10, '0', '') || CAST(abs(x) AS VARCHAR)"
    )
    return (
        f"{sign} || CASE WHEN d = '' THEN '0.0' "
        f"WHEN x >= 16 OR x < -4 THEN {scientific} "
        "WHEN x < 0 THEN '0.' || lpad(d, CAST(length(d) - x - 1 AS INTEGER), '0') "
        "WHEN length(d) > x + 1 THEN substr(d, 1, x + 1) || '.' || substr(d, x + 2) "
        "ELSE rpad(d, CAST(x + 1 AS INTEGER), '0') || '.0' END"
    )


def number_text(json: str) -> str:
    """A JSON number's text as the converter writes it: an integer as its digits (any
    size), a float as Python's ``str()``, rebuilt from the number's digits and exponent
    whatever layout the engine printed it in (``1.0E16``, ``10000000000000000.0``)."""
    sign = f"IF(substr({json}, 1, 1) = '-', '-', '')"
    integer = f"regexp_extract({json}, '^-?([0-9]*)', 1)"
    fraction = f"COALESCE(regexp_extract({json}, '[.]([0-9]*)', 1), '')"
    exponent = (
        f"CAST(COALESCE(NULLIF(regexp_extract({json}, '[eE][+]?(-?[0-9]+)', 1), ''), '0') "
        "AS INTEGER)"
    )
    digits = let("regexp_replace(n, '0+$', '')", "d", _float_layout(sign))
    scaled = let(f"{exponent} + length({integer}) - 1 - (length(a) - length(n))", "x", digits)
    floating = let(
        f"{integer} || {fraction}", "a", let("regexp_replace(a, '^0+', '')", "n", scaled)
    )
    return f"IF(regexp_like({json}, '[.eE]'), {floating}, IF({json} = '-0', '0', {json}))"


def cell_text(value: str, *, neutralize: bool = True) -> str:
    """One JSON value as its CSV cell (``columns.format_cell``); NULL for null. Without
    ``neutralize`` text is kept as it is (the Parquet copy: no spreadsheet reads it)."""
    text = f"json_extract_scalar({value}, '$')"
    string = neutralized(text) if neutralize else text
    return let(
        json_format_sql(value),
        "j",
        "CASE WHEN j IS NULL OR j = 'null' THEN NULL "
        f"WHEN substr(j, 1, 1) = '\"' THEN {string} "
        "WHEN substr(j, 1, 1) IN ('[', '{') OR j IN ('true', 'false') THEN j "
        f"ELSE {number_text('j')} END",
    )

"""What one request may make the server store: at most 8 times its body's bytes in raw/,
and separately at most 8 times in rejected/ (docs/SPEC.md, "Stored bytes per request").

Why: the server copies the batch context and its own fields (user agent, country, times)
into every stored record, and keeps a record per rejected event. Without a bound a 50 KB
body wrote 14 MB (a 28 KB context times 500 events), and 2 KB of rejected `0`s wrote
660 KB of rejects: one such request every few seconds fills a Firehose stream's
throughput, and honest events get 503s. With the bound, what an attacker can make the
pipeline write grows with what they send, as for everyone else.

raw/: the records are counted exactly once built; past the budget the request is refused
whole (413, saying how far over) and kept as a body reject. rejected/: a request's reject
records are fitted into the budget (the context kept once, then the records that fit, in
order); what does not fit is counted in the log line, not kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.ingest.strictjson import json_bytes
from chalicelib.rejects.record import BODY, BODY_ENCODING, CONTEXT, CONTEXT_OF, INDEX, STATUS

# Stored bytes per byte of body, in raw/ and (separately) in rejected/.
STORED_BYTES_PER_BODY_BYTE = 8
# A body counts as at least this many bytes: an empty or tiny body refused whole still
# keeps the one record that says what it was and why (1 KiB at most, about the size of
# the request's log line, which every request writes anyway). A floor per request cannot
# be multiplied by what the request holds, which is what the rule is about.
MIN_COUNTED_BODY_BYTES = 128


def stored_budget(body_bytes: int) -> int:
    return STORED_BYTES_PER_BODY_BYTE * max(body_bytes, MIN_COUNTED_BODY_BYTES)


def over_budget_message(stored: int, body_bytes: int, events: int, body: Any) -> str:
    """Why a batch whose records would take ``stored`` bytes is refused (a 413)."""
    budget = stored_budget(body_bytes)
    context = body.get("context") if isinstance(body, dict) else None
    context_bytes = len(json_bytes(context)) if isinstance(context, dict) and context else 0
    why = (
        f"its {context_bytes:,}-byte context is copied into each of its {events} events"
        if context_bytes
        else f"the server's fields are added to each of its {events} events"
    )
    return (
        f"storing this batch would take {stored:,} bytes, over the limit of "
        f"{STORED_BYTES_PER_BODY_BYTE} times its {body_bytes:,}-byte body ({budget:,} bytes) "
        f"by {stored - budget:,}: {why}; send a smaller context or fewer events per batch"
    )


def fit_rejects(
    records: Sequence[dict[str, Any]], budget: int
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The reject records of one request that fit in ``budget`` bytes, and their lines.

    First as they are; else with the batch context kept in the first record only (the
    others say ``"contextOf"``, as for a context over 1 KiB); else the records that
    fit, in order. The caller counts the rest."""
    if len(records) == 1 and STATUS in records[0]:
        return _fit_body_reject(records[0], budget)
    lines = [json_bytes(record) + b"\n" for record in records]
    if sum(map(len, lines)) > budget:
        records = _context_once(records)
        lines = [json_bytes(record) + b"\n" for record in records]
    kept = 0
    total = 0
    for line in lines:
        if total + len(line) > budget:
            break
        total += len(line)
        kept += 1
    return list(records[:kept]), lines[:kept]


def _context_once(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with each later copy of the request's context replaced by a pointer
    to the first record that holds it."""
    first: int | None = None
    shared: list[dict[str, Any]] = []
    for record in records:
        if CONTEXT in record and INDEX in record:
            if first is None:
                first = record[INDEX]
            elif record[CONTEXT]:
                record = {k: v for k, v in record.items() if k != CONTEXT}
                record[CONTEXT_OF] = first
        shared.append(record)
    return shared


def _fit_body_reject(
    record: dict[str, Any], budget: int
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """A body refused whole, its kept start cut so that the record fits (``bodyBytes``
    still says how long the body was); nothing when even an empty start does not fit."""
    line = json_bytes(record) + b"\n"
    if len(line) <= budget:
        return [record], [line]
    body = str(record.get(BODY, ""))
    room = budget - len(json_bytes({**record, BODY: ""})) - 1
    if room <= 0:
        return [], []
    # A character takes at least one byte as JSON (base64 exactly one): start there and
    # cut further while escapes make it longer.
    keep = room - room % 4 if record.get(BODY_ENCODING) == "base64" else room
    while True:
        cut = {**record, BODY: body[:keep]}
        line = json_bytes(cut) + b"\n"
        if len(line) <= budget:
            return [cut], [line]
        keep = max(0, keep - max(4, (len(line) - budget + 1) // 2 * 2))

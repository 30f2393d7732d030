"""Helpers for the CSV tests: in-memory sources and a conversion that returns parsed rows."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from typing import Any

from chalicelib.csv.convert import ConversionReport, convert
from chalicelib.csv.read import BadLine


def source(name: str, data: bytes) -> tuple[str, Any]:
    return name, lambda: contextlib.nullcontext(io.BytesIO(data))


def ndjson(*records: Any) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run(
    *sources: tuple[str, Any],
    neutralize: bool = True,
    compress_spool: bool = False,
    max_columns: int = 1000,
) -> tuple[list[dict[str, str]], list[str], ConversionReport, list[BadLine]]:
    out = io.BytesIO()
    bad: list[BadLine] = []
    report = convert(
        sources,
        out,
        neutralize_formulas=neutralize,
        max_columns=max_columns,
        on_bad_line=bad.append,
        compress_spool=compress_spool,
    )
    text = out.getvalue().decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    rows = [dict(zip(header, row, strict=True)) for row in reader]
    return rows, header, report, bad

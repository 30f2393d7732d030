"""Erasure: one person's events out of every stored copy ("right to erasure").

``erase`` runs in four steps, each safe to repeat:

1. **Scan** the raw (and rejected) objects of the requested UTC days, in parallel, for
   records whose ``sessionId``, ``eventId`` or named top-level field has a requested
   value (or only the objects Athena located). Nothing is written.
2. **Plan**: a pending manifest ``erasure/pending/<run>.json`` lists the objects to
   rewrite, before any is touched. It holds no requested value, only a salted scrypt
   hash of the request, so that running the same request again recognises it.
3. **Rewrite** each object that holds matches, at the same key and in the same form
   (gzip stays gzip), line by line: kept lines are copied byte for byte. Each object
   is published whole (rename, or one S3 upload), then its older S3 versions are
   deleted. Then the CSV parts of the rewritten raw objects and the daily files of
   their days are built again from them, and their old versions deleted too.
4. **Audit**: ``erasure/YYYY/MM/DD/<run>.json`` says what was asked (the fields and how
   many values, never the values), when, and how many events left which objects;
   then the pending manifest goes.

A run killed at any point leaves each object either old or new. Running the same
request again adopts the pending manifest (same run id): it rewrites what still
matches, rebuilds the CSVs of every object in the plan, and writes the one audit
record, so the end is the same as for a run that was never interrupted.

Reads and rewrites through ``storage``, rebuilds CSVs through ``jobs`` and ``csv``, reads
reject records through ``rejects.record``; never imports athena (the Athena locator,
``athena.locate``, imports this package instead), delivery or dev.
"""

from __future__ import annotations

from chalicelib.erase.request import (
    ErasureError,
    ErasureRequest,
    Matcher,
    no_progress,
    value_text,
)
from chalicelib.erase.rewrite import Removed
from chalicelib.erase.run import ErasureReport, Layout, Workers, erase, located_keys

__all__ = [
    "ErasureError",
    "ErasureReport",
    "ErasureRequest",
    "Layout",
    "Matcher",
    "Removed",
    "Workers",
    "erase",
    "located_keys",
    "no_progress",
    "value_text",
]

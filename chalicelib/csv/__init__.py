"""NDJSON → CSV, in four jobs: ``read`` raw objects, ``columns`` (cell and column
rules), ``dedupe`` (duplicate ids in constant memory) and ``convert`` (the two-pass
engine that writes the CSV).

Knows nothing of where objects come from or go: its callers (``jobs``, ``erase``) hand it
sources and outputs. From ``ingest`` it takes only ``strictjson``, the one strict-JSON
decoder; it never imports sinks, jobs, rejects, erase, athena, delivery or dev.
"""

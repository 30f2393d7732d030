"""NDJSON → CSV, in four jobs: ``read`` raw objects, ``columns`` (cell and column
rules), ``dedupe`` (duplicate ids in constant memory) and ``convert`` (the two-pass
engine that writes the CSV)."""

"""What the daily build on Athena and the Parquet copy add to the monthly bill.

The ``cost`` command's ``--athena-threshold-bytes`` and ``--parquet-daily`` (the prod
stage's ``ATHENA_DAILY_THRESHOLD_BYTES`` and ``PARQUET_DAILY``). A day whose gzip'd raw
objects reach the threshold is built on Athena: three queries (its columns, its CSV,
its bad lines) each read the day's gzip bytes; the Parquet copy is one more query
over the same bytes, every day. Athena bills the bytes it reads, at least 10 MB a
query; the Parquet files are stored beside the CSVs.
"""

from __future__ import annotations

from deploy.prices import (
    DAYS_PER_MONTH,
    GB,
    LAMBDA_ARM64_PER_GB_SECOND,
    LAMBDA_PER_MILLION_REQUESTS,
    S3_PUT_PER_THOUSAND,
    S3_STANDARD_PER_GB_MONTH,
    CostLine,
)

# Athena SQL queries, us-east-1: $5 per TB scanned (2^40 bytes), at least 10 MB a query
# (third-party summaries of AWS's pricing page; docs/COST.md).
ATHENA_PER_TB_SCANNED = 5.00
ATHENA_MIN_BYTES_PER_QUERY = 10 * 1024**2
TB = 1024**4
CSV_QUERIES_PER_DAY = 3
# Parquet (ZSTD) bytes per byte of JSON lines, from bench/bench_athena.py's 2 M-event day.
PARQUET_RATIO = 0.069
# Query results under athena-results/ expire after 7 days (AthenaResultsExpirationDays).
RESULTS_KEPT_DAYS = 7
# Each step handler call: about a second of the 512 MB function (the publish copies
# server-side; reading a few objects for their bad lines takes longer, rarely).
STEP_SECONDS = 1.0
STEP_MEMORY_MB = 512


def daily_build_cost(
    events_per_month: int,
    event_bytes: int,
    gzip_ratio: float,
    csv_ratio: float,
    athena_threshold_bytes: int | None,
    parquet_daily: bool,
    storage_months: float = 1.0,
    *,
    parquet_ratio: float = PARQUET_RATIO,
) -> list[CostLine]:
    """The Athena and Parquet lines for a month; none without either."""
    if athena_threshold_bytes is not None and athena_threshold_bytes < 0:
        raise ValueError("the Athena threshold is 0 (always) or a number of bytes")
    if not 0 < parquet_ratio <= 2:
        raise ValueError("the Parquet ratio must be in (0, 2]")
    if athena_threshold_bytes is None and not parquet_daily:
        return []
    days = DAYS_PER_MONTH if events_per_month else 0
    json_bytes = events_per_month * event_bytes
    day_gzip = json_bytes * gzip_ratio / DAYS_PER_MONTH
    on_athena = athena_threshold_bytes is not None and day_gzip >= athena_threshold_bytes
    csv_days = days if on_athena else 0
    parquet_days = days if parquet_daily else 0
    queries = csv_days * CSV_QUERIES_PER_DAY + parquet_days
    scanned = queries * max(day_gzip, ATHENA_MIN_BYTES_PER_QUERY)
    lines = [
        CostLine(
            "Athena",
            f"{queries:,} queries ({csv_days} days' CSVs, {parquet_days} Parquet copies), "
            f"{day_gzip / GB:,.3f} GB gzip a day each",
            scanned / TB,
            "TB scanned",
            scanned / TB * ATHENA_PER_TB_SCANNED,
        )
    ]
    # Results wait under athena-results/ for a week: the CSV's result, as big as the file.
    results_gb = csv_days * json_bytes / DAYS_PER_MONTH * csv_ratio / GB
    parquet_gb = json_bytes * parquet_ratio / GB if parquet_daily else 0.0
    stored = parquet_gb * storage_months + results_gb * RESULTS_KEPT_DAYS / DAYS_PER_MONTH
    lines.append(
        CostLine(
            "Athena",
            "S3 storage: Parquet copy + query results (7 days)",
            stored,
            "GB-month",
            stored * S3_STANDARD_PER_GB_MONTH,
        )
    )
    # The handler runs once per result object: 3 per Athena-built day, 1 per UNLOAD.
    steps = csv_days * CSV_QUERIES_PER_DAY + parquet_days
    gb_s = steps * STEP_SECONDS * STEP_MEMORY_MB / 1024
    lines.append(
        CostLine(
            "Athena",
            f"Lambda: {steps:,} results-handler calls",
            gb_s,
            "GB-s",
            steps / 1e6 * LAMBDA_PER_MILLION_REQUESTS + gb_s * LAMBDA_ARM64_PER_GB_SECOND,
        )
    )
    # State objects, listings, copies and Athena's own result writes: ~20 a day.
    requests = 20 * (csv_days + parquet_days)
    lines.append(
        CostLine(
            "Athena",
            "S3 PUT/LIST/COPY requests of the build",
            requests,
            "requests",
            requests / 1000 * S3_PUT_PER_THOUSAND,
        )
    )
    return lines

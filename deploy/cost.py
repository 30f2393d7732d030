"""Estimate the monthly AWS bill for an event volume (the model behind the `cost` command,
which is ``deploy/cost_command.py``).

A pure model of us-east-1 on-demand prices: every unit price is a named constant
below, every assumption a keyword argument with a stated default, and the result is a
per-service breakdown: one function per service gives that service's lines
(:func:`api_gateway_cost`, :func:`lambda_cost`, :func:`firehose_cost`, :func:`s3_cost`,
:func:`cloudwatch_logs_cost`; the rejects path is :func:`rejects_path_cost`). Free
tiers are ignored (they expire, or are shared with other workloads) and so is data
transfer (requests into AWS are free; the API's tiny JSON answers are noise).

The one number that matters most is Firehose's: ingestion is billed per record
rounded **up to the next 5 KB**, so a 400-byte event alone is billed as 5 KB: one record
per request (newline-delimited) keeps it cheap; ``events_per_record=1`` shows the cost.

Prices checked 2026-11-28 against stored copies of public pages (docs/COST.md says which).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from deploy.cost_athena import daily_build_cost
from deploy.prices import (
    API_GATEWAY_REST_PER_MILLION_REQUESTS,
    CLOUDWATCH_LOGS_PER_GB_INGESTED,
    DAYS_PER_MONTH,
    FIREHOSE_MAX_RECORD_BYTES,
    FIREHOSE_PER_GB_INGESTED,
    FIREHOSE_RECORD_INCREMENT_BYTES,
    GB,
    LAMBDA_ARM64_PER_GB_SECOND,
    LAMBDA_PER_MILLION_REQUESTS,
    PRICES_CHECKED,
    REGION,
    REJECT_BYTES,
    REJECTS_FLUSH_SECONDS,
    S3_GET_PER_THOUSAND,
    S3_PUT_PER_THOUSAND,
    S3_STANDARD_PER_GB_MONTH,
    CostLine,
)

# The Lambda sizing the estimate assumes (docs/COST.md): one default for
# ``lambda_cost``, ``monthly_cost`` and ``rejects_path_cost`` alike.
INGEST_MEMORY_MB = 256
INGEST_MS_PER_REQUEST = 50.0
EXPORT_MEMORY_MB = 512
EXPORT_SECONDS_PER_OBJECT = 1.0
DAILY_EXPORT_SECONDS = 30.0
DAILY_MEMORY_MB = 1024


@dataclass(frozen=True)
class CostBreakdown:
    """The month's bill: the volumes it was priced for and its lines, in service order."""

    events_per_month: int
    events_per_request: int
    events_per_record: int
    event_bytes: int
    requests: int
    firehose_records: int
    firehose_billed_bytes: int
    s3_objects: int
    lines: list[CostLine] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.service] = totals.get(line.service, 0.0) + line.usd
        return totals

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["by_service"] = self.by_service()
        data["total"] = self.total
        data["prices_checked"] = PRICES_CHECKED
        data["region"] = REGION
        return data


def firehose_billed_bytes(record_bytes: int) -> int:
    """Bytes Firehose bills for one record: rounded up to the next 5 KB increment."""
    if record_bytes < 0:
        raise ValueError("record size cannot be negative")
    if record_bytes == 0:
        return 0
    increments = math.ceil(record_bytes / FIREHOSE_RECORD_INCREMENT_BYTES)
    return increments * FIREHOSE_RECORD_INCREMENT_BYTES


def _request_sizes(events: int, per_request: int) -> list[tuple[int, int]]:
    """(events in a request, how many such requests): full batches plus the remainder."""
    full, rest = divmod(events, per_request)
    sizes = [(per_request, full)] if full else []
    if rest:
        sizes.append((rest, 1))
    return sizes


def _checked_events_per_record(
    events_per_month: int, events_per_request: int, events_per_record: int | None, event_bytes: int
) -> int:
    """Events per Firehose record (default: a request's), once the sizes are possible."""
    if events_per_month < 0:
        raise ValueError("events per month cannot be negative")
    if events_per_request < 1:
        raise ValueError("events per request must be at least 1")
    per_record = events_per_request if events_per_record is None else events_per_record
    if per_record < 1:
        raise ValueError("events per record must be at least 1")
    per_record = min(per_record, events_per_request)  # a record never spans two requests
    if event_bytes < 1:
        raise ValueError("event size must be at least 1 byte")
    if per_record * event_bytes > FIREHOSE_MAX_RECORD_BYTES:
        raise ValueError(
            f"{per_record} events of {event_bytes} bytes exceed Firehose's 1,000 KiB record limit"
        )
    return per_record


@dataclass(frozen=True)
class Traffic:
    """What a month's events make: requests, Firehose records (and the bytes billed for
    them), the bytes of JSON lines stored, the objects Firehose writes, and the days the
    daily build runs."""

    requests: int
    records: int
    billed_bytes: int
    raw_bytes: int
    objects: int
    days: int

    @property
    def invocations(self) -> int:
        """Lambda calls: one per request, one per Firehose object, one a day."""
        return self.requests + self.objects + self.days


def monthly_traffic(
    events_per_month: int,
    events_per_request: int,
    events_per_record: int,
    event_bytes: int,
    buffer_interval_seconds: int = 300,
    buffer_size_mb: int = 64,
) -> Traffic:
    """Requests and Firehose records, exactly (the last batch may be partial); one object
    per buffer flush, by time or, sooner, by size."""
    requests = records = billed = 0
    for size, count in _request_sizes(events_per_month, events_per_request):
        requests += count
        for record_events, record_count in _request_sizes(size, events_per_record):
            records += count * record_count
            billed += count * record_count * firehose_billed_bytes(record_events * event_bytes)
    raw_bytes = events_per_month * event_bytes
    if not events_per_month:
        return Traffic(requests, records, billed, raw_bytes, objects=0, days=0)
    flushes_by_time = DAYS_PER_MONTH * 86400 // max(buffer_interval_seconds, 60)
    flushes_by_size = math.ceil(raw_bytes / (buffer_size_mb * 1024 * 1024))
    objects = max(1, min(records, max(flushes_by_time, flushes_by_size)))
    return Traffic(requests, records, billed, raw_bytes, objects, days=DAYS_PER_MONTH)


def api_gateway_cost(requests: int) -> list[CostLine]:
    """The REST API: billed per request."""
    usd = requests / 1e6 * API_GATEWAY_REST_PER_MILLION_REQUESTS
    return [CostLine("API Gateway", "REST API requests", requests, "requests", usd)]


def lambda_cost(
    traffic: Traffic,
    *,
    ingest_memory_mb: int = INGEST_MEMORY_MB,
    ingest_ms_per_request: float = INGEST_MS_PER_REQUEST,
    export_memory_mb: int = EXPORT_MEMORY_MB,
    export_seconds_per_object: float = EXPORT_SECONDS_PER_OBJECT,
    daily_export_seconds: float = DAILY_EXPORT_SECONDS,
    daily_memory_mb: int = DAILY_MEMORY_MB,
) -> list[CostLine]:
    """Invocations and arm64 compute: the ingest route once per request, the S3-event
    converter once per Firehose object, the daily combine once a day."""
    requests, objects, days = traffic.requests, traffic.objects, traffic.days
    ingest_gb_s = requests * ingest_ms_per_request / 1000 * ingest_memory_mb / 1024
    export_gb_s = (
        objects * export_seconds_per_object * export_memory_mb
        + days * daily_export_seconds * daily_memory_mb
    ) / 1024
    invocations = traffic.invocations
    gb_s = ingest_gb_s + export_gb_s
    return [
        CostLine(
            "Lambda",
            "invocations (ingest + per-object CSV + daily)",
            invocations,
            "requests",
            invocations / 1e6 * LAMBDA_PER_MILLION_REQUESTS,
        ),
        CostLine("Lambda", "compute, arm64", gb_s, "GB-s", gb_s * LAMBDA_ARM64_PER_GB_SECOND),
    ]


def firehose_cost(traffic: Traffic) -> list[CostLine]:
    """Ingestion: the billed bytes, every record rounded up to 5 KB."""
    item = f"ingestion, {traffic.records:,} records rounded up to 5 KB"
    gb = traffic.billed_bytes / GB
    return [CostLine("Firehose", item, gb, "GB billed", gb * FIREHOSE_PER_GB_INGESTED)]


def s3_cost(
    traffic: Traffic,
    gzip_ratio: float = 0.15,
    csv_ratio: float = 0.6,
    storage_months: float = 1.0,
) -> list[CostLine]:
    """Storage (raw gzip, CSV parts and daily CSVs), PUT/LIST and GET requests.

    PUTs: Firehose objects, one CSV part per object, the daily files, and the daily LIST
    of the day's raw objects (LIST is billed like PUT; 1,000 keys a page), plus the
    delivery report's two LISTs of the hours either side of the day. GETs: each raw
    object three times, by its per-object conversion, by the daily combine
    (build_daily_csv, which reads raw/ rather than the parts) and by the day's delivery
    report after it (chalicelib.delivery.measure).
    """
    objects, days, raw_bytes = traffic.objects, traffic.days, traffic.raw_bytes
    stored_gb = (raw_bytes * gzip_ratio + 2 * (raw_bytes * csv_ratio)) / GB * storage_months
    day_lists = days * max(1, math.ceil(objects / max(days, 1) / 1000)) + 2 * days
    puts = objects + objects + days + day_lists
    gets = objects * 3
    return [
        CostLine(
            "S3",
            "storage: raw .gz + CSV parts + daily CSV",
            stored_gb,
            "GB-month",
            stored_gb * S3_STANDARD_PER_GB_MONTH,
        ),
        CostLine("S3", "PUT/LIST requests", puts, "requests", puts / 1000 * S3_PUT_PER_THOUSAND),
        CostLine("S3", "GET requests", gets, "requests", gets / 1000 * S3_GET_PER_THOUSAND),
    ]


def cloudwatch_logs_cost(invocations: int, log_bytes_per_invocation: int = 600) -> list[CostLine]:
    """The Lambda functions' log lines, billed per GB ingested."""
    gb = invocations * log_bytes_per_invocation / GB
    usd = gb * CLOUDWATCH_LOGS_PER_GB_INGESTED
    return [CostLine("CloudWatch Logs", "Lambda log ingestion", gb, "GB", usd)]


def monthly_cost(
    events_per_month: int,
    *,
    events_per_request: int = 25,
    events_per_record: int | None = None,
    event_bytes: int = 400,
    gzip_ratio: float = 0.15,
    csv_ratio: float = 0.6,
    ingest_memory_mb: int = INGEST_MEMORY_MB,
    ingest_ms_per_request: float = INGEST_MS_PER_REQUEST,
    export_memory_mb: int = EXPORT_MEMORY_MB,
    export_seconds_per_object: float = EXPORT_SECONDS_PER_OBJECT,
    daily_export_seconds: float = DAILY_EXPORT_SECONDS,
    daily_memory_mb: int = DAILY_MEMORY_MB,
    buffer_interval_seconds: int = 300,
    buffer_size_mb: int = 64,
    log_bytes_per_invocation: int = 600,
    storage_months: float = 1.0,
    rejected_share: float = 0.0,
    athena_threshold_bytes: int | None = None,
    parquet_daily: bool = False,
) -> CostBreakdown:
    """Monthly cost in USD, per service, of ``events_per_month`` events.

    - ``events_per_request``: events the browser client batches into one POST (25).
    - ``events_per_record``: events per Firehose record; default one record per
      request (= ``events_per_request``); 1 means one record per event.
    - ``event_bytes``: size of one stored record (JSON line after enrichment).
    - ``gzip_ratio``: compressed/uncompressed size of the raw objects in S3.
    - ``csv_ratio``: CSV size relative to the JSON lines; CSVs are stored twice
      (per-object parts and the daily combined file), uncompressed.
    - Lambda: the ingest route runs once per request; the S3-event converter once per
      Firehose object; the daily combine once a day.
    - Firehose writes one object per buffer flush: every ``buffer_interval_seconds``
      while traffic flows, or sooner when ``buffer_size_mb`` fills.
    - ``storage_months``: months the month's data is kept at S3 Standard (1 = the
      first month; the steady-state storage bill is roughly this times retention).
    - ``rejected_share``: share of the events the route rejects; adds the rejects
      path (:func:`rejects_path_cost`).
    - ``athena_threshold_bytes``, ``parquet_daily``: see ``deploy/cost_athena.py``.
    """
    per_record = _checked_events_per_record(
        events_per_month, events_per_request, events_per_record, event_bytes
    )
    if not 0 < gzip_ratio <= 1 or not 0 < csv_ratio <= 2:
        raise ValueError("gzip ratio must be in (0, 1] and csv ratio in (0, 2]")
    traffic = monthly_traffic(
        events_per_month,
        events_per_request,
        per_record,
        event_bytes,
        buffer_interval_seconds,
        buffer_size_mb,
    )
    lambdas = lambda_cost(
        traffic,
        ingest_memory_mb=ingest_memory_mb,
        ingest_ms_per_request=ingest_ms_per_request,
        export_memory_mb=export_memory_mb,
        export_seconds_per_object=export_seconds_per_object,
        daily_export_seconds=daily_export_seconds,
        daily_memory_mb=daily_memory_mb,
    )
    lines = [
        *api_gateway_cost(traffic.requests),
        *lambdas,
        *firehose_cost(traffic),
        *s3_cost(traffic, gzip_ratio, csv_ratio, storage_months),
        *cloudwatch_logs_cost(traffic.invocations, log_bytes_per_invocation),
    ]
    lines += rejects_path_cost(
        events_per_month,
        rejected_share,
        events_per_request=events_per_request,
        gzip_ratio=gzip_ratio,
        ingest_memory_mb=ingest_memory_mb,
        storage_months=storage_months,
    )

    athena = (athena_threshold_bytes, parquet_daily, storage_months)
    lines += daily_build_cost(events_per_month, event_bytes, gzip_ratio, csv_ratio, *athena)
    return CostBreakdown(
        events_per_month=events_per_month,
        events_per_request=events_per_request,
        events_per_record=per_record,
        event_bytes=event_bytes,
        requests=traffic.requests,
        firehose_records=traffic.records,
        firehose_billed_bytes=traffic.billed_bytes,
        s3_objects=traffic.objects,
        lines=lines,
    )


def rejects_path_cost(
    events_per_month: int,
    rejected_share: float,
    *,
    events_per_request: int = 25,
    reject_bytes: int = REJECT_BYTES,
    gzip_ratio: float = 0.15,
    ingest_memory_mb: int = INGEST_MEMORY_MB,
    put_ms: float = 20.0,
    storage_months: float = 1.0,
) -> list[CostLine]:
    """What keeping ``rejected_share`` of the events as rejects adds, per service.

    The route sends a request's rejects as one record to the rejects stream (a second
    PutRecordBatch of ``put_ms``). Rejects are assumed spread as thinly as possible, one
    request's worth per record, which is the most records and so the most 5 KB rounding.
    The stream flushes every 900 s: its objects, not the requests, make the S3 PUTs.
    """
    if not 0 <= rejected_share <= 1:
        raise ValueError("the rejected share must be between 0 and 1")
    rejected = round(events_per_month * rejected_share)
    if not rejected:
        return []
    requests = math.ceil(events_per_month / events_per_request)
    per_record = math.ceil(rejected / requests)
    records = billed = 0
    for size, count in _request_sizes(rejected, per_record):
        records += count
        billed += count * firehose_billed_bytes(size * reject_bytes)
    gb_s = records * put_ms / 1000 * ingest_memory_mb / 1024
    stored_gb = rejected * reject_bytes * gzip_ratio / GB * storage_months
    objects = min(records, DAYS_PER_MONTH * 86400 // REJECTS_FLUSH_SECONDS)
    rows = (
        (f"Firehose, {records:,} records", billed / GB, "GB billed", FIREHOSE_PER_GB_INGESTED),
        ("Lambda, one more PutRecordBatch", gb_s, "GB-s", LAMBDA_ARM64_PER_GB_SECOND),
        ("S3 storage, gzip", stored_gb, "GB-month", S3_STANDARD_PER_GB_MONTH),
        ("S3 PUTs by the stream", objects, "requests", S3_PUT_PER_THOUSAND / 1000),
    )
    return [CostLine("Rejects", item, n, unit, n * price) for item, n, unit, price in rows]

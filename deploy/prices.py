"""The unit prices and sizes the cost model bills with (us-east-1, on demand), and one bill
line. Shared by ``deploy/cost.py`` (the pipeline) and ``deploy/cost_athena.py`` (the Athena
daily build); imports nothing of the project."""

from __future__ import annotations

from dataclasses import dataclass

PRICES_CHECKED = "2026-11-28"
REGION = "us-east-1"

# API Gateway REST API, first 333 million requests/month (AWS whitepaper on API Gateway
# cost optimization; AWS pricing page). HTTP APIs would be $1.00.
API_GATEWAY_REST_PER_MILLION_REQUESTS = 3.50
# Lambda on arm64 (Graviton): first 7.5 billion GB-s/month; requests same for both archs.
LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
# Firehose Direct PUT ingestion, first 500 TB/month, each record rounded up to 5 KB
# (AWS pricing page: "a 3KB record is billed as 5KB, a 12KB record is billed as 15KB").
FIREHOSE_PER_GB_INGESTED = 0.029
FIREHOSE_RECORD_INCREMENT_BYTES = 5 * 1024
FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024
# S3 Standard, first 50 TB/month; PUT/COPY/POST/LIST and GET per 1,000 requests.
S3_STANDARD_PER_GB_MONTH = 0.023
S3_PUT_PER_THOUSAND = 0.005
S3_GET_PER_THOUSAND = 0.0004
# CloudWatch Logs ingestion (standard log class); storage after that is ~$0.03/GB-month.
CLOUDWATCH_LOGS_PER_GB_INGESTED = 0.50

GB = 1024**3  # AWS bills "GB" as 2^30 bytes
DAYS_PER_MONTH = 30
# One stored reject: the event as sent, its batch's context and the reject's own fields
# (reason, request id, receivedAt, schema hash); the rejects stream flushes every 900 s.
REJECT_BYTES = 750
REJECTS_FLUSH_SECONDS = 900


@dataclass(frozen=True)
class CostLine:
    """One line of the bill: a service's item, how much of it, and what that costs."""

    service: str
    item: str
    quantity: float
    unit: str
    usd: float

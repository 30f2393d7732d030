"""Chalice wiring only: routes, event handlers and lazily created clients.

The logic lives in ``chalicelib`` (collect → validate → sink → convert → export),
each piece taking its client as an argument so tests can swap it.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from chalice.app import Chalice, CloudWatchEvent, Cron, Response, S3Event

from chalicelib.aws import make_client
from chalicelib.config import Settings, refused_origins
from chalicelib.dev.inspector import Inspector, inspector_routes
from chalicelib.dev.loop import DevLoop
from chalicelib.ingest.collect import Collector, lean_log_records
from chalicelib.ingest.cors import JSON_HEADERS, cors_headers, origin_allowed, preflight_headers
from chalicelib.ingest.enrich import Enricher
from chalicelib.ingest.validate import BatchValidator
from chalicelib.jobs import convert_raw_object, remove_stale_spools
from chalicelib.sinks import FirehoseSink, LocalDirectorySink, Sink
from chalicelib.storage.base import ObjectStore
from chalicelib.storage.s3 import S3Store

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_firehose import FirehoseClient
    from mypy_boto3_s3 import S3Client

SETTINGS = Settings.from_env()
app = Chalice(app_name="owned-analytics")
app.log.setLevel(logging.INFO)
lean_log_records()

# Short timeouts: a stuck connection must not eat the request's retry budget.
# total_max_attempts counts the first try too (max_attempts counts retries only): two
# hung calls (2 + 5 s each) stay inside the function's 20 s; FirehoseSink retries the rest.
_BOTO_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2}
)
# Rejects are best effort and the client is waiting: one attempt per call, cut short.
_REJECTS_BOTO_CONFIG = Config(
    connect_timeout=0.5, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}
)
REJECTS_TIME_BUDGET_SECONDS = 1.0
_clients: dict[str, Any] = {}
# What a 503 asks the client to wait before resending (it adds its own jittered backoff).
RETRY_AFTER_SECONDS = "5"


def _firehose_client(name: str = "firehose", config: Config = _BOTO_CONFIG) -> FirehoseClient:
    if name not in _clients:
        _clients[name] = make_client("firehose", region=SETTINGS.region or None, config=config)
    client: FirehoseClient = _clients[name]
    return client


def _s3_client() -> S3Client:
    if "s3" not in _clients:
        _clients["s3"] = make_client("s3", region=SETTINGS.region or None)
    client: S3Client = _clients["s3"]
    return client


def _athena_client() -> AthenaClient:
    if "athena" not in _clients:
        _clients["athena"] = make_client("athena", region=SETTINGS.region or None)
    client: AthenaClient = _clients["athena"]
    return client


# Under `chalice local` (the local sink) there is no S3 trigger and no schedule: the dev
# loop converts what the sink wrote, in the background, and builds the daily file.
dev_loop = DevLoop.for_app(SETTINGS, app.log) if SETTINGS.sink == "local" else None
# The dev stage's event inspector (/_dev/events, /_dev/rejected); no such routes in prod.
inspector = Inspector() if SETTINGS.stage == "dev" else None


def _make_sink() -> Sink:
    if SETTINGS.sink == "firehose":
        return FirehoseSink(_firehose_client(), SETTINGS.stream_name)
    on_written = dev_loop.written if dev_loop is not None else None
    return LocalDirectorySink(SETTINGS.data_dir, SETTINGS.raw_prefix, on_written=on_written)


def _make_reject_sink() -> Sink:
    # Same layout as raw/, under rejected/; nothing converts it (python -m exporter rejected).
    if SETTINGS.sink == "firehose":
        client = _firehose_client("firehose-rejects", _REJECTS_BOTO_CONFIG)
        return FirehoseSink(
            client, SETTINGS.rejects_stream_name, time_budget_seconds=REJECTS_TIME_BUDGET_SECONDS
        )
    return LocalDirectorySink(SETTINGS.data_dir, SETTINGS.rejected_prefix)


def _make_collector() -> Collector:
    keep_rejects = SETTINGS.sink != "firehose" or bool(SETTINGS.rejects_stream_name)
    if not keep_rejects:  # once per container: the collector is made at import
        app.log.warning(
            "REJECTS_STREAM_NAME is not set: rejected events are not kept "
            "(python -m deploy configure-prod names the stack's rejects stream)"
        )
    return Collector(
        BatchValidator(SETTINGS.limits),
        _make_sink,
        app.log,
        log_event_contents=SETTINGS.log_event_contents,
        reject_sink_factory=_make_reject_sink if keep_rejects else None,
        observers=[inspector] if inspector is not None else (),
        enricher=Enricher(SETTINGS.store_user_agent, SETTINGS.drop_bots),
        allowed_origins=refused_origins(SETTINGS),
    )


collector = _make_collector()
if inspector is not None:
    app.register_blueprint(inspector_routes(inspector, SETTINGS.allowed_origins))


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
    all_headers: dict[str, str | list[str]] = {**JSON_HEADERS, **headers}
    return Response(body=json.dumps(body), status_code=status, headers=all_headers)


# content_types */* so that Chalice never answers 415 itself, without CORS headers.
@app.route("/events", methods=["POST"], content_types=["*/*"])
def post_events() -> Response:
    request = app.current_request
    assert request is not None
    origin = request.headers.get("origin")
    context = request.context or {}
    # chalice local sets no request id; stored rejects need one to be told apart.
    request_id = str(context.get("requestId") or uuid.uuid4())
    raw = request.raw_body or b""
    raw = raw.encode("utf-8") if isinstance(raw, str) else raw
    headers = cors_headers(origin, SETTINGS.allowed_origins)
    try:
        answer = collector.collect(
            raw, request.headers.get("content-type"), request_id, request.headers
        )
    except Exception:
        # A bug must still answer JSON with CORS headers (so the browser shows it),
        # never a stack trace; the events were not stored, so the client resends.
        app.log.exception("unexpected error in POST /events (request %s)", request_id)
        message = "internal error: the events were not stored; send them again later"
        return _json_response(500, {"message": message}, headers)
    if answer.status == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return _json_response(answer.status, answer.body, headers)


@app.route("/events", methods=["OPTIONS"])
def preflight_events() -> Response:
    request = app.current_request
    assert request is not None
    origin = request.headers.get("origin")
    headers = preflight_headers(origin, SETTINGS.allowed_origins)
    if not origin_allowed(origin, SETTINGS.allowed_origins):
        message = f"origin {origin or '(none)'} is not in this stage's ALLOWED_ORIGINS"
        return _json_response(403, {"message": message}, headers)
    return Response(body="", status_code=204, headers=dict(headers))


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "stage": SETTINGS.stage}


if SETTINGS.bucket:
    # Both handlers exist only where there is a bucket (prod); under `chalice local`
    # the dev loop above does both jobs.

    @app.on_s3_event(
        bucket=SETTINGS.bucket,
        prefix=SETTINGS.raw_prefix,
        events=["s3:ObjectCreated:*"],
        name="convert_raw_object",
    )
    def on_raw_object(event: S3Event) -> None:
        remove_stale_spools()
        # Chalice has already URL-decoded event.key: decoding again would break '+' and '%'.
        report = convert_raw_object(_s3_store(), event.key, SETTINGS)
        app.log.info(json.dumps({"event": "convert", **report.as_log()}, separators=(",", ":")))

    # 00:30 UTC: Firehose's buffer interval is at most 15 minutes, so the previous
    # day's last objects have landed by then. It builds each missing day in this Lambda
    # or starts it on Athena (ATHENA_DAILY_THRESHOLD_BYTES), and the Parquet copy.
    @app.schedule(Cron(30, 0, "*", "*", "?", "*"), name="build_daily_csv")
    def on_daily_schedule(event: CloudWatchEvent) -> None:
        from chalicelib.daily_schedule import DailySchedule  # not on the API's cold start

        remove_stale_spools()
        schedule = DailySchedule(_s3_store(), _s3_client(), SETTINGS, _athena_client, app.log)
        schedule.run(event.time)

    # The Athena build's next step, when a query's result lands in the workgroup's
    # result location (suffix .csv: results and UNLOAD manifests, not .metadata files).
    @app.on_s3_event(
        bucket=SETTINGS.bucket,
        prefix=SETTINGS.daily.results_prefix,
        suffix=".csv",
        events=["s3:ObjectCreated:*"],
        name="athena_daily_step",
    )
    def on_athena_result(event: S3Event) -> None:
        from chalicelib.athena import daily as athena_daily

        remove_stale_spools()
        job = athena_daily.AthenaDaily(_athena_client(), _s3_client(), SETTINGS, app.log)
        done = athena_daily.on_result_object(job, event.key)
        app.log.info(
            json.dumps(
                {"event": "athena-result", "key": event.key, "did": done}, separators=(",", ":")
            )
        )


def _s3_store() -> ObjectStore:
    return S3Store(_s3_client(), SETTINGS.bucket)

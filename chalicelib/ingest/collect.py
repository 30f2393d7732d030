"""The /events service: body → validated records → sink → answer.

HTTP-free (it answers a status and a body; ``app.py`` makes the response and its headers)
so the route stays wiring and tests can call it directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.ingest.body import BadRequest, confirmed_body, read_body
from chalicelib.ingest.budget import fit_rejects, over_budget_message, stored_budget
from chalicelib.ingest.enrich import Enricher
from chalicelib.ingest.messages import shown
from chalicelib.ingest.strictjson import json_bytes
from chalicelib.ingest.validate import BatchResult, BatchValidator, iso_ms
from chalicelib.rejects.record import body_reject, event_rejects
from chalicelib.sinks import Sink, SinkUnavailable
from chalicelib.terminal import terminal_safe

# Rejections listed in an answer (each with its reason); past it, only counted.
MAX_REJECTIONS_LISTED = 20
# With LOG_EVENT_CONTENTS=true: records shown in the log line, each cut to this size.
MAX_LOGGED_RECORDS = 20
MAX_LOGGED_RECORD_CHARS = 1024
# The 503's message: the client keeps the batch and sends it again.
NOT_STORED = (
    "the events could not all be stored right now: send the batch again later (events stored "
    "twice are removed by eventId)"
)


def lean_log_records() -> None:
    """Make each log record cheaper: the request's log line needs no caller, thread or
    process fields (the logging HOWTO's "Optimization" settings). Process-wide, so it
    is called once by the app (and by the ingest benchmark, which measures the app)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


@dataclass(frozen=True)
class Answer:
    """What the route answers: an HTTP status and the JSON body (accepted, rejected, or a
    message)."""

    status: int
    body: dict[str, Any]


class CollectObserver(Protocol):
    """Sees what each request stored and what it refused (the dev stage's inspector)."""

    def stored(self, records: Sequence[bytes]) -> None: ...

    def rejected(self, records: Sequence[dict[str, Any]]) -> None: ...


class Collector:
    """The /events service: one body and its headers → validated, enriched records in the
    sink, rejects kept in the rejects sink (within the request's storage budget), one log
    line, and the answer. Sinks are made on first use; ``observers`` see both outcomes."""

    def __init__(
        self,
        validator: BatchValidator,
        sink_factory: Callable[[], Sink],
        logger: logging.Logger,
        log_event_contents: bool = False,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        *,
        reject_sink_factory: Callable[[], Sink] | None = None,
        observers: Sequence[CollectObserver] = (),
        enricher: Enricher | None = None,
        allowed_origins: tuple[str, ...] = (),
    ) -> None:
        self._validator = validator
        # The sinks (and their boto3 clients) are made on first use, not at import.
        self._sink_factory = sink_factory
        self._sink: Sink | None = None
        self._reject_sink_factory = reject_sink_factory
        self._reject_sink: Sink | None = None
        self._observers = tuple(observers)
        self._logger = logger
        self._log_event_contents = log_event_contents
        self._clock_ms = clock_ms
        self._enricher = enricher or Enricher()
        # Non-empty: a POST whose Origin header is not one of these is refused (403).
        self._allowed_origins = frozenset(allowed_origins)
        # Rejected records that could not be stored since the container started.
        self.rejects_lost = 0
        # Rejected records not kept because the request's budget had no room for them.
        self.rejects_over_budget = 0

    @property
    def sink(self) -> Sink:
        if self._sink is None:
            self._sink = self._sink_factory()
        return self._sink

    def collect(
        self,
        raw: bytes,
        content_type: str | None,
        request_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Check, store and answer one request; every path ends in ``_finish``, which writes
        the request's one log line (``log``, filled in by each step it went through)."""
        started = time.perf_counter()
        log: dict[str, Any] = {"event": "collect", "requestId": request_id, "bytes": len(raw)}
        now_ms = self._clock_ms()
        request_headers: Mapping[str, str] = headers or {}
        try:
            body, result = self._checked(raw, content_type, now_ms, request_headers)
        except BadRequest as exc:
            record = body_reject(
                received_at=iso_ms(now_ms),
                request_id=request_id,
                status=exc.status,
                reason=exc.message,
                raw=raw,
                content_type=content_type,
                # For a replay: the rule about bots is the stage's then, so it is not applied here.
                server_fields=self._enricher.describe(request_headers),
            )
            self._keep_rejects(log, [record], len(raw))
            return self._finish(log, started, Answer(exc.status, {"message": exc.message}))
        listed = [
            {"index": r.index, "error": r.error} for r in result.rejected[:MAX_REJECTIONS_LISTED]
        ]
        log.update(self._outcome_fields(result, listed))
        if not self._stored(result.records, log):
            return self._finish(log, started, Answer(503, {"message": NOT_STORED}))
        self._notify("stored", result.records)
        if result.rejected:
            # Only on a 200: after a 503 the client sends the batch again, and its
            # rejects would be kept twice.
            records = event_rejects(
                received_at=iso_ms(now_ms),
                request_id=request_id,
                body=body,
                rejections=result.rejected,
                server_fields=result.server_fields,
            )
            self._keep_rejects(log, records, len(raw))
        return self._finish(log, started, Answer(200, _accepted_body(result, listed)))

    def _checked(
        self, raw: bytes, content_type: str | None, now_ms: int, headers: Mapping[str, str]
    ) -> tuple[dict[str, Any], BatchResult]:
        """The body and its events checked, or ``BadRequest`` for the body as a whole: a
        foreign origin, a body that cannot be read, one that would store past its budget."""
        self._check_origin(headers.get("origin"))
        body, result = self._processed(raw, content_type, now_ms, headers)
        stored = sum(map(len, result.records))
        if stored > stored_budget(len(raw)):
            message = over_budget_message(stored, len(raw), len(result.records), body)
            raise BadRequest(413, message)
        return body, result

    def _outcome_fields(self, result: BatchResult, listed: list[dict[str, Any]]) -> dict[str, Any]:
        """What the log line says of a read batch: counts, the first rejections, and with
        LOG_EVENT_CONTENTS the records themselves (cut)."""
        fields: dict[str, Any] = {"accepted": len(result.records), "rejected": len(result.rejected)}
        if result.dropped:
            fields["dropped"] = result.dropped
        if listed:
            fields["rejections"] = listed[:10]
        if self._log_event_contents:
            fields["records"] = [
                shown(line.decode("utf-8"), MAX_LOGGED_RECORD_CHARS)
                for line in result.records[:MAX_LOGGED_RECORDS]
            ]
        return fields

    def _stored(self, records: list[bytes], log: dict[str, Any]) -> bool:
        """Whether the sink took every record (none to store is stored); the log gets the
        sink's time and, on a failure, its error."""
        if not records:
            return True
        sink_started = time.perf_counter()
        try:
            self.sink.write(records)
        except Exception as exc:
            # A bug or an unforeseen backend error is still "not stored": the
            # client keeps the events and resends them. The log says which.
            log["sinkError"] = str(exc) if isinstance(exc, SinkUnavailable) else repr(exc)
            return False
        finally:
            log["sinkMs"] = round((time.perf_counter() - sink_started) * 1000, 2)
        return True

    def _processed(
        self, raw: bytes, content_type: str | None, now_ms: int, headers: Mapping[str, str]
    ) -> tuple[dict[str, Any], BatchResult]:
        """The body, read strictly, and what the validator makes of it. orjson's reading is
        taken when the keys the validator counted on its way are the text's count
        (``strictjson.strict_loads_bytes``'s rule, without a walk of its own); else the
        strict decoder's reading or its error, which comes before any other."""
        body, keys_in_text = read_body(raw, content_type, self._validator.limits)

        def server_fields(context: dict[str, Any]) -> dict[str, Any] | None:
            return self._enricher.fields(headers, context)

        try:
            result = self._validator.process(body, now_ms, server_fields)
        except BadRequest:
            confirmed = confirmed_body(raw, body, keys_in_text)
            if confirmed is body:
                raise
            return confirmed, self._validator.process(confirmed, now_ms, server_fields)
        if keys_in_text >= 0 and result.keys != keys_in_text:
            confirmed = confirmed_body(raw, body, keys_in_text, result.keys)
            if result.keys < 0:  # a number orjson could not hold: the records may differ
                return confirmed, self._validator.process(confirmed, now_ms, server_fields)
        return body, result

    def _check_origin(self, origin: str | None) -> None:
        """A browser sends Origin on every POST, beacons and text/plain included: one
        naming a page of another site is refused. No Origin (curl, servers, devices) passes:
        those can send anything anyway, and the header is what tells a browser apart."""
        if self._allowed_origins and origin is not None and origin not in self._allowed_origins:
            raise BadRequest(
                403,
                f"Origin {shown(origin)} is not in this stage's ALLOWED_ORIGINS: events from "
                "other sites' pages are not stored (behind a proxy that sends another origin, "
                "set ENFORCE_ALLOWED_ORIGINS=false)",
            )

    def _keep_rejects(
        self, log: dict[str, Any], records: list[dict[str, Any]], body_bytes: int
    ) -> None:
        """Best effort: a failure is logged and counted, never changes the answer. What
        would take more than the request's budget (8 times its body) is counted, not kept."""
        given = len(records)
        records, lines = fit_rejects(records, stored_budget(body_bytes))
        if len(records) < given:
            self.rejects_over_budget += given - len(records)
            log["rejectsOverBudget"] = given - len(records)
        self._notify("rejected", records)
        if self._reject_sink_factory is None or not lines:
            return
        try:
            if self._reject_sink is None:
                self._reject_sink = self._reject_sink_factory()
            self._reject_sink.write(lines)
        except Exception as exc:
            self.rejects_lost += len(records)
            log["rejectsLost"] = len(records)
            log["rejectsError"] = shown(str(exc) or repr(exc), 200)
        else:
            log["rejectsKept"] = len(records)

    def _notify(self, event: str, records: Sequence[Any]) -> None:
        for observer in self._observers:
            try:
                getattr(observer, event)(records)
            except Exception:  # an observer must never change the answer
                self._logger.exception("collect observer failed on %s", event)

    def _finish(self, log: dict[str, Any], started: float, answer: Answer) -> Answer:
        log["status"] = answer.status
        if answer.status >= 400:
            log["error"] = answer.body.get("message")
        log["ms"] = round((time.perf_counter() - started) * 1000, 2)
        level = logging.ERROR if answer.status >= 500 else logging.INFO
        if self._logger.isEnabledFor(level):
            # json_bytes: something echoed may be what UTF-8 cannot hold; terminal_safe:
            # the line reaches a terminal under make dev (JSON escapes, still JSON).
            self._logger.log(level, terminal_safe(json_bytes(log).decode("utf-8")))
        return answer


def _accepted_body(result: BatchResult, listed: list[dict[str, Any]]) -> dict[str, Any]:
    """The 200's body: accepted, dropped (bots), the first rejections and, past them, the count."""
    body: dict[str, Any] = {"accepted": len(result.records)}
    if result.dropped:
        body["dropped"] = result.dropped
    body["rejected"] = listed
    if len(result.rejected) > len(listed):
        body["rejectedCount"] = len(result.rejected)
    return body

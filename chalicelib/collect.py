"""The /events service: body → validated records → sink → answer.

HTTP-free so the route in ``app.py`` stays wiring and tests can call it directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from chalicelib.enrich import Enricher
from chalicelib.sinks import Sink, SinkUnavailable
from chalicelib.validate import BadRequest, BatchValidator, parse_body, shown

JSON_HEADERS = {"Content-Type": "application/json"}
# Rejections listed in an answer (each with its reason); past it, only counted.
MAX_REJECTIONS_LISTED = 20
# With LOG_EVENT_CONTENTS=true: records shown in the log line, each cut to this size.
MAX_LOGGED_RECORDS = 20
MAX_LOGGED_RECORD_CHARS = 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class Collector:
    def __init__(
        self,
        validator: BatchValidator,
        sink_factory: Callable[[], Sink],
        logger: logging.Logger,
        log_event_contents: bool = False,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        enricher: Enricher | None = None,
    ) -> None:
        self._validator = validator
        # The sink (and its boto3 client) is made on first use, not at import.
        self._sink_factory = sink_factory
        self._sink: Sink | None = None
        self._logger = logger
        self._log_event_contents = log_event_contents
        self._clock_ms = clock_ms
        self._enricher = enricher or Enricher()

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
        started = time.perf_counter()
        log: dict[str, Any] = {"event": "collect", "requestId": request_id, "bytes": len(raw)}
        request_headers: Mapping[str, str] = headers or {}
        try:
            body = parse_body(raw, content_type, self._validator.limits)
            result = self._validator.process(
                body,
                self._clock_ms(),
                lambda context: self._enricher.fields(request_headers, context),
            )
        except BadRequest as exc:
            return self._finish(log, started, Answer(exc.status, {"message": exc.message}))
        rejected = [
            {"index": r.index, "error": r.error} for r in result.rejected[:MAX_REJECTIONS_LISTED]
        ]
        log.update(accepted=len(result.records), rejected=len(result.rejected))
        if result.dropped:
            log["dropped"] = result.dropped
        if rejected:
            log["rejections"] = rejected[:10]
        if self._log_event_contents:
            log["records"] = [
                shown(line.decode("utf-8"), MAX_LOGGED_RECORD_CHARS)
                for line in result.records[:MAX_LOGGED_RECORDS]
            ]
        if result.records:
            sink_started = time.perf_counter()
            try:
                self.sink.write(result.records)
            except Exception as exc:
                # A bug or an unforeseen backend error is still "not stored": the
                # client keeps the events and resends them. The log says which.
                detail = str(exc) if isinstance(exc, SinkUnavailable) else repr(exc)
                log["sinkError"] = detail
                answer = Answer(
                    503,
                    {
                        "message": "the events could not all be stored right now: send the "
                        "batch again later (events stored twice are removed by eventId)",
                    },
                )
                return self._finish(log, started, answer)
            finally:
                log["sinkMs"] = round((time.perf_counter() - sink_started) * 1000, 2)
        body = {"accepted": len(result.records)}
        if result.dropped:
            body["dropped"] = result.dropped
        body["rejected"] = rejected
        if len(result.rejected) > len(rejected):
            body["rejectedCount"] = len(result.rejected)
        answer = Answer(200, body)
        return self._finish(log, started, answer)

    def _finish(self, log: dict[str, Any], started: float, answer: Answer) -> Answer:
        log["status"] = answer.status
        if answer.status >= 400:
            log["error"] = answer.body.get("message")
        log["ms"] = round((time.perf_counter() - started) * 1000, 2)
        level = logging.ERROR if answer.status >= 500 else logging.INFO
        if self._logger.isEnabledFor(level):
            self._logger.log(level, orjson.dumps(log).decode("utf-8"))
        return answer

"""The request body as JSON: its content type, size and text checked, read strictly
(``strictjson``) or read fast with the last check left to the validator's walk."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.config import Limits
from chalicelib.ingest.messages import json_type, shown
from chalicelib.ingest.strictjson import (
    StrictJSONError,
    confirmed,
    loads_unconfirmed,
)

JSON_CONTENT_TYPES = ("application/json", "text/plain")


class BadRequest(Exception):
    """The body as a whole cannot be taken. ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_body(raw: bytes, content_type: str | None, limits: Limits) -> dict[str, Any]:
    """Turn the raw request into the batch object, or raise ``BadRequest``."""
    body, keys_in_text = read_body(raw, content_type, limits)
    checked: dict[str, Any] = confirmed_body(raw, body, keys_in_text)
    return checked


def read_body(raw: bytes, content_type: str | None, limits: Limits) -> tuple[dict[str, Any], int]:
    """``parse_body`` but for its last step, left to a caller that walks the body anyway:
    the body and the count of keys (``strictjson.loads_unconfirmed``) that
    ``BatchValidator.process`` must find in it (``BatchResult.keys``) for it to be what the
    strict decoder reads, or -1 when it already is; if not, ``confirmed_body``."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_CONTENT_TYPES:
        raise BadRequest(
            415,
            f"Content-Type {shown(media_type or 'none')} is not accepted: send "
            "application/json, or text/plain holding JSON (what navigator.sendBeacon sends "
            "for a string)",
        )
    if len(raw) > limits.max_body_bytes:
        raise BadRequest(
            413,
            f"body is {len(raw)} bytes; the limit is {limits.max_body_bytes} bytes per "
            "request: send fewer events per batch",
        )
    if not raw or raw.isspace():  # (strip() would copy the body)
        # chalice local hands chunked bodies over empty, so say what to do about it.
        raise BadRequest(
            400,
            "request body is empty: send a JSON batch with a Content-Length "
            "(chunked transfer encoding is not supported)",
        )
    body, keys_in_text = _read_json(loads_unconfirmed, raw)
    if not isinstance(body, dict):
        body = confirmed_body(raw, body, keys_in_text)  # a JSON error is said first
        raise BadRequest(
            400,
            f'body must be a JSON object with an "events" array, got {json_type(body)}',
        )
    return body, keys_in_text


def confirmed_body(raw: bytes, body: Any, keys_in_text: int, keys: int | None = None) -> Any:
    """``body`` (from ``read_body``) if it is what the strict decoder reads from ``raw``:
    the keys it holds (``keys``, counted by the caller, else here) are the text's count;
    else the strict decoder's reading, or its error as a ``BadRequest``."""
    return _read_json(lambda text: confirmed(text, body, keys_in_text, keys), raw)


def _read_json[T](read: Callable[[bytes], T], raw: bytes) -> T:
    try:
        return read(raw)
    except UnicodeDecodeError as exc:
        raise BadRequest(400, f"body is not valid UTF-8 (byte {exc.start})") from None
    except StrictJSONError as exc:
        raise BadRequest(400, f"body is not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadRequest(400, "body is not valid JSON: nested too deeply") from None

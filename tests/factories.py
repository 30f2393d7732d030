"""Bodies and events shaped like the spec's examples."""

from __future__ import annotations

import json
import uuid
from typing import Any

SENT_AT = 1707782431000


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": str(uuid.uuid4()),
        "timestamp": 1707782430123,
        "sessionId": "session-1",
        "metricName": "ContentElementInteraction",
        "value": None,
        "demoContentId": "ButtonClicked-123",
        "metricAttributes": {"action": "click", "button": "submit"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _MISSING}


_MISSING = object()
MISSING: Any = _MISSING


def batch(*events: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sentAt": SENT_AT,
        "context": {
            "device": "my-device",
            "deviceCodename": "my-code",
            "language": "en_us",
            "appVersion": "1.0.0",
            "gitCommitSha": "abc123",
        },
        "events": list(events) if events else [event()],
    }
    body.update(overrides)
    return body


def body_bytes(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")

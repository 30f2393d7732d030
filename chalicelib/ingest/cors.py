"""The route's HTTP headers: CORS for an allow-list of origins, and the JSON content type.

Chalice's ``CORSConfig`` holds one origin and answers preflight with a fixed
API Gateway mock, so the app answers ``OPTIONS /events`` itself and puts the
same headers on every POST answer, errors included (a browser hides an error
body that lacks them, and the developer sees only "CORS error").
"""

from __future__ import annotations

JSON_HEADERS = {"Content-Type": "application/json"}
ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type"
PREFLIGHT_MAX_AGE_SECONDS = "86400"
# Without this a cross-origin script cannot read Retry-After on a 503.
_EXPOSED = {"Access-Control-Expose-Headers": "Retry-After"}


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    return "*" in allowed or (origin is not None and origin in allowed)


def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """Headers for an actual (non-preflight) answer."""
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", **_EXPOSED}
    headers = {"Vary": "Origin"}
    if origin is not None and origin in allowed:
        headers["Access-Control-Allow-Origin"] = origin
        headers.update(_EXPOSED)
    return headers


def preflight_headers(
    origin: str | None, allowed: tuple[str, ...], methods: str = ALLOWED_METHODS
) -> dict[str, str]:
    headers = cors_headers(origin, allowed)
    if "Access-Control-Allow-Origin" in headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_SECONDS,
            }
        )
    return headers

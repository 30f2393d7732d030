"""In a stage with an allow-list, a POST whose Origin names another site
is refused (403), kept as a reject and logged, not stored; without Origin (curl, servers,
devices) it is stored; ENFORCE_ALLOWED_ORIGINS=false turns the check off."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.config import Settings
from tests.factories import batch, body_bytes, event

OURS = "https://app.example.com"
BODY = body_bytes(batch(event(eventId="e-1")))


def lines(folder: Path) -> list[dict[str, Any]]:
    found = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    return [json.loads(line) for p in found for line in p.read_bytes().splitlines()]


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Client]:
    """app.py's own wiring with these stage variables, storing under tmp_path."""

    def make(**env: str) -> Client:
        settings = Settings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path), **env})
        monkeypatch.setattr(app_module, "SETTINGS", settings)
        monkeypatch.setattr(app_module, "dev_loop", None)
        monkeypatch.setattr(app_module, "collector", app_module._make_collector())
        return Client(app_module.app, stage_name="dev")

    return make


def post(client: Client, origin: str | None, content_type: str = "text/plain") -> Any:
    headers = {"Content-Type": content_type}
    if origin is not None:
        headers["Origin"] = origin
    return client.http.post("/events", headers=headers, body=BODY)


@pytest.mark.parametrize(
    "content_type", ["text/plain;charset=UTF-8", "text/plain", "application/json"]
)
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "https://app.example.com."])
def test_another_sites_post_is_refused_and_kept_as_a_reject(
    stage: Callable[..., Client],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    origin: str,
    content_type: str,
) -> None:
    # text/plain;charset=UTF-8 is what navigator.sendBeacon sends for a string.
    client = stage(ANALYTICS_STAGE="prod", ALLOWED_ORIGINS=f"{OURS},https://www.example.com")
    with client, caplog.at_level(logging.INFO, logger=app_module.app.log.name):
        answer = post(client, origin, content_type)
    assert answer.status_code == 403
    assert f"Origin {origin} is not in this stage's ALLOWED_ORIGINS" in answer.json_body["message"]
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert lines(tmp_path / "raw") == []
    [kept] = lines(tmp_path / "rejected")
    assert kept["status"] == 403 and kept["reason"] == answer.json_body["message"]
    assert kept["body"] == BODY.decode()
    [logged] = [json.loads(r.getMessage()) for r in caplog.records if "collect" in r.getMessage()]
    assert logged["status"] == 403 and logged["rejectsKept"] == 1


@pytest.mark.parametrize("origin", [OURS, None])
def test_our_origin_and_no_origin_are_stored(
    stage: Callable[..., Client], tmp_path: Path, origin: str | None
) -> None:
    with stage(ANALYTICS_STAGE="prod", ALLOWED_ORIGINS=OURS) as client:
        answer = post(client, origin)
    assert answer.status_code == 200 and answer.json_body["accepted"] == 1
    assert len(lines(tmp_path / "raw")) == 1 and lines(tmp_path / "rejected") == []


@pytest.mark.parametrize(
    "env",
    [
        {"ANALYTICS_STAGE": "prod", "ALLOWED_ORIGINS": OURS, "ENFORCE_ALLOWED_ORIGINS": "false"},
        {"ANALYTICS_STAGE": "dev", "ALLOWED_ORIGINS": "*"},
    ],
    ids=["turned-off", "dev-star"],
)
def test_without_the_check_another_origin_is_stored(
    stage: Callable[..., Client], tmp_path: Path, env: dict[str, str]
) -> None:
    with stage(**env) as client:
        answer = post(client, "https://proxy.example")
    assert answer.status_code == 200 and answer.json_body["accepted"] == 1
    assert len(lines(tmp_path / "raw")) == 1


def test_the_prod_stage_checks_origins() -> None:
    config = json.loads((Path(__file__).parent.parent / ".chalice/config.json").read_text())
    prod = Settings.from_env(config["stages"]["prod"]["environment_variables"])
    assert prod.enforce_allowed_origins and "*" not in prod.allowed_origins

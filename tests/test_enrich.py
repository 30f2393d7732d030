"""chalicelib.ingest.enrich: the fields the server adds from a request's headers, one by one."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import orjson
import pytest

from chalicelib.ingest import enrich
from chalicelib.ingest.enrich import (
    MAX_USER_AGENT_CHARS,
    MAX_VALUE_CHARS,
    USER_AGENT_CACHE_SIZE,
    Enricher,
    describe_user_agent,
)
from chalicelib.ingest.validate import SCHEMA_PATH
from tests.conftest import python_output

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SERVER_FIELDS = jsonschema.Draft7Validator(
    json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["definitions"]["serverFields"]
)

# (user agent, uaBrowser, uaBrowserVersion, uaOs, uaOsVersion, uaDeviceType, botReason)
USER_AGENTS = [
    pytest.param(
        CHROME_WINDOWS, "Chrome", "131", "Windows", "10", "desktop", "", id="desktop-chrome"
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        *("Firefox", "133", "Windows", "10", "desktop", ""),
        id="desktop-firefox-windows",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        *("Firefox", "133", "Linux", "", "desktop", ""),
        id="desktop-firefox-linux",
    ),
    pytest.param(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Safari/605.1.15",
        *("Safari", "18", "Mac OS X", "10", "desktop", ""),
        id="desktop-safari",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        *("Edge", "131", "Windows", "10", "desktop", ""),
        id="desktop-edge",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        *("Chrome", "131", "Chrome OS", "14541", "desktop", ""),
        id="chromebook",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/49.0.2623.112 Safari/537.36",
        *("Chrome", "49", "Windows", "XP", "desktop", ""),
        id="windows-xp-version-is-text",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        *("Mobile Safari", "18", "iOS", "18", "mobile", ""),
        id="ios-safari",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        *("Chrome Mobile iOS", "131", "iOS", "18", "mobile", ""),
        id="ios-chrome",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        *("Chrome Mobile", "131", "Android", "10", "mobile", ""),
        id="android-chrome",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        *("Samsung Internet", "26", "Android", "14", "mobile", ""),
        id="android-samsung-internet",
    ),
    pytest.param(
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        *("Firefox Mobile", "133", "Android", "14", "mobile", ""),
        id="android-firefox",
    ),
    pytest.param(
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        *("Mobile Safari", "17", "iOS", "17", "tablet", ""),
        id="ipad",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        *("Chrome", "131", "Android", "13", "tablet", ""),
        id="android-tablet",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/131.2.1 like Chrome/131.0.6778.135 Safari/537.36",
        *("Amazon Silk", "131", "Android", "11", "tablet", ""),
        id="kindle-fire",
    ),
    pytest.param(GOOGLEBOT, "Googlebot", "2", "", "", "bot", "crawler-list", id="googlebot"),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/131.0.6778.108 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
        *("Googlebot", "2", "Android", "6", "bot", "crawler-list"),
        id="googlebot-smartphone",
    ),
    pytest.param(
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        *("bingbot", "2", "", "", "bot", "crawler-list"),
        id="bingbot",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        *("HeadlessChrome", "131", "Linux", "", "bot", "automation"),
        id="headless-chrome",
    ),
    pytest.param("curl/8.5.0", "curl", "8", "", "", "bot", "no-browser", id="curl"),
    pytest.param(
        "python-requests/2.32.3",
        *("Python Requests", "2", "", "", "bot", "no-browser"),
        id="python-requests",
    ),
    pytest.param(
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "85.0.4183.93/6.0 TV Safari/537.36",
        *("Safari", "", "Tizen", "6", "other", ""),
        id="smart-tv",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/131.0.0.0 Safari/537.36 Edge/44.18363.8131",
        *("Edge", "44", "Windows", "10", "other", ""),
        id="console",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7633) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Silk/131.3.1 like Chrome/131.0.6778.200 Safari/537.36",
        *("Amazon Silk", "131", "Android", "9", "other", ""),
        id="fire-tv",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Minecraft/1.21 DraftKings/4",
        *("Chrome", "131", "Windows", "10", "desktop", ""),
        id="tv-words-inside-other-words",
    ),
    pytest.param("", "", "", "", "", "other", "", id="no-user-agent"),
]


def fields_for(user_agent: str | None = None, **headers: str) -> dict[str, Any]:
    if user_agent is not None:
        headers["user-agent"] = user_agent
    fields = Enricher().fields(headers, {})
    assert fields is not None
    return fields


@pytest.mark.parametrize(
    ("user_agent", "browser", "browser_version", "os", "os_version", "device_type", "reason"),
    USER_AGENTS,
)
def test_user_agent_fields(
    user_agent: str,
    browser: str,
    browser_version: str,
    os: str,
    os_version: str,
    device_type: str,
    reason: str,
) -> None:
    fields = fields_for(user_agent)
    assert fields == {
        "uaBrowser": browser,
        "uaBrowserVersion": browser_version,
        "uaOs": os,
        "uaOsVersion": os_version,
        "uaDeviceType": device_type,
        "isBot": reason != "",
        "botReason": reason,
        "country": "",
    }
    SERVER_FIELDS.validate({"serverTimestamp": "2026-11-28T12:00:00.000Z", **fields})


def test_absent_user_agent_header_is_the_empty_one() -> None:
    assert fields_for() == fields_for("")


@pytest.mark.parametrize(
    ("header", "country"),
    [("DE", "DE"), ("US", "US"), (None, ""), ("", ""), ("de", ""), ("DEU", ""), ("D1", "")],
)
def test_country_from_the_cloudfront_header(header: str | None, country: str) -> None:
    headers = {} if header is None else {"cloudfront-viewer-country": header}
    assert fields_for(CHROME_WINDOWS, **headers)["country"] == country


@pytest.mark.parametrize(
    ("context", "is_bot"),
    [
        ({"webdriver": True, "device": "d"}, True),
        ({"webdriver": False, "device": "d"}, False),
        ({"webdriver": "true", "device": "d"}, False),
        ({"device": "d"}, False),
    ],
)
def test_webdriver_signal_marks_a_bot_and_leaves_the_context(
    context: dict[str, Any], is_bot: bool
) -> None:
    fields = Enricher().fields({"user-agent": CHROME_WINDOWS}, context)
    assert fields is not None
    assert fields["isBot"] is is_bot
    assert fields["botReason"] == ("automation" if is_bot else "")
    assert fields["uaDeviceType"] == ("bot" if is_bot else "desktop")
    assert fields["uaBrowser"] == "Chrome"  # still parsed: a bot's browser is worth knowing
    assert context == {"device": "d"}
    # The cached description of the user agent is not changed by one request's signal.
    assert describe_user_agent(CHROME_WINDOWS)[0]["isBot"] is False


@pytest.mark.parametrize(
    ("user_agent", "context", "dropped"),
    [
        (GOOGLEBOT, {}, True),
        ("curl/8.5.0", {}, True),
        (CHROME_WINDOWS, {"webdriver": True}, True),
        (CHROME_WINDOWS, {}, False),
        ("", {}, False),
    ],
)
def test_drop_bots_gives_no_fields_for_bots(
    user_agent: str, context: dict[str, Any], dropped: bool
) -> None:
    fields = Enricher(drop_bots=True).fields({"user-agent": user_agent}, context)
    assert (fields is None) is dropped
    assert "webdriver" not in context


def test_raw_user_agent_is_stored_only_when_asked_and_cut() -> None:
    assert "userAgent" not in fields_for(CHROME_WINDOWS)
    keeper = Enricher(store_user_agent=True)
    fields = keeper.fields({"user-agent": CHROME_WINDOWS}, {})
    assert fields is not None and fields["userAgent"] == CHROME_WINDOWS
    huge = CHROME_WINDOWS + " x" * 50_000
    fields = keeper.fields({"user-agent": huge}, {})
    assert fields is not None and fields["userAgent"] == huge[:MAX_USER_AGENT_CHARS]


def test_a_huge_user_agent_is_parsed_from_its_start_and_gives_bounded_values() -> None:
    # A rule that copies a product name out of the header cannot copy kilobytes.
    fields = fields_for("A" * 100_000 + "/1.0")
    assert all(len(str(value)) <= MAX_VALUE_CHARS for value in fields.values())
    assert fields_for(CHROME_WINDOWS + "Z" * 100_000)["uaBrowser"] == "Chrome"


def test_lone_surrogates_in_the_header_are_no_crash() -> None:
    agent = "Mozilla/5.0 (compatible; Googlebot/2.1) \udcff"
    fields = Enricher(store_user_agent=True).fields({"user-agent": agent}, {})
    assert fields is not None
    assert (fields["uaBrowser"], fields["isBot"]) == ("Googlebot", True)
    assert fields["userAgent"] == agent.replace("\udcff", "?")
    orjson.dumps(fields)  # what the route stores with: refuses lone surrogates


def test_each_distinct_user_agent_is_parsed_once() -> None:
    assert describe_user_agent.cache_parameters()["maxsize"] == USER_AGENT_CACHE_SIZE
    agent = CHROME_WINDOWS + " cache-test"
    before = describe_user_agent.cache_info()
    for _ in range(3):
        fields_for(agent)
    after = describe_user_agent.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 2


def test_the_native_resolver_is_the_one_used() -> None:
    # ua-parser-rs (a requirement) makes ua-parser about 40x faster on a cache miss.
    fields_for(CHROME_WINDOWS)
    assert type(enrich._PARSERS.resolve).__module__ == "ua_parser.regex"


def test_importing_the_app_does_not_load_the_parsers() -> None:
    code = (
        "import sys, app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ua_parser', 'ua_parser_rs', 'ua_parser_builtins', 'crawlerdetect')))"
    )
    assert python_output(code) == "[]"

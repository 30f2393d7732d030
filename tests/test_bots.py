"""Which requests are bots', and why (chalicelib/ingest/bots.py through enrich.bot_decision).

Known misses and false flags of the lists, each own rule with the case it is for, the
order of the reasons, and hostile headers (their cost is in bench/bench_bots.py; here
only that they are answered and bounded).
"""

from __future__ import annotations

import pytest

from chalicelib.ingest.bots import (
    AUTOMATION,
    BOT_REASONS,
    CRAWLER_LIST,
    NO_BROWSER,
    BotDetector,
    crawler_user_agents_data,
)
from chalicelib.ingest.enrich import (
    MAX_USER_AGENT_CHARS,
    Enricher,
    bot_decision,
    describe_user_agent,
)
from tests.test_enrich import CHROME_WINDOWS

# Bots an earlier rule let through, with the reason now given.
MISSED_BOTS = [
    ("Datadog Agent/5.10.1", NO_BROWSER),  # crawler-user-agents: monitoring
    ("prometheus/2.18.1", NO_BROWSER),  # the shape rule: no browser, no platform
    ("collectd/5.5.1", NO_BROWSER),
    ("Mozilla/4.0 (compatible; Catchpoint)", NO_BROWSER),  # monitoring, though "Mozilla"
    ("Akregator/1.2.9; librss/remnants", NO_BROWSER),  # a feed reader program
    ("Apple-PubSub/65.28", NO_BROWSER),
    ("Mozilla/5.0 (compatible; anthropic-ai/1.0; +https://www.anthropic.com)", CRAWLER_LIST),
    ("claude-code/2.1.107 (cli)", NO_BROWSER),
    ("Arachni/v1.5.1", NO_BROWSER),
    ("ClamAV/0.101.5", NO_BROWSER),
    ("Zendesk Webhook", CRAWLER_LIST),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Cypress/3.3.2 Chrome/61.0.3163.100 Electron/2.0.18 Safari/537.36",
        AUTOMATION,
    ),
    ("BW/1.1; bit.ly/2W6Px8S", CRAWLER_LIST),
]

# People an earlier rule flagged as bots, and their kind.
FLAGGED_PEOPLE = [
    pytest.param("Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/1.1.1d", id="lynx-1"),
    pytest.param("Lynx/2.8.8pre.4 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/2.12.23", id="lynx-2"),
    pytest.param("Lynx/2.8.7rel.2 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/1.0.0a", id="lynx-3"),
    pytest.param("Lynx/2.8.6rel.5 libwww-FM/2.14", id="lynx-4"),
    pytest.param("Lynx/2.8.5rel.1 libwww-FM/2.15FC SSL-MM/1.4.1c OpenSSL/0.9.7e-dev", id="lynx-5"),
    pytest.param("NCSA_Mosaic/2.7b5 (X11;Linux 2.6.7 i686) libwww/2.12 modified", id="mosaic"),
    pytest.param("AmigaVoyager/3.2 (AmigaOS/MC680x0)", id="amiga-voyager"),
    pytest.param(
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)",
        id="microsoft-office",
    ),
    pytest.param("Outlook-iOS/709.2189947.prod.iphone (3.24.0)", id="outlook-ios"),
    pytest.param(
        "Outlook-Express/7.0 (MSIE 7.0; Windows NT 6.1; WOW64; Trident/7.0; .NET4.0C; "
        ".NET4.0E; TmstmpExt)",
        id="outlook-express",
    ),
    pytest.param(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_3) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Slack/4.4.2 Chrome/80.0.3987.163 Electron/8.2.5 Safari/537.36",
        id="slack-electron",
    ),
    pytest.param(
        "fuboTV/4.75.0 (Linux;Android 7.1.2; AFTMM Build/NS6265) FuboPlayer/1.0.2.4", id="fubo-tv"
    ),
]

# Other people the docs name: webviews, in-app browsers, Electron apps, mail clients.
OTHER_PEOPLE = [
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone13,2;FBMD/iPhone;FBSN/iOS;FBSV/16.5]",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Teams/1.6.00.4472 Chrome/98.0.4758.141 Electron/17.4.11 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "discord/1.0.9015 Chrome/108.0.5359.215 Electron/22.3.12 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 Thunderbird/102.10.0",
    "Links (2.20.2; Linux 5.4.0 x86_64; GNU C 9.2.1; text)",
    "ELinks/0.13.GIT (textmode; Linux 2.6.29 i686; 119x51-2)",
    "w3m/0.5.3+git20190105",
    "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
]


@pytest.mark.parametrize(("user_agent", "reason"), MISSED_BOTS)
def test_the_reviews_missed_bots_are_flagged_with_their_reason(
    user_agent: str, reason: str
) -> None:
    assert bot_decision(user_agent) == (True, reason)


@pytest.mark.parametrize("user_agent", FLAGGED_PEOPLE)
def test_the_reviews_flagged_people_are_people(user_agent: str) -> None:
    assert bot_decision(user_agent) == (False, "")


@pytest.mark.parametrize("user_agent", OTHER_PEOPLE)
def test_webviews_apps_and_mail_clients_are_people(user_agent: str) -> None:
    assert bot_decision(user_agent) == (False, "")


def test_the_people_rule_takes_out_the_product_not_the_rest() -> None:
    # A crawler's token after a text browser's product, or in an Electron app, still counts.
    assert bot_decision("Lynx/2.8.9rel.1 libwww-FM/2.14 (compatible; Googlebot/2.1)")[0]
    assert bot_decision("Lynx/2.8 (compatible; Googlebot/2.1)") == (True, CRAWLER_LIST)
    assert bot_decision("Microsoft Office/16.0 (Windows NT 10.0; AhrefsBot/7.0)")[0]
    electron = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.4.2 "
        "Chrome/80.0.3987.163 Electron/8.2.5 Safari/537.36"
    )
    assert bot_decision(electron + " (compatible; bingbot/2.0)") == (True, CRAWLER_LIST)
    # Slack's product token is on crawlerdetect's list: only its Electron app is a person.
    assert bot_decision("Slack/4.4.2")[0]


@pytest.mark.parametrize(
    "user_agent",
    [
        CHROME_WINDOWS.replace("Chrome/", "HeadlessChrome/"),
        CHROME_WINDOWS + " Playwright/1.40",
        CHROME_WINDOWS + " Puppeteer",
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0 Selenium",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
        "PhantomJS/2.1.1 Safari/538.1",
        # crawler-user-agents tags an AI agent's IDE browser "browser-automation": that
        # wins over the Electron-app rule.
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Code/1.115.0 Chrome/142.0.7444.265 Electron/39.8.5 Safari/537.36",
    ],
)
def test_automation_tokens(user_agent: str) -> None:
    assert bot_decision(user_agent) == (True, AUTOMATION)


def test_webdriver_is_automation_and_a_user_agent_reason_comes_first() -> None:
    assert bot_decision(CHROME_WINDOWS, webdriver=True) == (True, AUTOMATION)
    assert bot_decision("curl/8.5.0", webdriver=True) == (True, NO_BROWSER)
    assert bot_decision(CHROME_WINDOWS) == (False, "")


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        ("curl/8.5.0", NO_BROWSER),  # crawler-user-agents: http-library
        ("python-requests/2.32.3", NO_BROWSER),
        ("Go-http-client/1.1", NO_BROWSER),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", CRAWLER_LIST),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", CRAWLER_LIST),
        # crawlerdetect's one lookahead, spelled out for the native engine.
        ("Mozilla/5.0 (compatible; YandexBot/3.0)", CRAWLER_LIST),
        ("Mozilla/5.0 (compatible; Yandex)", CRAWLER_LIST),
    ],
)
def test_the_lists_decide_with_their_tags(user_agent: str, reason: str) -> None:
    assert bot_decision(user_agent) == (True, reason)


@pytest.mark.parametrize(
    "user_agent",
    [
        # The shape rule's boundary: a platform, a known browser or a Mozilla/Opera claim
        # is enough to stay a person when no list matches.
        "SomeTvApp/1.0 (Linux; Android 9)",
        "Mozilla/5.0 (Unknown-Device)",
        "Dillo/3.0.5",
        # Feature phones: their Java ME tokens are the platform (the shape rule's reason).
        "MOT-V3/0E.40.3CR MIB/2.2.1 Profile/MIDP-2.0 Configuration/CLDC-1.1",
        # A TV's own app: a person's (the people rule's TV apps).
        "Roku4640X/DVP-7.70 (297.70E04154A)",
        # crawlerdetect's "Yandex(?!Search)": the Yandex search app is a person.
        "Mozilla/5.0 (compatible; YandexSearch/3.0)",
    ],
)
def test_not_flagged(user_agent: str) -> None:
    assert bot_decision(user_agent) == (False, "")


def test_no_header_is_not_flagged() -> None:
    assert bot_decision("") == (False, "") == bot_decision(None)


def test_every_reason_is_documented_in_the_bench_and_the_fields() -> None:
    fields = Enricher().fields({"user-agent": "prometheus/2.18.1"}, {})
    assert fields is not None
    assert (fields["isBot"], fields["botReason"], fields["uaDeviceType"]) == (
        True,
        NO_BROWSER,
        "bot",
    )
    assert set(BOT_REASONS) == {AUTOMATION, NO_BROWSER, CRAWLER_LIST}


def test_without_crawler_user_agents_its_own_entries_fall_back_to_the_others() -> None:
    # What the bench's held-out column measures: Datadog's agent is on that list only.
    detector = BotDetector(crawler_user_agents=False)
    assert detector.reason("Datadog Agent/5.10.1", False, False) == NO_BROWSER  # by shape
    assert detector.reason("Mozilla/4.0 (compatible; Catchpoint)", True, False) == ""
    assert BotDetector().reason("Mozilla/4.0 (compatible; Catchpoint)", True, False) == NO_BROWSER


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (Linux; Android 10; " + "K" * 440 + " Build/N",
        "Mozilla/5.0 (" + "; " * 2000,
        "a/1 " * 200 + "(KHTML, like Gecko) " + "x/1/2/3 " * 100 + "Electron/1",
        "(KHTML, like Gecko) " * 100 + " Electron/2",
        "Mozilla/5.0 (iPhone; CPU iPhone OS " + "_" * 5000 + " like",
        "Lynx/2 (" + "(" * 3000 + " libwww-FM/2",
        "\udcff" * 600 + "Googlebot/2.1",
        "İ" * 5000,
    ],
)
def test_hostile_headers_are_answered_from_their_first_512_characters(user_agent: str) -> None:
    fields = Enricher().fields({"user-agent": user_agent}, {})
    assert fields is not None
    assert fields["botReason"] in ("", *BOT_REASONS)
    assert fields == Enricher().fields({"user-agent": user_agent[:MAX_USER_AGENT_CHARS]}, {})
    assert describe_user_agent(user_agent[:MAX_USER_AGENT_CHARS])[0]["isBot"] is fields["isBot"]


def test_the_smoke_test_is_stored_on_a_stage_that_drops_bots() -> None:
    # python -m deploy smoke-test expects accepted=1, DROP_BOTS or not.
    from deploy.smoke import SMOKE_USER_AGENT

    assert Enricher(drop_bots=True).fields({"user-agent": SMOKE_USER_AGENT}, {}) is not None


def test_the_crawler_user_agents_copy_says_where_it_is_from_and_its_licence() -> None:
    data = crawler_user_agents_data()
    assert data["source"].startswith("crawler-user-agents 1.")
    assert "MIT License" in data["license"] and "Martin Monperrus" in data["license"]
    assert len(data["patterns"]) > 1000
    tags = {tag for _, pattern_tags in data["patterns"] for tag in pattern_tags}
    # The tags the reasons are taken from are still the list's.
    assert {"http-library", "monitoring", "browser-automation", "search-engine"} <= tags

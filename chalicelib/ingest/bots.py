"""Whether a user agent is a bot's, and why (issue 19): published lists first, few own rules.

The sources, in the order a decision takes them (the first that says "bot" names the reason):

1. ``automation``: the client's ``navigator.webdriver`` signal, or a token test and browser
   automation tools put in the user agent (HeadlessChrome, Cypress, Playwright, Puppeteer,
   Selenium, PhantomJS, ...), or a crawler-user-agents pattern tagged ``browser-automation``
   (AI agents' browsers, such as the IDEs' built-in ones).
2. ``no-browser`` from the list: a crawler-user-agents pattern tagged ``http-library`` or
   ``monitoring`` (curl, python-requests, Datadog Agent, Pingdom, ...).
3. ``crawler-list``: any other crawler-user-agents pattern (search engines, SEO tools, AI
   crawlers, feed readers, scanners, ...; the package's own case-sensitive rule), or
   crawlerdetect's list (its exclusions first, case-insensitive, as crawlerdetect does).
   crawler-user-agents' patterns are a copy in ``data/`` (see CRAWLER_USER_AGENTS_FILE);
   crawlerdetect is a runtime package.
4. ``no-browser`` by shape: ua-parser knows no browser in it, it names no operating system,
   it does not claim to be Mozilla or Opera, and it is no feature phone's (Profile/MIDP,
   Configuration/CLDC). Our client runs in a browser or a webview,
   and every one of those names its engine or its platform; a header with neither is a
   program (``prometheus/2.18.1``, ``claude-code/2.1.107 (cli)``, ``Zendesk Webhook``).

People stay people: before the lists look, the product token of a client a person uses is
taken out of the header (text browsers, mail and office clients, TV apps; an Electron app's
own name), so that a list entry for that name (crawlerdetect lists ``libwww``, ``Microsoft
Office``, ``Outlook-iOS``, ``Slack/``, ...) does not decide. Whatever else the header
carries is still matched. Automation is matched before that: a Cypress run inside
Electron stays a bot.

Cost: both lists are compiled into ua-parser-rs's native matcher (Rust's regex engine,
linear in the input, with a literal prefilter), so no header costs more than a fraction
of a millisecond; crawlerdetect's own Python matcher took 60 ms for some 500-character
headers (issue 18 row 8). Compiled on first use, once per container.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

AUTOMATION = "automation"
CRAWLER_LIST = "crawler-list"
NO_BROWSER = "no-browser"
# Every value botReason takes; "" is a person's (or an unknown) request.
BOT_REASONS = (AUTOMATION, NO_BROWSER, CRAWLER_LIST)

# Tokens of browser automation (a person never has these in the header). "headless" is
# HeadlessChrome and Firefox's headless mode; the others are the test tools' own tokens.
# Matched by the native engine, case-insensitive, before any list.
_AUTOMATION_TOKENS = tuple(
    (f"(?i){token}", AUTOMATION)
    for token in (
        r"headless",
        r"\bCypress/",
        r"\bPlaywright\b",
        r"\bPuppeteer\b",
        r"\bSelenium\b",
        r"\bWebDriver\b",
        r"PhantomJS",
        r"SlimerJS",
        r"\bNightmare/",
        r"\bZombie\.js\b",
        r"\bHtmlUnit\b",
    )
)
# Clients a person uses whose product token is on a crawler list: text browsers (Lynx
# and Mosaic carry libwww, a library crawlerdetect lists), old and niche browsers, mail
# and office clients, TV apps. Matched at the start of the header only and taken out,
# with the tokens such clients carry that crawlerdetect lists (libwww, Office's
# "Microsoft Outlook 16.0"), before the lists look at the rest: a crawler's own token
# anywhere else in the header still counts.
_PERSON_PRODUCT = re.compile(
    r"^(?:Lynx|Links|ELinks|w3m|NCSA[_ ]Mosaic|AmigaVoyager|IBrowse|AWeb|Dillo|NetSurf"
    r"|Microsoft Office|Microsoft Outlook|Outlook-iOS|Outlook-Android|Outlook-Express"
    r"|Thunderbird|Airmail|fuboTV|Roku[0-9A-Z]*)[/ ][^ ]*",
    re.IGNORECASE,
)
_PERSON_CLIENT_TOKENS = re.compile(r"libwww(?:-FM)?/[^ ;()]*|Microsoft Outlook [0-9.]+")
# An Electron app (Slack, Teams, Discord, ...) names itself between the engine and Chrome:
# a person's desktop app, its name on crawlerdetect's list or not.
# (The first part of each token has no "/", so a token splits one way only: no backtracking
# blow-up on hostile headers.)
_ELECTRON_APP = re.compile(r"(\(KHTML, like Gecko\) )(?:[^ ()/]+/[^ ()]+ )+(?=Chrome/)")
# crawler-user-agents' patterns and tags, copied from the package with its MIT licence by
# scripts/update_crawler_patterns.py (the Lambda needs no package for it).
CRAWLER_USER_AGENTS_FILE = Path(__file__).parent / "data" / "crawler_user_agents.json"
# What the shape rule takes as "a browser": the Mozilla/Opera claim, or the Java ME tokens
# every feature phone's browser sends (no OS ua-parser knows, often no browser either).
_CLAIMS_BROWSER = re.compile(r"^(?:Mozilla|Opera)/|Profile/MIDP|Configuration/CLDC", re.I)
# crawler-user-agents' tags that say "a program, not a crawler" or "automation".
_NO_BROWSER_TAGS = frozenset({"http-library", "monitoring"})
_AUTOMATION_TAGS = frozenset({"browser-automation"})


class _Extractor(Protocol):
    def extract(self, text: str, /) -> Any: ...


_UPPER_CASE_ESCAPE = re.compile(r"\\[A-Z]")


def _lowercase_pattern(pattern: str) -> str:
    """The pattern for lower-cased input: literals lower-cased, escapes (\\S, \\W, \\D,
    \\B) kept. Rust's case-insensitive mode costs ten times the compile time."""
    if not _UPPER_CASE_ESCAPE.search(pattern):
        return pattern.lower()  # the fast way, for nearly all
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            out.append(pattern[index : index + 2])
            index += 2
        else:
            out.append(pattern[index].lower())
            index += 1
    return "".join(out)


_NEGATIVE_LOOKAHEAD = re.compile(r"\(\?!([A-Za-z0-9 ]+)\)")


def _without_lookahead(pattern: str) -> str:
    """Rust's regex has no lookaround; crawlerdetect uses one literal negative lookahead
    (``Yandex(?!Search)``), which is the same as "end, or a character that leaves the
    word": spelled out as a plain alternation."""

    def spell(match: re.Match[str]) -> str:
        word = match.group(1)
        options = [word[:i] + f"(?:$|[^{re.escape(word[i])}])" for i in range(len(word))]
        return "(?:" + "|".join(options) + ")"

    return _NEGATIVE_LOOKAHEAD.sub(spell, pattern)


def _compile(rules: Iterable[tuple[str, str]]) -> _Extractor:
    """One native matcher over (pattern, label) rules; ``extract`` gives the first match
    in rule order as ``.family`` (the label), or None."""
    import ua_parser_rs

    extractor: _Extractor = ua_parser_rs.UserAgentExtractor(
        (pattern, label, None, None, None, None) for pattern, label in rules
    )
    return extractor


def crawler_user_agents_data() -> dict[str, Any]:
    """The copy of crawler-user-agents' patterns and tags this module uses: ``source``
    (package and version), ``license`` and ``patterns`` ([pattern, tags] pairs)."""
    import orjson

    data: dict[str, Any] = orjson.loads(CRAWLER_USER_AGENTS_FILE.read_bytes())
    return data


def _crawler_user_agents_rules() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """crawler-user-agents' patterns: those tagged automation, and the others labelled."""
    automation, others = [], []
    for pattern, tag_list in crawler_user_agents_data()["patterns"]:
        tags = set(tag_list)
        if tags & _AUTOMATION_TAGS:
            automation.append((pattern, AUTOMATION))
        else:
            others.append((pattern, NO_BROWSER if tags & _NO_BROWSER_TAGS else CRAWLER_LIST))
    return automation, others


def _crawlerdetect_rules() -> tuple[list[tuple[str, str]], re.Pattern[str]]:
    from crawlerdetect.providers.crawlers import data as crawlers
    from crawlerdetect.providers.exclusions import data as exclusions

    rules = [(_lowercase_pattern(_without_lookahead(p)), CRAWLER_LIST) for p in crawlers]
    # Lower-cased too, for lower-cased input: Python's IGNORECASE on non-ASCII text costs
    # twice as much.
    return rules, re.compile("|".join(_lowercase_pattern(p) for p in exclusions))


class BotDetector:
    """The compiled sources; made on first use (see the module's docstring)."""

    def __init__(self, crawler_user_agents: bool = True) -> None:
        # crawler_user_agents=False: without that list, for the bench's held-out figure
        # (its recall on the list's own examples says nothing about the other sources).
        self._lock = threading.Lock()
        self._ready = False
        self._use_crawler_user_agents = crawler_user_agents

    def load(self) -> None:
        with self._lock:
            if self._ready:
                return
            automation, listed = _crawler_user_agents_rules()
            if not self._use_crawler_user_agents:
                automation, listed = [], []
            self._automation = _compile([*_AUTOMATION_TOKENS, *automation])
            self._listed = _compile(listed)
            crawlerdetect_rules, self._crawlerdetect_exclusions = _crawlerdetect_rules()
            self._crawlerdetect = _compile(crawlerdetect_rules)
            self._ready = True

    def reason(self, user_agent: str, browser_known: bool, os_known: bool) -> str:
        """The reason the user agent is a bot's, or "" for a person's (and for no header).
        ``browser_known``/``os_known``: whether ua-parser found a browser family / an OS."""
        self.load()
        if not user_agent.strip():
            return ""
        if self._automation.extract(user_agent) is not None:
            return AUTOMATION
        rest, person = _person_product_removed(user_agent)
        if rest.strip():
            listed = self._listed.extract(rest)
            if listed is not None:
                return str(listed.family)
            agent = self._crawlerdetect_exclusions.sub("", rest.lower()).strip()
            if agent and self._crawlerdetect.extract(agent) is not None:
                return CRAWLER_LIST
        if not (person or browser_known or os_known or _CLAIMS_BROWSER.search(user_agent)):
            return NO_BROWSER
        return ""


def _person_product_removed(user_agent: str) -> tuple[str, bool]:
    """The header without the product token of a client a person uses, and whether it had
    one."""
    rest, count = _PERSON_PRODUCT.subn("", user_agent, count=1)
    if count:
        return _PERSON_CLIENT_TOKENS.sub("", rest), True
    if " Electron/" in user_agent:
        rest, count = _ELECTRON_APP.subn(r"\1", user_agent, count=1)
        return rest, bool(count)
    return user_agent, False


def describe_sources() -> Sequence[str]:
    """The published lists behind the decision, with their versions (for the bench)."""
    from importlib.metadata import version

    return (
        str(crawler_user_agents_data()["source"]).split(" (", 1)[0],
        f"crawlerdetect {version('crawlerdetect')}",
    )

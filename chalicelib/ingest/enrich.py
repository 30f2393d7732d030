"""The fields the server adds to every stored record of a request (issue 12).

From the request's headers and one client signal, once per request (never per event):

- ``uaBrowser``, ``uaBrowserVersion``, ``uaOs``, ``uaOsVersion``: ``ua-parser`` with its
  precompiled rules (``ua-parser-builtins``) and its native resolver (``ua-parser-rs``).
  Versions are the major only, as strings ("131", "10", "XP"): not every major is a number.
- ``uaDeviceType``: desktop, mobile, tablet, bot or other, from the tokens browsers send
  ("Mobi", "iPad", "Android" without "Mobile", ...). ua-parser's device rules give a brand
  and model, not a type, and cost more to load than the rest together, so they are not used.
- ``isBot`` and ``botReason``: ``bot_decision`` (below), from the user agent
  (``chalicelib/ingest/bots.py``: crawler-user-agents and crawlerdetect's lists, automation tokens,
  the shape of a header no browser sends) and the batch context's ``"webdriver": true`` (the
  client's ``navigator.webdriver``). ``DROP_BOTS`` follows the same decision.
- ``country``: CloudFront's ``CloudFront-Viewer-Country`` (API Gateway's edge-optimized
  endpoint forwards it); "" when absent, as under ``chalice local``. No IP is read or stored.
- ``userAgent``: the raw header, cut to ``MAX_USER_AGENT_CHARS``, only with
  ``STORE_USER_AGENT=true``.

Unknown values are "" so every record has the same columns. The parsers load on a
container's first request (about 0.2 s of CPU: ua-parser's rules, then the two crawler
lists, all compiled by ua-parser-rs), not at import, where they would slow every cold start
past its budget; each distinct user agent is then parsed once (an LRU cache), well under
0.1 ms for a browser's header and under 1 ms for any header (bench/bench_bots.py).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

from chalicelib.ingest.bots import AUTOMATION, BOT_REASONS, CRAWLER_LIST, BotDetector

# A user agent is read up to this many characters (parsed, matched, stored): a header
# can be kilobytes, and everything that identifies a browser is near its start.
MAX_USER_AGENT_CHARS = 512
# Stored parsed values (a family a rule copied out of the header) are cut to this.
MAX_VALUE_CHARS = 64
# Distinct user agents remembered; a container sees far fewer in its life.
USER_AGENT_CACHE_SIZE = 4096
# The client's signal in the batch context: read, never stored.
WEBDRIVER = "webdriver"
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")

# Every field the server adds to a request's records, in the order it adds them: all a
# stored ``server`` object (kept with rejects, for replay) may give back.
SERVER_FIELDS = (
    "uaBrowser",
    "uaBrowserVersion",
    "uaOs",
    "uaOsVersion",
    "uaDeviceType",
    "isBot",
    "botReason",
    "country",
    "userAgent",
)

# Televisions, consoles, watches, streaming sticks: browsers, but not one of the three.
_OTHER_DEVICE = re.compile(
    r"(?i:smart-?tv)|GoogleTV|Android TV|HbbTV|Web0S|CrKey|BRAVIA|; AFT[A-Z]|Tizen"
    r"|PlayStation|Xbox|Nintendo"
)
_TABLET = re.compile(r"iPad|Tablet|PlayBook|Kindle")
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Windows Phone|BlackBerry|BB10|Opera Mini|KAIOS")
_DESKTOP = re.compile(r"Windows NT|Macintosh|X11|CrOS")
_COUNTRY = re.compile(r"[A-Z]{2}")


class _Parsers:
    """ua-parser's resolver for browser and OS, and the bot lists, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = False
        self.bots = BotDetector()

    def load(self) -> None:
        with self._lock:
            if self._ready:
                return
            from ua_parser import BestAvailableResolver, Domain, load_lazy_builtins

            user_agents, systems, _devices = load_lazy_builtins()
            # No device rules: see the module's docstring.
            self.resolve = BestAvailableResolver((user_agents, systems, []))
            self.domains = Domain.USER_AGENT | Domain.OS
            self.bots.load()
            self._ready = True


_PARSERS = _Parsers()


def _cut(value: str | None) -> str:
    return (value or "")[:MAX_VALUE_CHARS]


def _encodable(text: str) -> str:
    """The text with lone surrogates (which a header can carry as JSON escapes) made '?':
    neither the native parser nor the JSON writer takes them."""
    return text.encode("utf-8", "replace").decode("utf-8")


@functools.lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def describe_user_agent(user_agent: str) -> tuple[Mapping[str, Any], str]:
    """The ua* fields, isBot and botReason of one user agent (already cut to
    MAX_USER_AGENT_CHARS), and the bot reason ("" for a person). The mapping is shared
    between calls: copy, don't change."""
    _PARSERS.load()
    user_agent = _encodable(user_agent)
    parsed = _PARSERS.resolve(user_agent, _PARSERS.domains)
    browser, system = parsed.user_agent, parsed.os
    reason = _PARSERS.bots.reason(user_agent, browser is not None, system is not None)
    fields = {
        "uaBrowser": _cut(browser.family if browser else None),
        "uaBrowserVersion": _cut(browser.major if browser else None),
        "uaOs": _cut(system.family if system else None),
        "uaOsVersion": _cut(system.major if system else None),
        "uaDeviceType": "bot" if reason else device_type(user_agent),
        "isBot": bool(reason),
        "botReason": reason,
    }
    return fields, reason


def bot_decision(user_agent: str | None, webdriver: bool = False) -> tuple[bool, str]:
    """Whether a request is a bot's, and why: (isBot, botReason), botReason one of
    ``chalicelib.ingest.bots.BOT_REASONS`` or "" for a person. ``user_agent`` is the request's
    header as received (cut here); ``webdriver`` the client's ``navigator.webdriver``
    signal. The one decision: the route, ``DROP_BOTS`` and replay (through
    ``Enricher.apply_bot_rule``) all come to it."""
    return _decided(describe_user_agent((user_agent or "")[:MAX_USER_AGENT_CHARS])[1], webdriver)


def _decided(user_agent_reason: str, webdriver: bool) -> tuple[bool, str]:
    reason = user_agent_reason or (AUTOMATION if webdriver else "")
    return bool(reason), reason


def device_type(user_agent: str) -> str:
    """desktop, mobile, tablet or other, from the tokens browsers put in the user agent.
    (An iPad asking for desktop sites says Macintosh, and counts as desktop.)"""
    if _OTHER_DEVICE.search(user_agent):
        return "other"
    if _TABLET.search(user_agent):
        return "tablet"  # before mobile: iPad Safari says "Mobile/15E148"
    if _MOBILE.search(user_agent):
        return "mobile"
    if "Android" in user_agent:
        return "tablet"  # Android browsers say "Mobile" on phones only
    if _DESKTOP.search(user_agent):
        return "desktop"
    return "other"


def country(value: str | None) -> str:
    """An ISO 3166-1 alpha-2 code, or "" (absent, or not what CloudFront sends)."""
    return value if value is not None and _COUNTRY.fullmatch(value) else ""


class Enricher:
    """Per-request server fields; the stage decides about raw user agents and bots."""

    def __init__(self, store_user_agent: bool = False, drop_bots: bool = False) -> None:
        self.store_user_agent = store_user_agent
        self.drop_bots = drop_bots

    def fields(
        self, headers: Mapping[str, str], batch_context: MutableMapping[str, Any]
    ) -> dict[str, Any] | None:
        """The fields every record of the request gets, or None when the request is a
        bot's and the stage drops those. ``headers`` is case-insensitive (Chalice's) or
        has lower-case names. Removes the client's ``webdriver`` signal from the
        (already validated) batch context: it is read, not stored."""
        return self.apply_bot_rule(self.describe(headers), batch_context)

    def describe(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """What the headers say (user agent, country, bot), before the stage's bot rule:
        what a body refused whole keeps, so that a replay can apply the rule."""
        user_agent = (headers.get("user-agent") or "")[:MAX_USER_AGENT_CHARS]
        described, _reason = describe_user_agent(user_agent)
        fields = dict(described)
        fields["country"] = country(headers.get("cloudfront-viewer-country"))
        if self.store_user_agent:
            fields["userAgent"] = _encodable(user_agent)
        return fields

    def apply_bot_rule(
        self, fields: dict[str, Any], batch_context: MutableMapping[str, Any]
    ) -> dict[str, Any] | None:
        """The stage's bot rule over a request's fields (what its user agent said, now or
        as stored with a reject): ``bot_decision``'s decision with the client's
        ``webdriver`` signal (taken out of the batch context); with ``drop_bots`` a bot's
        request is dropped (None). The route and replay both decide here."""
        webdriver = batch_context.pop(WEBDRIVER, None) is True
        user_agent_reason = fields.get("botReason") or ""
        if not user_agent_reason and fields.get("isBot") is True:  # kept before botReason
            user_agent_reason = CRAWLER_LIST
        is_bot, reason = _decided(user_agent_reason, webdriver)  # bot_decision's
        if is_bot and self.drop_bots:
            return None
        if is_bot:
            fields.update(uaDeviceType="bot", isBot=True, botReason=reason)
        return fields


def stored_server_fields(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored ``server`` object (kept with a reject) as the fields the server would add:
    only the names it adds (``SERVER_FIELDS``), each only with the type and length it
    gives; anything else in the object is ignored. So an edited reject cannot overwrite
    an event's own fields, add columns, or duplicate a key in the replayed line."""
    kept: dict[str, Any] = {}
    for name, value in stored.items():
        if name not in SERVER_FIELDS:
            continue
        if name == "isBot":
            if type(value) is bool:
                kept[name] = value
        elif type(value) is str:
            if name == "country":
                kept[name] = country(value)
            elif name == "userAgent":
                kept[name] = _encodable(value[:MAX_USER_AGENT_CHARS])
            elif name == "uaDeviceType":
                kept[name] = value if value in DEVICE_TYPES else "other"
            elif name == "botReason":
                kept[name] = value if value in BOT_REASONS else ""
            else:
                kept[name] = _encodable(_cut(value))
    return kept

"""Builds bench/data/bot_eval.tsv, the labelled user agents bench/bench_bots.py measures on.

Every row comes from a published package's data (exact versions below), fetched with the
ordinary clients into a scratch folder; only the user agents, their label and a category
are kept. To rebuild (or move to newer versions, then update SOURCES):

    mkdir -p /tmp/botdata && cd /tmp/botdata
    npm pack crawler-user-agents@1.60.0 user-agents@2.1.198 top-user-agents@2.1.138
    for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
    pip download --no-deps fake-useragent==2.2.0 -d fu && (cd fu && unzip -oq ./*.whl)
    cd - && .venv/bin/python bench/build_bot_eval.py /tmp/botdata

uap-core's test cases were asked for too: neither the npm package uap-core (0.18.0) nor
ua-parser's wheels or sdist ship them (only the rules), so they are not in the set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "bot_eval.tsv"

SOURCES = (
    "# Labelled user agents for bench/bench_bots.py, built by bench/build_bot_eval.py.\n"
    "# Columns: label (bot|person), category, source, user agent.\n"
    "# bot rows: npm crawler-user-agents 1.60.0, crawler-user-agents.json 'instances',\n"
    "#   category = the pattern's first tag (MIT, (c) 2017 Martin Monperrus).\n"
    "# person rows: npm user-agents 2.1.198, dist/user-agents.json, category =\n"
    "#   deviceCategory (BSD-2-Clause, (c) 2018-present Intoli, LLC);\n"
    "#   npm top-user-agents 2.1.138, src/index.json, desktop.json, mobile.json\n"
    "#   (MIT, (c) 2020 Kiko Beats);\n"
    "#   PyPI fake-useragent 2.2.0, fake_useragent/data/browsers.jsonl, category = type\n"
    "#   (Apache-2.0, fake-useragent's authors).\n"
    "# review rows: the misses and false flags issue 19 lists (a review's measurements).\n"
)

# Issue 19's examples: bots the old rule missed, people it flagged.
REVIEW_BOTS = (
    "Datadog Agent/5.10.1",
    "prometheus/2.18.1",
    "collectd/5.5.1",
    "Mozilla/4.0 (compatible; Catchpoint)",
    "Akregator/1.2.9; librss/remnants",
    "Apple-PubSub/65.28",
    "Mozilla/5.0 (compatible; anthropic-ai/1.0; +https://www.anthropic.com)",
    "claude-code/2.1.107 (cli)",
    "Arachni/v1.5.1",
    "ClamAV/0.101.5",
    "Zendesk Webhook",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Cypress/3.3.2 Chrome/61.0.3163.100 Electron/2.0.18 Safari/537.36",
    "BW/1.1; bit.ly/2W6Px8S",
)
REVIEW_PEOPLE = (
    "Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/1.1.1d",
    "Lynx/2.8.8pre.4 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/2.12.23",
    "Lynx/2.8.7rel.2 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/1.0.0a",
    "Lynx/2.8.6rel.5 libwww-FM/2.14",
    "Lynx/2.8.5rel.1 libwww-FM/2.15FC SSL-MM/1.4.1c OpenSSL/0.9.7e-dev",
    "NCSA_Mosaic/2.7b5 (X11;Linux 2.6.7 i686) libwww/2.12 modified",
    "AmigaVoyager/3.2 (AmigaOS/MC680x0)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)",
    "Outlook-iOS/709.2189947.prod.iphone (3.24.0)",
    "Outlook-Express/7.0 (MSIE 7.0; Windows NT 6.1; WOW64; Trident/7.0; .NET4.0C; "
    ".NET4.0E; TmstmpExt)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_3) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Slack/4.4.2 Chrome/80.0.3987.163 Electron/8.2.5 Safari/537.36",
    "fuboTV/4.75.0 (Linux;Android 7.1.2; AFTMM Build/NS6265) FuboPlayer/1.0.2.4",
)


def _clean(user_agent: str) -> str:
    return " ".join(user_agent.split())  # no tabs or newlines in a TSV cell


def rows(root: Path) -> list[tuple[str, str, str, str]]:
    seen: set[str] = set()
    out: list[tuple[str, str, str, str]] = []

    def add(label: str, category: str, source: str, user_agent: str) -> None:
        user_agent = _clean(user_agent)
        if user_agent and user_agent not in seen:
            seen.add(user_agent)
            out.append((label, category, source, user_agent))

    for agent in REVIEW_BOTS:
        add("bot", "review", "issue-19", agent)
    for agent in REVIEW_PEOPLE:
        add("person", "review", "issue-19", agent)
    crawlers = root / "crawler-user-agents-1.60.0/package/crawler-user-agents.json"
    for entry in json.loads(crawlers.read_text(encoding="utf-8")):
        category = (entry.get("tags") or ["untagged"])[0]
        for agent in entry.get("instances", ()):
            add("bot", category, "crawler-user-agents", agent)
    top = root / "top-user-agents-2.1.138/package/src"
    for name, category in (("desktop", "desktop"), ("mobile", "mobile"), ("index", "top")):
        for agent in json.loads((top / f"{name}.json").read_text(encoding="utf-8")):
            add("person", category, "top-user-agents", agent)
    user_agents = root / "user-agents-2.1.198/package/dist/user-agents.json"
    for entry in json.loads(user_agents.read_text(encoding="utf-8")):
        add("person", entry["deviceCategory"], "user-agents", entry["userAgent"])
    fake = root / "fu/fake_useragent/data/browsers.jsonl"
    for line in fake.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        add("person", entry["type"], "fake-useragent", entry["useragent"])
    return out


def main(root: Path) -> None:
    table = rows(root)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(SOURCES)
        for row in table:
            handle.write("\t".join(row) + "\n")
    print(f"wrote {len(table)} rows to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Bot flags against labelled public user agents, and the cost of any user agent.

1. Accuracy (issue 19): every row of bench/data/bot_eval.tsv (built from published
   packages' data by bench/build_bot_eval.py; sources and licences in its header) through
   ``chalicelib.ingest.enrich.bot_decision``, the route's decision. Per category: how many are
   flagged; for bots that is recall, for people the false-flag rate. Beside it, the rule
   before issue 19 (crawlerdetect's list or "headless"). Also how often a person's
   ``uaBrowser`` is empty, and which reason flagged the bots. Most bot rows are the
   crawler-user-agents list's own examples, so the decision without that list is shown
   too ("without c-u-a"): what crawlerdetect and the own rules catch of them.
2. Cost (issue 18 row 8): 10,000 generated hostile user agents (long runs of one letter
   inside a browser's header, repeated "; ", nested tokens, random bytes, ...), each a
   cache miss, through ``Enricher.fields`` as the route calls it, each the best of 3; the
   slowest 20 are timed again (best of 5) so that a scheduler pause is not reported as the
   header's cost. The old rule is timed on a sample (``--before N``; it takes up to 0.1 s
   a header).

    .venv/bin/python bench/bench_bots.py [--before 300] [--generated 10000]
"""

from __future__ import annotations

import argparse
import random
import re
import string
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.ingest.bots import BotDetector, describe_sources  # noqa: E402
from chalicelib.ingest.enrich import Enricher, bot_decision, describe_user_agent  # noqa: E402

EVAL_SET = Path(__file__).resolve().parent / "data" / "bot_eval.tsv"
_HEADLESS = re.compile("headless", re.IGNORECASE)


def load_eval_set(path: Path = EVAL_SET) -> list[tuple[str, str, str]]:
    """(label, category, user agent) rows of the evaluation set."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            label, category, _source, agent = line.split("\t", 3)
            rows.append((label, category, agent))
    return rows


def before_rule() -> Callable[[str], bool]:
    """isBot as it was before issue 19 (user agent part): crawlerdetect, or headless."""
    from crawlerdetect import CrawlerDetect

    detector = CrawlerDetect()

    def is_bot(agent: str) -> bool:
        agent = agent[:512]
        return bool(agent) and (
            detector._check_crawler(agent.strip())[0] or _HEADLESS.search(agent) is not None
        )

    return is_bot


def held_out_rule() -> Callable[[str], bool]:
    """The decision without the crawler-user-agents list (whose examples most bot rows
    are): what the other sources and the own rules catch on their own."""
    detector = BotDetector(crawler_user_agents=False)

    def is_bot(agent: str) -> bool:
        fields = describe_user_agent(agent[:512])[0]
        return bool(detector.reason(agent[:512], fields["uaBrowser"] != "", fields["uaOs"] != ""))

    return is_bot


def accuracy() -> None:
    rows = load_eval_set()
    old, held_out = before_rule(), held_out_rule()
    flagged: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    reasons: Counter[str] = Counter()
    no_browser_name = people = 0
    for label, category, agent in rows:
        is_bot, reason = bot_decision(agent)
        counts = flagged[(label, category)]
        counts[0] += 1
        counts[1] += is_bot
        counts[2] += old(agent)
        counts[3] += held_out(agent)
        if label == "bot" and is_bot:
            reasons[reason] += 1
        if label == "person":
            people += 1
            no_browser_name += describe_user_agent(agent[:512])[0]["uaBrowser"] == ""
    print("sources:", ", ".join(describe_sources()))
    print(f"{'label':<7} {'category':<19} {'rows':>5} {'flagged now':>12} {'before':>8}", end="")
    print(f" {'without c-u-a':>14}")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (label, category), counts in sorted(flagged.items()):
        print(_row(label, category, counts))
        for index, value in enumerate(counts):
            totals[label][index] += value
    for label, counts in sorted(totals.items()):
        print(_row(label, "ALL", counts))
    bots, humans = totals["bot"], totals["person"]
    for name, index in (("now", 1), ("before", 2), ("without c-u-a", 3)):
        true_flags, false_flags = bots[index], humans[index]
        precision = true_flags / max(1, true_flags + false_flags)
        print(
            f"{name:>13}: recall {true_flags / bots[0]:.1%}, false flags "
            f"{false_flags / humans[0]:.2%} of people, precision {precision:.2%}"
        )
    print("bots by reason:", dict(reasons.most_common()))
    print(f"people with an empty uaBrowser: {no_browser_name / people:.2%} ({no_browser_name})")


def _row(label: str, category: str, counts: list[int]) -> str:
    count, now, before, held_out = counts
    return (
        f"{label:<7} {category:<19} {count:>5} {now / count:>11.1%} {before / count:>8.1%}"
        f" {held_out / count:>14.1%}"
    )


def hostile_user_agents(count: int, seed: int = 18) -> list[str]:
    """Headers built to make a matcher backtrack or scan: each distinct (a cache miss)."""
    rng = random.Random(seed)
    tokens = [
        "Mozilla/5.0",
        "bot",
        "compatible",
        "Chrome/",
        "Safari",
        ";",
        " ",
        "(",
        ")",
        "Build",
        "like Gecko",
        "/",
        "_",
        "Android 10",
        "http://",
        "+",
        "K",
        "Lynx/1",
    ]
    makers: list[Callable[[int], str]] = [
        lambda n: f"Mozilla/5.0 (Linux; Android 10; {rng.choice('KkXa;') * n} Build/N",
        lambda n: "Mozilla/5.0 (" + "; " * (n // 2),
        lambda n: "".join(rng.choice(string.printable[:95]) for _ in range(n)),
        lambda n: "a/1 " * (n // 4) + "(KHTML, like Gecko) " + "x/1/2/3 " * (n // 8) + "Electron/1",
        lambda n: "(KHTML, like Gecko) " * (n // 20) + " Electron/2",
        lambda n: "Mozilla/5.0 (iPhone; CPU iPhone OS " + "_" * n + " like",
        lambda n: "CPU iPhone OS 1" * (n // 15),
        lambda n: "Lynx/2 (" + "(" * n + " libwww-FM/2",
        lambda n: "".join(rng.choice(tokens) for _ in range(n // 4)),
        lambda n: "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(n)),
        lambda n: "Mozilla/5.0 " + "Yandex" * (n // 6),
        lambda n: "x" * n + " Googlebot/2.1",
    ]
    agents: list[str] = []
    seen: set[str] = set()
    while len(agents) < count:
        maker = makers[len(agents) % len(makers)]
        agent = maker(rng.randrange(400, 2000)) + f" #{len(agents)}"[: rng.choice((0, 8))]
        if agent not in seen:
            seen.add(agent)
            agents.append(agent)
    return agents


def worst_cost(
    agents: list[str], work: Callable[[str], object], repeats: int
) -> tuple[float, float, str]:
    """Slowest header's time and the 99th percentile (ms), each header's time the best of
    ``repeats`` (a cache miss each time); the slowest 20 are timed again, best of 5, so a
    scheduler pause on a busy machine is not reported as a header's cost."""

    def timed(agent: str, runs: int) -> float:
        best = float("inf")
        for _ in range(runs):
            describe_user_agent.cache_clear()
            started = time.perf_counter()
            work(agent)
            best = min(best, time.perf_counter() - started)
        return best

    times = sorted(((timed(agent, repeats), agent) for agent in agents), reverse=True)
    p99 = times[len(times) // 100][0] * 1000
    worst, worst_agent = max((timed(agent, 5), agent) for _, agent in times[:20])
    print(f"     (first pass: slowest {times[0][0] * 1000:.3f} ms, timed again {worst * 1000:.3f})")
    return worst * 1000, p99, worst_agent


def cost(generated: int, before_sample: int) -> None:
    agents = hostile_user_agents(generated)
    enricher = Enricher()
    enricher.fields({"user-agent": "warm up"}, {})

    def now(agent: str) -> object:
        return enricher.fields({"user-agent": agent}, {})

    worst, p99, agent = worst_cost(agents, now, repeats=3)
    print(f"now: {generated} hostile user agents, worst {worst:.3f} ms, p99 {p99:.3f} ms")
    print(f"     slowest: {agent[:60]!r}… ({len(agent)} chars)")
    if before_sample:
        old = before_rule()
        old("warm up")
        sample = agents[:: max(1, len(agents) // before_sample)][:before_sample]
        worst, p99, agent = worst_cost(sample, old, repeats=1)
        print(f"before: {len(sample)} of them, worst {worst:.1f} ms, p99 {p99:.1f} ms")
        print(f"     slowest: {agent[:60]!r}… ({len(agent)} chars)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=10_000)
    parser.add_argument("--before", type=int, default=300, help="old rule's sample; 0: skip")
    args = parser.parse_args()
    accuracy()
    cost(args.generated, args.before)


if __name__ == "__main__":
    main()

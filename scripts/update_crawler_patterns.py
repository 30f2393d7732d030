"""Refreshes chalicelib/ingest/data/crawler_user_agents.json from the crawler-user-agents package.

The bot rule (chalicelib/ingest/bots.py) reads the list's patterns and tags from that file, so the
Lambda needs no extra package; this script copies them (with the version and the MIT
licence the list comes under) from an installed crawler-user-agents:

    .venv/bin/pip install crawler-user-agents==1.67.0   # or the version to move to
    .venv/bin/python scripts/update_crawler_patterns.py

then run tests/test_bots.py and bench/bench_bots.py, and commit the file.
"""

from __future__ import annotations

import importlib.util
import json
from importlib.metadata import distribution
from pathlib import Path

OUT = (
    Path(__file__).resolve().parent.parent
    / "chalicelib"
    / "ingest"
    / "data"
    / "crawler_user_agents.json"
)


def main() -> None:
    spec = importlib.util.find_spec("crawleruseragents")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("crawler-user-agents is not installed: pip install it first")
    folder = Path(next(iter(spec.submodule_search_locations)))
    entries = json.loads((folder / "crawler-user-agents.json").read_text(encoding="utf-8"))
    dist = distribution("crawler-user-agents")
    licence = next((f.read_text() for f in dist.files or () if f.name == "LICENSE"), None)
    if licence is None:
        raise SystemExit("crawler-user-agents ships no LICENSE: check its terms by hand")
    document = {
        "source": f"crawler-user-agents {dist.version} (PyPI), crawler-user-agents.json: "
        "each entry's pattern and tags",
        "license": licence,
        "patterns": [[entry["pattern"], entry.get("tags", [])] for entry in entries],
    }
    # One pattern a line, so that a refresh reads as a diff of patterns.
    head = json.dumps({k: v for k, v in document.items() if k != "patterns"}, indent=1)
    lines = ",\n".join(json.dumps(item, ensure_ascii=False) for item in document["patterns"])
    OUT.write_text(f'{head[:-2]},\n "patterns": [\n{lines}\n]}}\n', encoding="utf-8")
    print(f"wrote {len(entries)} patterns of crawler-user-agents {dist.version} to {OUT}")


if __name__ == "__main__":
    main()

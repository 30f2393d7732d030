"""A local export loads only what it uses: botocore and boto3 (a tenth of a second of
start-up, a fifth of a small export) only when a command calls AWS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.factories import event

# Runs `python -m exporter ARGS` in this process, then lists the AWS modules it loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["exporter", *json.loads(sys.argv[1])]
try:
    runpy.run_module("exporter", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("botocore", "boto3"))
print(json.dumps({"code": code, "aws": loaded}))
"""


def run_exporter(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    answer["stderr"] = done.stderr
    return answer


def test_a_local_export_never_imports_botocore(tmp_path: Path) -> None:
    raw = tmp_path / "data" / "raw" / "2026" / "11" / "27" / "10" / "a.ndjson"
    raw.parent.mkdir(parents=True)
    lines = [event(eventId="a"), event(eventId="a"), event(eventId="b"), "not an event"]
    raw.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.csv"
    source = str(tmp_path / "data")
    answer = run_exporter("export", "--date", "2026-11-27", "--source", source, "--out", str(out))
    assert answer == {"code": 0, "aws": [], "stderr": ""}
    assert len(out.read_text().splitlines()) == 3  # the header, a and b: it did export


def test_an_s3_export_still_loads_botocore_and_explains_a_missing_bucket(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """The lazy imports still turn an AWS error into one line (exit code 1)."""
    answer = run_exporter(
        "export",
        "--date",
        "2026-11-27",
        "--source",
        "s3://no-such-bucket-here",
        "--endpoint-url",
        moto_endpoint,
        "--region",
        "us-east-1",
        "--out",
        str(tmp_path / "out.csv"),
    )
    assert answer["code"] == 1
    assert answer["stderr"] == "Error: bucket no-such-bucket-here does not exist\n"
    assert "botocore.exceptions" in answer["aws"]  # type: ignore[operator]

"""The rejects commands: `rejected` counts what the route refused, `replay` sends it again.

Both read ``rejected/YYYY/MM/DD/HH/`` under a folder or an S3 bucket (the layout the
local sink and the rejects Firehose stream share); the work is in
``chalicelib.rejects.summary`` and ``chalicelib.rejects.replay``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import click

from chalicelib.aws import make_client
from chalicelib.config import ConfigError, Limits, Settings
from chalicelib.jobs import convert_raw_object
from chalicelib.layout import REPLAYED_PREFIX, keys_for_days
from chalicelib.rejects.replay import ReplayError, ReplayReport, replay
from chalicelib.rejects.replay_lock import ReplayLocked
from chalicelib.rejects.summary import CsvRecords, RejectSummary, iter_records
from chalicelib.sinks import FirehoseSink, LocalDirectorySink, Sink
from chalicelib.storage.base import ObjectStore
from chalicelib.storage.local import LocalStore
from clitools import aws_errors, echo, project_dir_option, terminal_safe
from exporter.options import (
    day_range_options,
    days_from_options,
    open_source,
    progress,
    report_errors,
    source_options,
)

DEFAULT_TOP = 30
# Options that override one stage limit each: option name → Limits field.
LIMIT_OPTIONS = {
    f"--{name.replace('_', '-')}": name for name in (f.name for f in dataclasses.fields(Limits))
}


@click.command("rejected")
@day_range_options
@source_options(reads="rejected/", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the records themselves to this CSV (formula-like cells neutralised).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=DEFAULT_TOP,
    show_default=True,
    help="Rows of the table; the rest are counted in one line.",
)
def rejected_command(
    date_: str,
    to_date: str | None,
    source: str,
    endpoint_url: str | None,
    region: str | None,
    as_json: bool,
    csv_path: Path | None,
    top: int,
) -> None:
    """Count the rejected events and bodies of a day (or range) by reason and metricName."""
    days = days_from_options(date_, to_date)
    store, prefix = open_source(source, endpoint_url, region)
    rejected_prefix = prefix + Settings.rejected_prefix
    summary = RejectSummary()

    def read() -> int:
        keys = keys_for_days(store, rejected_prefix, days)
        with (
            progress(len(keys), "reading") as advance,
            _maybe_csv(csv_path) as handle,
        ):
            writer = CsvRecords(handle) if handle is not None else None
            for key in keys:
                for record in iter_records(store, [key], summary.add_bad_line):
                    summary.add(record)
                    if writer is not None:
                        writer.add(record)
                advance(key)
            if writer is not None:
                writer.close()
        return len(keys)

    objects = report_errors(read)
    where = store.describe(rejected_prefix)
    if as_json:
        data = {"days": [d.isoformat() for d in days], "source": where, "objects": objects}
        echo(json.dumps({**data, **summary.as_dict()}, indent=2, ensure_ascii=False))
    else:
        echo(_summary_table(summary, days, where, top))
    if csv_path is not None:
        echo(f"wrote {summary.events + summary.bodies} record(s) to {csv_path}", err=as_json)


def _maybe_csv(path: Path | None) -> AbstractContextManager[BinaryIO | None]:
    if path is None:
        return nullcontext(None)
    return LocalStore(path.parent).open_write(path.name)


def _span(days: list[date]) -> str:
    return days[0].isoformat() if len(days) == 1 else f"{days[0]} to {days[-1]}"


def _summary_table(summary: RejectSummary, days: list[date], where: str, top: int) -> str:
    head = (
        f"{_span(days)}: {summary.events} rejected event(s), {summary.bodies} body(ies) "
        f"refused whole, under {where}"
    )
    if summary.unreadable:
        head += f"; {summary.unreadable} unreadable line(s)"
    ranked = summary.ranked()
    if not ranked:
        return head
    # Escaped before widths are measured: a reason or a metricName is what a request sent.
    shown_rows = [
        (count, terminal_safe(reason), terminal_safe(metric))
        for count, reason, metric in ranked[:top]
    ]
    width = max(len("count"), *(len(f"{count:,}") for count, _, _ in shown_rows))
    metric_width = min(40, max(len("metricName"), *(len(m) for _, _, m in shown_rows)))
    lines = [head, "", f"{'count':>{width}}  {'metricName':<{metric_width}}  reason"]
    for count, reason, metric in shown_rows:
        lines.append(f"{count:>{width},}  {metric:<{metric_width}}  {reason}")
    if len(ranked) > top:
        rest = sum(count for count, _, _ in ranked[top:])
        lines.append(f"… and {len(ranked) - top} more group(s) with {rest:,} reject(s) (--json)")
    return "\n".join(lines)


def _limit_options[F: Callable[..., Any]](command: F) -> F:
    for option, name in reversed(LIMIT_OPTIONS.items()):
        command = click.option(
            option,
            name,
            type=click.IntRange(min=1),
            default=None,
            help=f"Replay with this {name.upper()} instead of the stage's.",
        )(command)
    return command


@click.command("replay")
@day_range_options
@source_options(reads="rejected/", required=True)
@click.option(
    "--stage",
    help="Stage whose limits, prefixes and events stream (.chalice/config.json) apply "
    "[default: dev for a directory, prod for s3://].",
)
@project_dir_option("Project root holding .chalice/config.json (without it: the built-in limits).")
@click.option("--stream-name", help="Events Firehose stream [default: the stage's].")
@_limit_options
@click.option("--dry-run", is_flag=True, help="Re-validate and report; send and write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay_command(
    date_: str,
    to_date: str | None,
    source: str,
    endpoint_url: str | None,
    region: str | None,
    stage: str | None,
    project_dir: Path,
    stream_name: str | None,
    dry_run: bool,
    as_json: bool,
    **limits: int | None,
) -> None:
    """Re-validate the stored rejects of a day (or range) and send the now-valid ones."""
    days = days_from_options(date_, to_date)
    to_s3 = source.startswith("s3://")
    settings, origin = _stage_settings(project_dir, stage or ("prod" if to_s3 else "dev"))
    overrides = {name: value for name, value in limits.items() if value is not None}
    settings = dataclasses.replace(
        settings, limits=dataclasses.replace(settings.limits, **overrides)
    )
    store, prefix = open_source(source, endpoint_url, region)
    layout = settings.under(prefix)
    written: list[str] = []
    sink: Sink | None = None
    if dry_run:
        destination = "nowhere (dry run)"
    elif to_s3:
        stream = stream_name or settings.stream_name
        if not stream:
            raise click.UsageError("no events stream: pass --stream-name or a --stage that has one")
        with aws_errors("Firehose"):
            client = make_client(
                "firehose", region=region or settings.region or None, endpoint_url=endpoint_url
            )
        sink = FirehoseSink(client, stream)
        destination = f"Firehose stream {stream}"
    else:
        assert isinstance(store, LocalStore)
        sink = LocalDirectorySink(store.root, layout.raw_prefix, on_written=written.append)
        destination = store.describe(layout.raw_prefix)

    def run() -> ReplayReport:  # Firehose's errors come as ReplayError, S3's through report_errors
        return replay(
            store,
            days,
            limits=settings.limits,
            sink=sink,
            drop_bots=settings.drop_bots,
            rejected_prefix=layout.rejected_prefix,
            replayed_prefix=prefix + REPLAYED_PREFIX,
        )

    try:
        report = report_errors(run)
    except ReplayError as exc:
        _print_report(exc.report, days, destination, as_json)
        raise click.ClickException(str(exc)) from None
    except ReplayLocked as exc:  # another replay of a day is running: nothing was sent
        raise click.ClickException(str(exc)) from None
    _convert_written(store, layout, written)
    _print_report(report, days, destination, as_json)
    bots = "dropped" if settings.drop_bots else "kept"
    echo(f"limits: {_limits_text(settings.limits)}; bots {bots} ({origin})", err=as_json)


def _stage_settings(project_dir: Path, stage: str) -> tuple[Settings, str]:
    path = project_dir / ".chalice" / "config.json"
    if not path.is_file():
        return Settings(), f"built-in defaults: no {path}"
    try:
        env = json.loads(path.read_text(encoding="utf-8"))["stages"][stage]
        return Settings.from_env(env.get("environment_variables", {})), f"{path} stage {stage}"
    except KeyError:
        raise click.BadParameter(f"{path} has no stage {stage!r}", param_hint="--stage") from None
    except (ValueError, ConfigError) as exc:
        raise click.ClickException(f"{path} stage {stage}: {exc}") from None


def _convert_written(store: ObjectStore, settings: Settings, keys: list[str]) -> None:
    """Locally, the CSV part of what was written, as the dev stage makes it on each write."""
    for key in dict.fromkeys(keys):
        report_errors(partial(convert_raw_object, store, key, settings))


def _limits_text(limits: Limits) -> str:
    return ", ".join(
        f"{option.removeprefix('--')}={getattr(limits, name)}"
        for option, name in LIMIT_OPTIONS.items()
    )


def _print_report(report: ReplayReport, days: list[date], destination: str, as_json: bool) -> None:
    if as_json:
        data = {"days": [d.isoformat() for d in days], "destination": destination}
        echo(json.dumps({**data, **report.as_dict()}, indent=2, ensure_ascii=False))
        return
    verb = "would replay" if report.dry_run else "replayed"
    lines = [
        f"{_span(days)}: {verb} {report.replayed} event(s) into {destination}",
        f"  already replayed: {report.already_replayed}; stored twice: {report.repeated}",
    ]
    if report.dropped_bots:
        lines.append(f"  dropped, a bot's (DROP_BOTS=true): {report.dropped_bots}")
    for title, reasons in (
        ("still invalid", report.still_invalid),
        ("not replayable", report.not_replayable),
    ):
        lines.append(f"  {title}: {sum(reasons.values())}")
        lines.extend(_reason_lines(reasons))
    lines.extend(f"  ledger: {ledger}" for ledger in report.ledgers)
    echo("\n".join(lines))


def _reason_lines(reasons: Counter[str], top: int = DEFAULT_TOP) -> list[str]:
    ranked = reasons.most_common()
    lines = [f"    {count:>7,}  {terminal_safe(reason)}" for reason, count in ranked[:top]]
    if len(ranked) > top:
        lines.append(f"    … and {len(ranked) - top} more reason(s) (--json)")
    return lines

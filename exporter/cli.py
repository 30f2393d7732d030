"""``python -m exporter``: the data commands, one module each. This file only names them
(as ``deploy/cli.py`` does); each is imported when it runs, and none imports this file."""

from __future__ import annotations

import click

from clitools import CONTEXT_SETTINGS, LazyGroup

COMMANDS = {
    "export": "exporter.convert:export_command",
    "json-to-csv": "exporter.convert:json_to_csv_command",
    "athena-query": "exporter.athena.command:athena_query",
    "delivery": "exporter.delivery:delivery_command",
    "rejected": "exporter.rejects:rejected_command",
    "replay": "exporter.rejects:replay_command",
    "erase": "exporter.erase:erase_command",
    "report": "exporter.report.command:report_command",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings=CONTEXT_SETTINGS)
def cli() -> None:
    """Turn raw analytics events into CSV (deployment commands: python -m deploy)."""


def main() -> None:
    cli(prog_name="python -m exporter")

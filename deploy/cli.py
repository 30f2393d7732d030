"""The `python -m deploy` click group: one command per deployment step, and the cost model."""

from __future__ import annotations

import click

from clitools import CONTEXT_SETTINGS, TerminalSafeGroup
from deploy.configure import configure_prod
from deploy.cost_command import cost
from deploy.smoke import smoke_test
from deploy.throttling import apply_throttling


@click.group(cls=TerminalSafeGroup, context_settings=CONTEXT_SETTINGS)
def cli() -> None:
    """Deploy and operate the pipeline on AWS: configure, throttle, smoke-test, price."""


for _command in (configure_prod, apply_throttling, smoke_test, cost):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="python -m deploy")

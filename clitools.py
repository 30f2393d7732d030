"""Click helpers shared by both command lines: AWS errors become one line, never a traceback,
and nothing stored or received reaches the terminal as a control sequence.

``python -m exporter`` (data) and ``python -m deploy`` (deployment) both import this;
neither imports the other's commands. It sits outside ``chalicelib`` because it needs
click, which the Lambda zip does not ship.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from chalicelib.aws import describe_aws_error
from chalicelib.terminal import terminal_safe

# Both groups (exporter, deploy) answer -h as well as --help.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
__all__ = [
    "CONTEXT_SETTINGS",
    "LazyGroup",
    "TerminalSafeGroup",
    "aws_errors",
    "echo",
    "terminal_safe",
]


def echo(message: object = "", *, err: bool = False) -> None:
    """``click.echo`` for every line the commands print: escaped by ``terminal_safe``, on
    a terminal and in a file alike (a redirected OSC sequence still acts when the file is
    shown with cat or less -R)."""
    click.echo(terminal_safe(str(message), layout=True), err=err)


class TerminalSafeGroup(click.Group):
    """A command group whose error lines are escaped like ``echo``: a message may quote a
    stored path, a reason or a value."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            # click types ``message`` Final; what it shows is read from it when shown.
            vars(exc)["message"] = terminal_safe(exc.message)
            raise


class LazyGroup(TerminalSafeGroup):
    """A group whose commands are named up front (``"name": "module:attribute"``) and
    imported when one runs: ``export`` loads neither boto3 nor Athena's modules, and no
    command module needs to import the group."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self._lazy_commands.get(cmd_name)
        if target is not None and cmd_name not in self.commands:
            module, _, attribute = target.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{target} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


def project_dir_option[F: Callable[..., Any]](help_text: str) -> Callable[[F], F]:
    """``--project-dir``: the project root holding ``.chalice/`` (default: here)."""
    return click.option(
        "--project-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help=help_text,
    )


@contextmanager
def aws_errors(service: str) -> Iterator[None]:
    """Turn a boto3/botocore error raised in the block into exit code 1 and one line.

    ``service`` names what was called ("S3", "API Gateway") in the message. Errors
    that are not AWS's pass through unchanged.
    """
    try:
        yield
    except Exception as exc:
        # Told by describe_aws_error, which needs no botocore import for it: a command
        # that never calls AWS (a local export) does not load botocore.
        message = describe_aws_error(exc, service)
        if message is None:
            raise
        raise click.ClickException(message) from None

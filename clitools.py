"""Click helpers shared by both command lines: AWS errors become one line, never a traceback.

``python -m exporter`` (data) and ``python -m deploy`` (deployment) both import this;
neither imports the other's commands. It sits outside ``chalicelib`` because it needs
click, which the Lambda zip does not ship.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import describe_aws_error

# Both groups (exporter, deploy) answer -h as well as --help.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


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
    except (BotoCoreError, ClientError) as exc:
        raise click.ClickException(describe_aws_error(exc, service) or str(exc)) from None

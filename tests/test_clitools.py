"""clitools: the click adapter both command lines use for AWS errors."""

from __future__ import annotations

import click
import pytest
from botocore.exceptions import ClientError, NoRegionError
from click.testing import CliRunner

from clitools import aws_errors


def _command(error: Exception) -> click.Command:
    @click.command()
    def failing() -> None:
        with aws_errors("API Gateway"):
            raise error

    return failing


def test_aws_error_is_one_line_and_exit_code_1() -> None:
    error = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "no\npermission"}}, "UpdateStage"
    )
    result = CliRunner().invoke(_command(error))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: API Gateway refused the call (AccessDeniedException): no permission; "
        "the credentials in use lack a permission\n"
    )
    assert result.stdout == ""


def test_other_errors_pass_through() -> None:
    result = CliRunner().invoke(_command(KeyError("bug")))
    assert isinstance(result.exception, KeyError)


def test_works_as_a_decorator() -> None:
    @click.command()
    @aws_errors("CloudFormation")
    def failing() -> None:
        raise NoRegionError()

    for _ in range(2):  # a fresh context for every call
        result = CliRunner().invoke(failing)
        assert result.exit_code == 1
        assert "no AWS region: pass --region" in result.stderr


def test_outside_click_it_raises_click_exception() -> None:
    with pytest.raises(click.ClickException, match="no AWS region"), aws_errors("S3"):
        raise NoRegionError()

"""The ``featurecost`` command run in process (typer's test runner)."""

from __future__ import annotations

from typer.testing import CliRunner

from featurecost.collector.cli.app import app


def cli(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``featurecost *args``."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr

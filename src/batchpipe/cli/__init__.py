"""The `batchpipe` command: a thin shell over the library. Heavy imports wait until a command needs them."""

from __future__ import annotations

import sys
from typing import Any

import click

from batchpipe import __version__
from batchpipe.errors import BatchpipeError


def _unreachable(exc: Exception) -> BatchpipeError | None:
    """An AWS endpoint that cannot be reached, or is not AWS, as one line (None: not that; botocore is only
    imported once a command has used it)."""
    if "botocore" not in sys.modules:
        return None
    from batchpipe.backends.aws import unreachable

    return unreachable(exc)


class _Group(click.Group):
    """Turns library errors into one line on stderr and their exit code (2 for bad input, an endpoint that cannot
    be reached or is not AWS)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchpipeError as exc:
            click.echo(f"{'' if exc.exit_code == 130 else 'error: '}{exc}", err=True)  # 130: the user stopped it
            sys.exit(exc.exit_code)
        except OSError as exc:  # a write that failed mid-run (disk full, a mount gone): one line, what is kept stays
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)
        except Exception as exc:
            failure = _unreachable(exc)
            if failure is None:
                raise
            click.echo(f"error: {failure}", err=True)
            sys.exit(failure.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchpipe")
def main() -> None:
    """Run embarrassingly parallel pipelines on this machine (--local) or on AWS Batch.

    \b
    Example:
      batchpipe run montecarlo examples/portfolio.json --local
    """


def _register() -> None:
    from batchpipe.cli.aws import COMMANDS
    from batchpipe.cli.run import run

    main.add_command(run)
    for command in COMMANDS:
        main.add_command(command)


_register()

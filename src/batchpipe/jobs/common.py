"""What every entrypoint shares."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from batchpipe.errors import BatchpipeError, InputError


def shard_index(given: int | None) -> int:
    """--shard if given, else AWS Batch's AWS_BATCH_JOB_ARRAY_INDEX, else 0 (a job that is not an array)."""
    if given is not None:
        return given
    env = os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX")
    if env is None:
        return 0
    try:
        return int(env)
    except ValueError:
        raise InputError(f"AWS_BATCH_JOB_ARRAY_INDEX={env!r} is not an integer") from None


def run_stage(stages: dict[str, Callable[[argparse.Namespace], None]], args: argparse.Namespace) -> None:
    """Run the chosen stage; a library error becomes one line on stderr and its exit code."""
    try:
        stages[args.stage](args)
    except BatchpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)

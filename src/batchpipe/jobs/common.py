"""What every entrypoint shares."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from batchpipe.errors import BatchpipeError, InputError


def parse_shard_list(text: str) -> list[int]:
    """ "0,3-5,9" -> [0, 3, 4, 5, 9]: the shards an array runs, child i running the i-th (ascending, no repeats)."""
    shards: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last) if dash else int(first)
        except ValueError:
            raise InputError(f"--shard-list {text!r}: expected shard numbers and ranges like 0,3-5,9") from None
        if low < 0 or high < low or (shards and low <= shards[-1]):
            raise InputError(f"--shard-list {text!r}: expected ascending, non-overlapping shards and ranges")
        shards.extend(range(low, high + 1))
    return shards


def shard_index(given: int | None, shard_list: str | None = None) -> int:
    """--shard if given, else AWS Batch's AWS_BATCH_JOB_ARRAY_INDEX (with --shard-list: the shard at that position
    of the list, the shards a fallback array runs again), else 0 (a job that is not an array)."""
    if given is not None:
        return given
    env = os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX")
    try:
        index = 0 if env is None else int(env)
    except ValueError:
        raise InputError(f"AWS_BATCH_JOB_ARRAY_INDEX={env!r} is not an integer") from None
    if shard_list is None:
        return index
    shards = parse_shard_list(shard_list)
    if not 0 <= index < len(shards):
        raise InputError(f"array index {index} is past the {len(shards)} shards of --shard-list")
    return shards[index]


def run_stage(stages: dict[str, Callable[[argparse.Namespace], None]], args: argparse.Namespace) -> None:
    """Run the chosen stage; a library error becomes one line on stderr and its exit code."""
    try:
        stages[args.stage](args)
    except BatchpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)

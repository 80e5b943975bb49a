"""Errors the CLI turns into one clear line.

`InputError` (bad input or usage) exits with code 2; any other `BatchpipeError` with code 1.
"""

from __future__ import annotations


class BatchpipeError(Exception):
    """A failure the user can act on: `message` says what happened, `hint` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(BatchpipeError):
    """The input file or an option is invalid: nothing was started or written."""

    exit_code = 2


class Interrupted(BatchpipeError):
    """The user stopped the run (Ctrl-C): what finished is kept, and the message says how to resume."""

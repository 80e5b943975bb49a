"""The progress protocol stages report to; `ui` renders it with rich, tests and scripts may ignore it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def stage(self, name: str, description: str, total: int | None = None) -> None:
        """A stage starts; `total` units of work if it reports any."""

    def advance(self, units: int = 1) -> None:
        """Units of the current stage finished."""

    def warn(self, message: str) -> None:
        """Something the user should know that does not stop the run."""

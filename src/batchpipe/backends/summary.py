"""What a backend's run returns, whichever backend ran it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]


@dataclass(frozen=True)
class RunSummary:
    """A run as its backend left it: `document` is the collated result (Monte Carlo: with its first rows only;
    render: render.json), None when the run was not waited for or has no result yet."""

    pipeline: str
    job_name: str
    status: str  # SUCCEEDED | PARTIAL | FAILED, or RUNNING for a run started without waiting
    location: str  # the run's directory, or its s3:// prefix
    document: Doc | None = None
    execution_arn: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.status in ("SUCCEEDED", "RUNNING") else 1

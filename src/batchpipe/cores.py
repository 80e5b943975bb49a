"""The cores this process may use: the local engine's default number of workers, the containers' Blender threads."""

from __future__ import annotations

import os


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

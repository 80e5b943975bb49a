"""A failed shard's one-line error, built from what Blender printed: its own `Error:` lines first, then its exit
code, the first lines of its crash report when it crashed, the frames that are missing and where the whole log is.

    shard 1: Error: Build without OpenImageDenoiser; Blender exited with code 1; frames missing or invalid:
    6 (no such file); log: logs/shard-00001.log

(one line). `BlenderOutput` keeps what the message needs as the output streams by (the log can be long); the
message itself is `shard_error`, a pure function.
"""

from __future__ import annotations

import re
import signal
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ERROR_LINES = 3  # Blender's distinct Error: lines a message leads with, at most
CRASH_LINES = 5  # lines of Blender's crash report a message quotes, at most
LAST_LINES = 3  # Blender's last lines a message quotes when it printed no Error: line and wrote no crash report
TAIL_LINES = 15  # lines kept of the end of the output
LINE_CHARS = 240  # a quoted line longer than this is cut

_CRASH_REPORT = re.compile(r"^Writing: (\S.*\.crash\.txt)$")  # Blender's crash handler, before it dies
_TRACEBACK = "Error: Python: Traceback"
_CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}


class BlenderOutput:
    """What an error message needs of Blender's output, gathered line by line (`append`): its first distinct
    `Error:` lines, in order (a Python traceback as one, "Error: Python: ValueError: boom"), the crash report it
    says it wrote, and its last lines."""

    def __init__(self, tail: int = TAIL_LINES) -> None:
        self.errors: list[str] = []
        self.crash_report: str | None = None
        self.tail: deque[str] = deque(maxlen=tail)
        self._in_traceback = False

    def append(self, line: str) -> None:
        line = line.rstrip()
        self.tail.append(line)
        if self._in_traceback:
            if not line or line[0].isspace():
                return  # the traceback's frames
            self._in_traceback = False
            if not line.startswith("Error:"):  # the exception: it stands for the whole traceback
                self.errors.pop()
                self._keep(f"Error: Python: {line}")
                return
        if line.startswith("Error:"):
            self._in_traceback = self._keep(line) and line.startswith(_TRACEBACK)
        elif self.crash_report is None and (found := _CRASH_REPORT.match(line)):
            self.crash_report = found.group(1)

    def _keep(self, error: str) -> bool:
        """Keep an Error: line unless it is kept already or enough are; whether it was kept."""
        if error in self.errors or len(self.errors) >= ERROR_LINES:
            return False
        self.errors.append(error)
        return True

    def extend(self, lines: Iterable[str]) -> BlenderOutput:
        for line in lines:
            self.append(line)
        return self


def read_crash_report(path: str | None, lines: int = CRASH_LINES) -> list[str]:
    """The first non-empty lines of the crash report Blender wrote, after its "# Blender 3.4.1, ..." title (none
    when there is none, or it is gone)."""
    if path is None:
        return []
    found: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                text = line.strip()
                if text and not (not found and text.startswith("# Blender ")):
                    found.append(text)
                    if len(found) == lines:
                        break
    except OSError:
        return []
    return found


def log_name(log_file: Path | None, run_dir: Path) -> str | None:
    """How a message names the shard's log: relative to the run's directory when it is in it."""
    if log_file is None:
        return None
    return log_file.relative_to(run_dir).as_posix() if log_file.is_relative_to(run_dir) else str(log_file)


def _cut(line: str) -> str:
    line = " ".join(line.split())  # one line, whatever it held
    return line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 3] + "..."


def exit_text(code: int) -> str:
    """ "Blender exited with code 1"; a process killed by a signal has a negative code: "... -11 (SIGSEGV, a
    crash)"."""
    if code == 0:
        return "Blender exited 0"
    text = f"Blender exited with code {code}"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return text
        why = ", a crash" if sig in _CRASH_SIGNALS else ", out of memory?" if sig == signal.SIGKILL else ""
        text += f" ({sig.name}{why})"
    return text


def shard_error(
    shard: int,
    code: int,
    output: BlenderOutput | Iterable[str],
    problems: Mapping[int, str],
    log: str | None,
    crash_report: Sequence[str] = (),
) -> str | None:
    """The shard's one-line error (None when Blender exited 0 and every frame is good).

    output: Blender's output (all of it, or what a `BlenderOutput` kept of it); problems: what is wrong with each
    missing or invalid frame (frame -> "missing", "truncated PNG"...); log: where the whole log is; crash_report:
    the first lines of the crash report `output` names (`read_crash_report`)."""
    if code == 0 and not problems:
        return None
    seen = output if isinstance(output, BlenderOutput) else BlenderOutput().extend(output)
    errors = " | ".join(_cut(line) for line in seen.errors)
    parts = [f"shard {shard}: " + (f"{errors}; " if errors else "") + exit_text(code)]
    if seen.crash_report is not None:
        quoted = " | ".join(_cut(line) for line in crash_report[:CRASH_LINES]) or "(not readable)"
        parts.append(f"crash report {seen.crash_report}: {quoted}")
    elif not errors and code != 0:
        last = [_cut(line) for line in seen.tail if line.strip()][-LAST_LINES:]
        parts.append("last output: " + (" | ".join(last) or "none"))
    missing = ", ".join(f"{f} ({p})" for f, p in problems.items()) or "none"
    parts.append(f"frames missing or invalid: {missing}")
    if log is not None:
        parts.append(f"log: {log}")
    return "; ".join(parts)

"""Rich rendering: progress on stderr, result tables on stdout. The same for every backend."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

Doc = dict[str, Any]


class RichProgress:
    """A `batchpipe.progress.Progress` drawn as one line per stage."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            auto_refresh=False,  # no refresh thread: the local engine forks worker processes
        )
        self._task: TaskID | None = None
        self.started = time.monotonic()

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            # the error line says what happened: no bar that looks finished above it
            self._bar.live.transient = True
        else:
            self._finish()
        self._bar.stop()

    def _finish(self) -> None:
        if self._task is not None:
            task = self._bar.tasks[self._task]
            if task.total is None:
                self._bar.update(self._task, total=1, completed=1)
            self._bar.stop_task(self._task)
            self._bar.refresh()

    def stage(self, name: str, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._bar.add_task(description, total=total)
        self._bar.refresh()

    def advance(self, units: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, units)
            self._bar.refresh()

    def warn(self, message: str) -> None:
        self._bar.console.print(f"[yellow]warning:[/] {message}")


def _money(x: float | None) -> str:
    return "" if x is None else f"{x:,.2f}"


TABLE_ROWS = 100  # a table longer than this helps nobody: the files hold every row


def montecarlo_tables(doc: Doc, console: Console) -> None:
    rows = doc["positions"][:TABLE_ROWS]
    errors = any(p["error"] for p in rows)
    ids = any(p["id"] is not None for p in rows)
    table = Table(title=f"{doc['jobName']}: {doc['status']}", title_justify="left")
    for col in ("#", *(["id"] if ids else []), "notional", "strike", "autocall", "PV", "std err", "% notional"):
        table.add_column(col, justify="left" if col == "id" else "right")
    if errors:
        table.add_column("error", overflow="fold")
    for p in rows:
        pct = "" if p["stderr"] is None else f"{100 * p['stderr'] / p['notional']:.3f}%"
        row = [
            str(p["index"]),
            *([p["id"] or ""] if ids else []),
            f"{p['notional']:,.0f}",
            f"{p['strike']:g}",
            f"{p['autocallBarrier']:g}",
            _money(p["pv"]),
            _money(p["stderr"]),
            pct,
        ]
        table.add_row(*row, *([p["error"] or ""] if errors else []), style="red" if p["error"] else None)
    console.print(table)
    count = doc.get("positionCount", len(doc["positions"]))
    if count > len(rows):
        failed = doc.get("failedCount", 0)
        console.print(
            f"First {len(rows)} of {count:,} positions shown"
            + (f"; {failed:,} failed" if failed else "")
            + ": every position is in results.csv and results.json."
        )
    agg = Table(title="PV by strike", title_justify="left")
    agg.add_column("strike", justify="right")
    agg.add_column("PV", justify="right")
    for strike, pv in doc["aggregation"].items():
        agg.add_row(strike, _money(pv))
    console.print(agg)
    model = doc["model"]
    heston = ", ".join(f"{k}={v:.4g}" for k, v in model["heston"].items())
    rmse = model["calibrationRmse"]
    sim = doc["simulation"]
    console.print(
        f"Total PV [bold]{_money(doc['totalPv'])}[/] ± {_money(doc['totalStderr'])}  "
        f"({sim['paths']:,} paths, seed {sim['seed']}, {sim['stepsPerYear']} steps/year)"
    )
    console.print(
        f"Heston {heston}" + ("" if rmse is None else f"  (calibrated, implied-vol RMSE {100 * rmse:.2f} vol points)")
    )


def render_summary(doc: Doc, out_dir: Any, console: Console) -> None:
    table = Table(title=f"{doc['jobName']}: {doc['status']}", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    w, h = doc["resolution"]
    table.add_row("scene", f"{doc['scene']} ({doc['engine']})")
    table.add_row("frames", f"{doc['frameStart']}-{doc['frameEnd']} step {doc['frameStep']}: {doc['frames']} frames")
    table.add_row("rendered", f"{len(doc['framesRendered'])} in {doc['shards']} shards of {doc['framesPerJob']}")
    table.add_row("size", f"{w}x{h} ({doc['resolutionPercentage']}%), {doc['fps']:g} fps")
    if doc["missingFrames"]:
        table.add_row("missing", doc["missingFrameRanges"], style="red")
    if doc["video"]:
        info = doc["videoInfo"]
        table.add_row("video", f"{out_dir}/{doc['video']} ({info['frames']} frames, {info['width']}x{info['height']})")
    table.add_row("frames dir", f"{out_dir}/frames/")
    console.print(table)

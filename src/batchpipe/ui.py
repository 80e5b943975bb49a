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
        self._stage: str | None = None
        self.started = time.monotonic()

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            # the error line says what happened: no bar that looks finished above it, and (not on a terminal) no
            # blank line either: the error stays the only line
            self._bar.live.transient = True
            if not self.console.is_terminal:
                with self.console.capture():
                    self._bar.stop()
                return
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
        """A new stage gets its own line; the current stage again (the AWS tail's polls) updates its line."""
        if self._task is not None and name == self._stage:
            self._bar.update(self._task, description=description, total=total)
        else:
            self._finish()
            self._task = self._bar.add_task(description, total=total)
            self._stage = name
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


# Columns a narrow terminal drops first; "#" and "PV" always stay, and numbers are never cut.
DROP_ORDER = ("autocall", "id", "% notional", "strike", "notional", "std err")


def fitted_table(title: str, columns: list[str], rows: list[list[str]], width: int, keep_whole: set[str],
                 right: set[str], styles: list[str | None] | None = None) -> Table:  # fmt: skip
    """A table whose number columns are never cut or wrapped: when the console is too narrow, whole columns are
    dropped (in DROP_ORDER), and what still does not fit runs past the line (print it with crop=False) rather
    than showing '10…'."""
    needed = {c: max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)}
    shown = list(columns)

    def total() -> int:
        return sum(needed[c] + 3 for c in shown if c in keep_whole) + sum(8 for c in shown if c not in keep_whole) + 1

    for column in DROP_ORDER:
        if total() <= width:
            break
        if column in shown:
            shown.remove(column)
    table = Table(title=title, title_justify="left")
    for c in shown:
        whole = c in keep_whole
        table.add_column(c, justify="right" if c in right else "left", no_wrap=whole, overflow="fold",
                         min_width=needed[c] if whole else None)  # fmt: skip
    index = [columns.index(c) for c in shown]
    for n, r in enumerate(rows):
        table.add_row(*(r[i] for i in index), style=styles[n] if styles else None)
    return table


def montecarlo_tables(doc: Doc, console: Console, where: Any = None) -> None:
    """A Monte Carlo result: positions (the first 100), PV by strike, totals, the model; `where` is unused."""
    rows = doc["positions"][:TABLE_ROWS]
    errors = any(p["error"] for p in rows)
    ids = any(p["id"] is not None for p in rows)
    columns = ["#", *(["id"] if ids else []), "notional", "strike", "autocall", "PV", "std err", "% notional"]
    cells = []
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
        cells.append([*row, *([p["error"] or ""] if errors else [])])
    if errors:
        columns.append("error")
    numbers = {"#", "notional", "strike", "autocall", "PV", "std err", "% notional"}
    table = fitted_table(f"{doc['jobName']}: {doc['status']}", columns, cells, console.width, numbers, numbers,
                         ["red" if p["error"] else None for p in rows])  # fmt: skip
    console.print(table, crop=False)
    count = doc.get("positionCount", len(doc["positions"]))
    if count > len(rows):
        failed = doc.get("failedCount", 0)
        console.print(
            f"First {len(rows)} of {count:,} positions shown"
            + (f"; {failed:,} failed" if failed else "")
            + ": every position is in results.csv and results.json."
        )
    agg = [[strike, _money(pv)] for strike, pv in doc["aggregation"].items()]
    both = {"strike", "PV"}
    console.print(fitted_table("PV by strike", ["strike", "PV"], agg, console.width, both, both), crop=False)
    model = doc["model"]
    heston = ", ".join(f"{k}={v:.4g}" for k, v in model["heston"].items())
    rmse = model["calibrationRmse"]
    sim = doc["simulation"]
    asked = sim.get("pathsRequested", sim["paths"])
    requested = "" if asked == sim["paths"] else f" for {asked:,} requested"
    used = float(sim.get("stepsPerYearUsed", sim["stepsPerYear"]))
    steps = f"{sim['stepsPerYear']} steps/year" if used <= sim["stepsPerYear"] else f"{used:,.0f} steps/year (kappa)"
    console.print(
        f"Total PV [bold]{_money(doc['totalPv'])}[/] ± {_money(doc['totalStderr'])}  "
        f"({sim['paths']:,} paths{requested}, seed {sim['seed']}, {steps})"
    )
    if not model.get("calibrated", rmse is not None):
        fit = "  (given in the file)"
    elif rmse is None:
        fit = "  (calibrated; the implied-vol RMSE cannot be measured)"
    else:
        fit = f"  (calibrated, implied-vol RMSE {100 * rmse:.2f} vol points)"
    console.print(f"Heston {heston}{fit}")
    for warning in model.get("calibrationWarnings") or []:
        console.print(f"[yellow]calibration warning:[/] {warning}")
    if doc.get("totalGreeks") is not None:
        greeks_table(doc, console)
    if doc.get("scenarios") is not None:
        scenarios_table(doc["scenarios"], console)


GREEK_UNITS = {"delta": "per unit of spot", "gamma": "per unit of spot²", "vega": "per vol point", "rho": "per bp"}


def _figure(value: float | None, stderr: float | None) -> str:
    if value is None:
        return ""
    shown = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    return shown if stderr is None else f"{shown} ± {stderr:,.2g}" if abs(stderr) < 1 else f"{shown} ± {stderr:,.0f}"


def greeks_table(doc: Doc, console: Console) -> None:
    """The portfolio's greeks and each strike's, with their standard errors."""
    names = list(GREEK_UNITS)
    rows = [["total", *(_figure(doc["totalGreeks"][g], doc["totalGreeksStderr"][g]) for g in names)]]
    stderrs = doc.get("greeksByStrikeStderr") or {}
    for strike, greeks in (doc.get("greeksByStrike") or {}).items():
        errors = stderrs.get(strike) or {}
        rows.append([strike, *(_figure(greeks[g], errors.get(g)) for g in names)])
    columns = ["book", *names]
    title = "Greeks: " + ", ".join(f"{g} {unit}" for g, unit in GREEK_UNITS.items())
    table = fitted_table(title, columns, rows, console.width, set(columns), set(columns))
    console.print(table, crop=False)


def scenarios_table(ladder: Doc, console: Console) -> None:
    """The portfolio's PV in each scenario: spot shifts down, vol shifts across."""
    vols = ladder["volShifts"]
    totals = ladder.get("totalPv")
    largest = max((abs(x) for row in totals or [] for x in row), default=0.0)
    millions = largest >= 1e7  # a compact grid: the book's PV in millions
    unit = " in millions" if millions else ""

    def cell(x: float) -> str:
        return f"{x / 1e6:,.2f}" if millions else _money(x)

    columns = ["spot \\ vol", *(f"{v:+g}" for v in vols)]
    rows = [
        [f"{100 * s:+g}%", *(cell(totals[i][j]) if totals else "" for j in range(len(vols)))]
        for i, s in enumerate(ladder["spotShifts"])
    ]
    table = fitted_table(f"Scenarios: portfolio PV{unit} (spot shift, vol shift in vol points)", columns, rows,
                         console.width, set(columns), set(columns))  # fmt: skip
    console.print(table, crop=False)


def render_summary(doc: Doc, console: Console, out_dir: Any = None) -> None:
    """A render result: scene, frames, size, what is missing, the video; paths under `out_dir`."""
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

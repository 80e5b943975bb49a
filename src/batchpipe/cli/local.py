"""`status --local` and `results --local`: runs on this machine, read from their directories."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from batchpipe.errors import InputError


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _find(run: str) -> Path:
    from batchpipe.backends import local

    found = local.run_directory(run)
    if found is None:
        raise InputError(f"no local run '{run}': not a run directory, nor a job name under ./{local.DEFAULT_ROOT}/")
    return found


def local_status(run: str | None, as_json: bool, watch: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from batchpipe import rundir
    from batchpipe.backends import local

    target = Path(run) if run is not None else local.DEFAULT_ROOT
    single = local.run_directory(run) if run is not None else None
    if single is None and run is not None and not target.is_dir():
        _find(run)  # says what is missing
    if single is None:
        if watch:
            raise InputError("--watch follows one run: name it (a run directory or a job name)")
        rows = rundir.find_runs(target)
        if as_json:
            click.echo(json.dumps(rows, indent=2, allow_nan=False))
            return
        if not rows:
            click.echo(f"no runs in {target}/", err=True)
            return
        table = Table(title=f"Runs in {target}/", title_justify="left")
        for col in ("name", "pipeline", "status", "started", "duration"):
            table.add_column(col, no_wrap=col != "name", overflow="fold")
        for r in rows:
            table.add_row(r["jobName"], r["pipeline"], r["status"], str(r["started"] or "")[:19].replace("T", " "),
                          _duration(r["seconds"]))  # fmt: skip
        Console().print(table)
        return
    while True:
        doc = local.run_status(single)
        if as_json and not watch:
            click.echo(json.dumps(doc, indent=2, allow_nan=False))
            return
        if not watch or doc["status"] != "RUNNING":
            break
        time.sleep(1.0)
    console = Console()
    console.print(f"[bold]{doc['jobName']}[/] ({doc['pipeline']}): {doc['status']}, started "
                  f"{str(doc['started'] or '')[:19].replace('T', ' ')}, {_duration(doc['seconds'])}")  # fmt: skip
    console.print(f"directory: {doc['directory']}" + (f" (input {doc['input']})" if doc.get("input") else ""))
    if doc.get("holder"):
        console.print(f"running as pid {doc['holder']['pid']} on {doc['holder']['host']}")
    if doc.get("shards") is not None:
        console.print(f"shards: {doc['shardsDone']} of {doc['shards']} complete")
    if doc.get("frames"):
        console.print(f"frames: {doc['frames']['rendered']} of {doc['frames']['total']} on disk")
    if doc.get("error"):
        console.print(f"[red]{doc['error']}[/]")
    if as_json:
        click.echo(json.dumps(doc, indent=2, allow_nan=False))


def local_results(run: str, as_json: bool) -> None:
    from rich.console import Console

    from batchpipe import catalog, rundir, ui
    from batchpipe.backends import local
    from batchpipe.cli.show import copy_to

    directory = _find(run)
    doc: Any = local.result_document(directory)
    info = rundir.describe(directory)  # the marker and the lock: not the plan and every shard, as run_status reads
    assert info is not None  # _find found a run there
    if doc is None:
        raise InputError(f"run '{run}' has no collated results yet ({info['status']}): "
                         f"`batchpipe status {run} --local`")  # fmt: skip
    described = catalog.pipeline(str(info["pipeline"]))
    if as_json:  # the whole document, streamed from the file (a Monte Carlo result can be large)
        copy_to(str(directory / described.result_file), sys.stdout.write)
        return
    getattr(ui, described.renderer)(doc, Console(), directory)

"""The Monte Carlo pipeline's files in a run's store, streamed (`batchpipe.layout.RunLayout`).

A plan is two files: positions.jsonl (every resolved position, one JSON line each, streamed out of preprocess) and
plan.json (the rest, with the byte offset where each shard's positions start: `PlanBuilder.finished_plan`). A shard
reads only its own lines (a ranged read), collate reads shard by shard, and results.json / results.csv are
streamed to staging files and moved into place: memory follows the shard size, not the portfolio size.

The store does the I/O; nothing here knows whether it is a directory or S3.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from pydantic import TypeAdapter

from batchpipe.layout import RunLayout
from batchpipe.pipelines.montecarlo.collate import (
    SCENARIO_FIELDS,
    UNREADABLE,
    Collation,
    Unreadable,
    csv_row,
    result_fields,
)
from batchpipe.pipelines.montecarlo.documents import Plan, ResolvedPosition, ResultRow, Results, ShardResult
from batchpipe.pipelines.montecarlo.plan import PlanBuilder, shard_range
from batchpipe.pipelines.montecarlo.price import is_complete

_POSITIONS = TypeAdapter(list[ResolvedPosition])  # strict, as every document

PREVIEW_ROWS = 100  # result rows kept in the summary a run returns (all of them are in results.json / .csv)


def write_plan(layout: RunLayout, builder: PlanBuilder) -> Plan:
    """Stream the resolved positions to positions.jsonl, then write plan.json (the builder's finished plan, with
    each shard's byte offset and the plan's fingerprint); returns the plan."""
    store = layout.store
    tmp = store.staging_file(layout.positions)
    try:
        with open(tmp, "wb") as fh:
            for line in builder.stored_positions():
                fh.write(line)
        plan = builder.finished_plan()
        store.put_file(layout.positions, tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    layout.write_json(layout.plan, plan)
    return plan


def read_plan(layout: RunLayout) -> Plan:
    """The run's plan.json (FileNotFoundError when there is none, ValueError when it is not a plan)."""
    return layout.read_document(layout.plan, Plan)


def _positions(lines: bytes) -> list[ResolvedPosition]:
    return _POSITIONS.validate_json(b"[" + lines + b"]")


def read_shard_positions(layout: RunLayout, plan: Plan, shard: int) -> list[ResolvedPosition]:
    """One shard's resolved positions: a ranged read of its lines only."""
    shard_range(plan, shard)  # checks the index
    offsets = plan.shard_offsets
    data = layout.store.read_range(layout.positions, offsets[shard], offsets[shard + 1])
    return _positions(data.rstrip(b"\n").replace(b"\n", b","))


def shard_result(layout: RunLayout, plan: Plan, shard: int) -> ShardResult | None:
    """A shard's stored result, or None where it left no readable result of this job."""
    return layout.shard_result(ShardResult, plan.job_name, shard)


def stored_result(layout: RunLayout, plan: Plan, shard: int) -> ShardResult | Unreadable | None:
    """A shard's stored result of this job; UNREADABLE where a file is there but is not one (it is reported as
    stale or corrupt, not as missing); None where there is none."""
    try:
        return layout.shard_result(ShardResult, plan.job_name, shard, strict=True)
    except ValueError:
        return UNREADABLE


def shard_inputs(
    layout: RunLayout, plan: Plan
) -> Iterator[tuple[int, list[ResolvedPosition], ShardResult | Unreadable | None]]:
    """(shard, positions, stored result) for every shard, in order.

    The positions come from one streamed read of positions.jsonl. Result keys are fixed by shard index, so nothing
    is listed and nothing from another run is counted; where the store is worth it (S3) results are read
    concurrently (thousands of shards would take minutes one by one), a bounded window ahead of the consumer.
    """
    shards = range(plan.shards)
    lines = layout.store.read_lines(layout.positions)

    def with_positions(
        shard: int, result: ShardResult | Unreadable | None
    ) -> tuple[int, list[ResolvedPosition], ShardResult | Unreadable | None]:
        batch = list(islice(lines, len(shard_range(plan, shard))))
        return shard, _positions(b",".join(line.rstrip(b"\n") for line in batch)), result

    concurrency = layout.store.read_concurrency
    if concurrency <= 1:
        for shard in shards:
            yield with_positions(shard, stored_result(layout, plan, shard))
        return
    window = 4 * concurrency
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for start in range(0, len(shards), window):
            batch = shards[start : start + window]
            results = pool.map(lambda s: stored_result(layout, plan, s), batch)
            for shard, result in zip(batch, results, strict=True):
                yield with_positions(shard, result)


def complete_shards(layout: RunLayout, plan: Plan) -> set[int]:
    """The shards whose stored results are complete for this very plan (a corrupt or failed one is redone)."""
    done = set()
    for shard in range(plan.shards):
        result = shard_result(layout, plan, shard)
        if result is None or result.plan_hash != plan.plan_hash:
            continue  # not this plan's: no need to read the positions
        if is_complete(plan, shard, read_shard_positions(layout, plan, shard), result):
            done.add(shard)
    return done


def collate(layout: RunLayout, plan: Plan) -> Results:
    """Collate every shard into results.json and results.csv, streamed, and summary.json (results.json without its
    positions, for readers that need only the totals); returns the results document with only its first
    PREVIEW_ROWS rows (and "positionCount", "failedCount" for the rest)."""
    store = layout.store
    collation = Collation(plan)
    preview: list[ResultRow] = []
    rows_tmp, csv_tmp = store.staging_file(layout.results), store.staging_file(layout.results_csv)
    json_tmp = store.staging_file(layout.results)
    ladder_tmp = store.staging_file(layout.scenarios_csv) if plan.scenarios is not None else None
    try:
        with (
            open(rows_tmp, "w", encoding="utf-8") as rows_fh,
            open(csv_tmp, "w", encoding="utf-8", newline="") as cf,
            open(ladder_tmp or os.devnull, "w", encoding="utf-8", newline="") as lf,
        ):
            writer = csv.writer(cf, lineterminator="\n")
            writer.writerow(result_fields(plan))
            ladder = csv.writer(lf, lineterminator="\n")
            if ladder_tmp is not None:
                ladder.writerow(SCENARIO_FIELDS)
            first = True
            for shard, positions, result in shard_inputs(layout, plan):
                rows, scenario_rows = collation.fold(shard, positions, result)
                ladder.writerows(scenario_rows)
                for row in rows:
                    rows_fh.write(("    " if first else ",\n    ") + json.dumps(row.stored(), allow_nan=False))
                    first = False
                    writer.writerow(csv_row(row))
                    if len(preview) < PREVIEW_ROWS:
                        preview.append(row)
        summary = collation.summary()
        head = json.dumps(summary.stored(), indent=2, allow_nan=False)
        with open(json_tmp, "w", encoding="utf-8") as out, open(rows_tmp, encoding="utf-8") as rows_in:
            out.write(head[:-2] + ',\n  "positions": [\n')  # the summary's closing "\n}" comes after the rows
            while chunk := rows_in.read(1 << 20):
                out.write(chunk)
            out.write("\n  ]\n}\n")
        store.put_file(layout.results_csv, csv_tmp)
        if ladder_tmp is not None:
            store.put_file(layout.scenarios_csv, ladder_tmp)
        store.put_file(layout.results, json_tmp)
        layout.write_json(layout.summary, summary, indent=2)
    finally:
        for tmp in (rows_tmp, csv_tmp, json_tmp, ladder_tmp):
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    return Results(**dict(summary), positions=preview)

"""Where a run's files live under its output location (a directory or an s3:// prefix), read and written.

Keys are fixed by shard index, so a retried shard overwrites its own result instead of adding a second one.

A Monte Carlo plan is two files: positions.jsonl (every resolved position, one JSON line each, streamed out by
preprocess) and plan.json (the rest, with the byte offset where each shard's positions start). A shard reads only
its own lines (a ranged read), collate reads shard by shard, and results.json / results.csv are streamed to a
temporary file and moved into place: memory follows the shard size, not the portfolio size.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from batchpipe import storage
from batchpipe.pipelines import montecarlo as mc

Doc = dict[str, Any]

READ_CONCURRENCY = 32
PREVIEW_ROWS = 100  # result rows kept in the summary a run returns (all of them are in results.json / .csv)


def plan_uri(output: str) -> str:
    return storage.join(output, "plan.json")


def positions_uri(output: str) -> str:
    return storage.join(output, "positions.jsonl")


def shard_uri(output: str, shard: int) -> str:
    return storage.join(output, "shards", f"shard-{shard:05d}.json")


def write_json(uri: str, doc: Doc, indent: int | None = None) -> None:
    """Strict JSON (a NaN or Infinity is a bug upstream, never written: JSON.parse must read every file)."""
    storage.write_text(uri, json.dumps(doc, indent=indent, allow_nan=False) + "\n")


def read_json(uri: str) -> Doc:
    doc = json.loads(storage.read_text(uri))
    if not isinstance(doc, dict):
        raise ValueError(f"{uri}: expected a JSON object")
    return doc


def write_plan(output: str, builder: mc.PlanBuilder) -> Doc:
    """Stream the resolved positions to positions.jsonl, then write plan.json with each shard's byte offset and
    the plan's fingerprint; returns the plan."""
    target = positions_uri(output)
    tmp = storage.staging_file(target)
    digest = hashlib.sha256()
    offsets = [0]
    try:
        with open(tmp, "wb") as fh:
            per_job = builder.positions_per_job
            for i, position in enumerate(builder.positions()):
                if i and i % per_job == 0:
                    offsets.append(fh.tell())
                line = mc.position_line(position).encode()
                digest.update(line)
                fh.write(line)
            offsets.append(fh.tell())
        plan = builder.plan()
        plan["shardOffsets"] = offsets
        plan["planHash"] = mc.plan_hash(plan, digest.hexdigest())
        storage.put_file(target, tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    write_json(plan_uri(output), plan)
    return plan


def read_plan(output: str) -> Doc:
    return read_json(plan_uri(output))


def read_shard_positions(output: str, plan: Doc, shard: int) -> list[Doc]:
    """One shard's resolved positions: a ranged read of its lines only."""
    mc.shard_range(plan, shard)  # checks the index
    offsets = plan["shardOffsets"]
    data = storage.read_range(positions_uri(output), int(offsets[shard]), int(offsets[shard + 1]))
    positions: list[Doc] = json.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")
    return positions


def read_shard_result(output: str, plan: Doc, shard: int) -> Doc | None:
    """A shard's stored result, or None where it left no readable result of this job."""
    try:
        doc = read_json(shard_uri(output, shard))
    except (FileNotFoundError, ValueError):
        return None
    if doc.get("jobName") != plan["jobName"] or doc.get("shard") != shard:
        return None
    return doc


def read_shard_results(output: str, plan: Doc) -> list[Doc | None]:
    """Every shard's stored result, by index (None where missing or unreadable); S3 objects read concurrently."""
    shards = range(int(plan["shards"]))
    if not storage.is_s3(output):
        return [read_shard_result(output, plan, s) for s in shards]
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
        return list(pool.map(lambda s: read_shard_result(output, plan, s), shards))


def shard_inputs(output: str, plan: Doc) -> Iterator[tuple[int, list[Doc], Doc | None]]:
    """(shard, positions, stored result) for every shard, in order.

    The positions come from one streamed read of positions.jsonl. Result keys are fixed by shard index, so nothing
    is listed and nothing from another run is counted; S3 objects are read concurrently (thousands of shards would
    take minutes one by one), a bounded window ahead of the consumer.
    """
    shards = range(int(plan["shards"]))
    lines = storage.read_lines(positions_uri(output))

    def with_positions(shard: int, result: Doc | None) -> tuple[int, list[Doc], Doc | None]:
        batch = list(islice(lines, len(mc.shard_range(plan, shard))))
        positions: list[Doc] = json.loads(b"[" + b",".join(batch) + b"]")
        return shard, positions, result

    if not storage.is_s3(output):
        for shard in shards:
            yield with_positions(shard, read_shard_result(output, plan, shard))
        return
    window = 4 * READ_CONCURRENCY
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
        for start in range(0, len(shards), window):
            batch = shards[start : start + window]
            for shard, result in zip(batch, pool.map(lambda s: read_shard_result(output, plan, s), batch), strict=True):
                yield with_positions(shard, result)


def complete_shards(output: str, plan: Doc) -> set[int]:
    """The shards whose stored results are complete for this very plan (a corrupt or failed one is redone)."""
    done = set()
    for shard in range(int(plan["shards"])):
        result = read_shard_result(output, plan, shard)
        if result is None or result.get("planHash") != plan["planHash"]:
            continue  # not this plan's: no need to read the positions
        if mc.is_complete(plan, shard, read_shard_positions(output, plan, shard), result):
            done.add(shard)
    return done


def collate_montecarlo(output: str, plan: Doc) -> Doc:
    """Collate every shard into results.json and results.csv, streamed, and summary.json (results.json without its
    positions, for readers that need only the totals); returns the results document with only its first
    PREVIEW_ROWS rows (and "positionCount", "failedCount" for the rest)."""
    collation = mc.Collation(plan)
    preview: list[Doc] = []
    json_uri, csv_uri = storage.join(output, "results.json"), storage.join(output, "results.csv")
    rows_tmp, csv_tmp = storage.staging_file(json_uri), storage.staging_file(csv_uri)
    json_tmp = storage.staging_file(json_uri)
    try:
        with open(rows_tmp, "w", encoding="utf-8") as rows_fh, open(csv_tmp, "w", encoding="utf-8", newline="") as cf:
            writer = csv.writer(cf, lineterminator="\n")
            writer.writerow(mc.RESULT_FIELDS)
            first = True
            for shard, positions, result in shard_inputs(output, plan):
                for row in collation.add(shard, positions, result):
                    rows_fh.write(("    " if first else ",\n    ") + json.dumps(row, allow_nan=False))
                    first = False
                    writer.writerow(mc.csv_row(row))
                    if len(preview) < PREVIEW_ROWS:
                        preview.append(row)
        summary = collation.summary()
        head = json.dumps(summary, indent=2, allow_nan=False)
        with open(json_tmp, "w", encoding="utf-8") as out, open(rows_tmp, encoding="utf-8") as rows_in:
            out.write(head[:-2] + ',\n  "positions": [\n')  # the summary's closing "\n}" comes after the rows
            while chunk := rows_in.read(1 << 20):
                out.write(chunk)
            out.write("\n  ]\n}\n")
        storage.put_file(csv_uri, csv_tmp)
        storage.put_file(json_uri, json_tmp)
        write_json(storage.join(output, "summary.json"), summary, indent=2)
    finally:
        for tmp in (rows_tmp, csv_tmp, json_tmp):
            if os.path.exists(tmp):
                os.unlink(tmp)
    return summary | {"positions": preview}


def copy_to(uri: str, write: Callable[[str], Any], chunk: int = 1 << 20) -> None:
    """Stream a local file's text to `write` (a results.json too large to print from memory)."""
    with open(uri, encoding="utf-8") as fh:
        while data := fh.read(chunk):
            write(data)

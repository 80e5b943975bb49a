"""Where a run's files live under its output location (a directory or an s3:// prefix), read and written.

Keys are fixed by shard index, so a retried shard overwrites its own result instead of adding a second one.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from batchpipe import storage
from batchpipe.pipelines import montecarlo as mc

Doc = dict[str, Any]


def plan_uri(output: str) -> str:
    return storage.join(output, "plan.json")


def shard_uri(output: str, shard: int) -> str:
    return storage.join(output, "shards", f"shard-{shard:05d}.json")


def write_json(uri: str, doc: Doc, indent: int | None = None) -> None:
    storage.write_text(uri, json.dumps(doc, indent=indent) + "\n")


def read_json(uri: str) -> Doc:
    doc = json.loads(storage.read_text(uri))
    if not isinstance(doc, dict):
        raise ValueError(f"{uri}: expected a JSON object")
    return doc


def read_shard_results(output: str, plan: Doc) -> list[Doc | None]:
    """This run's shard results, by index; None where a shard left no readable result of this job."""
    results: list[Doc | None] = []
    for shard in range(int(plan["shards"])):
        uri = shard_uri(output, shard)
        try:
            doc = read_json(uri) if storage.exists(uri) else None
        except ValueError:
            doc = None
        if doc is not None and (doc.get("jobName") != plan["jobName"] or doc.get("shard") != shard):
            doc = None
        results.append(doc)
    return results


def write_montecarlo_results(output: str, doc: Doc) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(mc.results_csv_rows(doc))
    storage.write_text(storage.join(output, "results.csv"), buf.getvalue())
    write_json(storage.join(output, "results.json"), doc, indent=2)

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


READ_CONCURRENCY = 32


def read_shard_results(output: str, plan: Doc) -> list[Doc | None]:
    """This run's shard results, by index; None where a shard left no readable result of this job.

    Keys are fixed by shard index, so nothing is listed and nothing from another run is counted; S3 objects are
    read concurrently (thousands of shards would take minutes one by one).
    """

    def one(shard: int) -> Doc | None:
        try:
            doc = read_json(shard_uri(output, shard))
        except (FileNotFoundError, ValueError):
            return None
        except Exception as exc:  # S3's NoSuchKey arrives as a botocore ClientError
            if "NoSuchKey" in str(exc) or "404" in str(exc) or "Not Found" in str(exc):
                return None
            raise
        if doc.get("jobName") != plan["jobName"] or doc.get("shard") != shard:
            return None
        return doc

    shards = range(int(plan["shards"]))
    if not storage.is_s3(output):
        return [one(s) for s in shards]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
        return list(pool.map(one, shards))


def write_montecarlo_results(output: str, doc: Doc) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(mc.results_csv_rows(doc))
    storage.write_text(storage.join(output, "results.csv"), buf.getvalue())
    write_json(storage.join(output, "results.json"), doc, indent=2)

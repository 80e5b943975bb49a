"""Where a run's files live in its store (`batchpipe.storage`), and its JSON documents read and written.

Both pipelines, both backends and the container entrypoints name files only through `RunLayout`. Keys are fixed
by shard index, so a retried shard overwrites its own result instead of adding a second one. The state machines'
Lambda (`batchpipe.aws.handlers`, self-contained) spells some of these names itself; a test holds them equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from batchpipe.documents import Document, ShardDocument
from batchpipe.rendering.frames import frame_filename
from batchpipe.storage import Store, store_for

Json = Mapping[str, Any]  # a stored JSON object, as read (`read_json`)
D = TypeVar("D", bound=Document)
S = TypeVar("S", bound=ShardDocument)


class RunLayout:
    """A run's files, by name, in `store`."""

    plan = "plan.json"
    positions = "positions.jsonl"  # Monte Carlo: every resolved position, one JSON line each
    shards = "shards"
    results = "results.json"  # Monte Carlo: the collated result, every position
    results_csv = "results.csv"
    scenarios_csv = "scenarios.csv"  # Monte Carlo with scenarios: one row per position and scenario
    summary = "summary.json"  # Monte Carlo: results.json without its positions
    render_result = "render.json"
    frames = "frames"
    video = "output.mp4"
    logs = "logs"

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def at(cls, location: str) -> RunLayout:
        """The layout of the run at an output location (a directory or an s3:// prefix)."""
        return cls(store_for(location))

    @staticmethod
    def shard(shard: int) -> str:
        return f"{RunLayout.shards}/shard-{shard:05d}.json"

    @staticmethod
    def frame(frame: int) -> str:
        return f"{RunLayout.frames}/{frame_filename(frame)}"

    @staticmethod
    def log(shard: int) -> str:
        return f"{RunLayout.logs}/shard-{shard:05d}.log"

    def uri(self, name: str) -> str:
        """The path or URI of one of the run's files."""
        return self.store.uri(name)

    def write_json(self, name: str, doc: Document | Json, indent: int | None = None) -> None:
        """Strict JSON (a NaN or Infinity is a bug upstream, never written: JSON.parse must read every file)."""
        value = doc.stored() if isinstance(doc, Document) else doc
        self.store.write_text(name, json.dumps(value, indent=indent, allow_nan=False) + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        """A stored JSON object as read, whatever its kind (FileNotFoundError, or ValueError when not one)."""
        doc = json.loads(self.store.read_text(name))
        if not isinstance(doc, dict):
            raise ValueError(f"{self.uri(name)}: expected a JSON object")
        return doc

    def read_document(self, name: str, kind: type[D]) -> D:
        """A stored document of a known kind (FileNotFoundError, or ValueError when it is not one)."""
        return kind.read(self.read_json(name), self.uri(name))

    def shard_result(self, kind: type[S], job_name: str, shard: int, strict: bool = False) -> S | None:
        """A shard's stored result: None where there is none, or only another job's; a file that is not a `kind`
        (corrupt, cut short) is None too, or a ValueError when `strict`."""
        name = self.shard(shard)
        try:
            doc = self.read_json(name)
        except FileNotFoundError:
            return None
        except ValueError:
            if strict:
                raise
            return None
        if doc.get("jobName") != job_name or doc.get("shard") != shard:
            return None
        try:
            return kind.read(doc, self.uri(name))
        except ValueError:
            if strict:
                raise
            return None

    def shard_results(self, kind: type[S], job_name: str, shards: int) -> list[S | None]:
        """Every shard's stored result, by index (None where missing or unreadable); read concurrently where the
        store is worth it (S3)."""
        if self.store.read_concurrency <= 1:
            return [self.shard_result(kind, job_name, s) for s in range(shards)]
        with ThreadPoolExecutor(max_workers=self.store.read_concurrency) as pool:
            return list(pool.map(lambda s: self.shard_result(kind, job_name, s), range(shards)))

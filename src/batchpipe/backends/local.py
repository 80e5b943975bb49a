"""The local engine: the pipeline's stages on this machine, the fan-out on a process pool.

Monte Carlo work is split into (shard, chunk) tasks: a shard is a slice of positions, as on AWS; a chunk a fixed
group of path blocks. A shard's chunks are folded in order into exactly the result one AWS array child computes,
so results do not depend on --workers. Each shard's result is written as soon as it is complete.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from batchpipe import artifacts
from batchpipe.errors import BatchpipeError
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.portfolio import Portfolio
from batchpipe.progress import Progress

Doc = dict[str, Any]
T = TypeVar("T")

_PLAN: Doc | None = None


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _init_worker(plan: Doc) -> None:
    global _PLAN
    _PLAN = plan
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _price_task(task: tuple[int, int]) -> Doc:
    assert _PLAN is not None
    return mc.price_chunk(_PLAN, *task)


def run_pool(
    tasks: Sequence[T],
    fn: Callable[[T], Any],
    workers: int,
    on_result: Callable[[T, Any, BaseException | None], None],
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
) -> None:
    """Run fn over tasks on `workers` processes (in this process if 1), reporting each outcome as it lands."""
    if workers <= 1 or len(tasks) <= 1:
        initializer(*initargs)
        for task in tasks:
            try:
                result = fn(task)
            except Exception as exc:
                on_result(task, None, exc)
            else:
                on_result(task, result, None)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=context, initializer=initializer, initargs=initargs
    ) as pool:
        pending: dict[Future[Any], T] = {pool.submit(fn, t): t for t in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = pending.pop(fut)
                    error = fut.exception()
                    on_result(task, None if error else fut.result(), error)
        except BaseException:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def run_montecarlo(
    portfolio: Portfolio,
    *,
    job_name: str,
    output_dir: str,
    progress: Progress,
    positions_per_job: int | None = None,
    paths: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
) -> Doc:
    """Preprocess, price every shard, collate; write plan, shard results, results.json and results.csv."""
    progress.stage("preprocess", "Calibrating and planning")
    plan = mc.preprocess(portfolio, job_name, positions_per_job=positions_per_job, paths=paths, seed=seed)
    artifacts.write_json(artifacts.plan_uri(output_dir), plan)
    chunks = int(plan["simulation"]["chunks"])
    shards = int(plan["shards"])
    tasks = [(s, c) for s in range(shards) for c in range(chunks)]
    parts: dict[int, list[Doc]] = {s: [] for s in range(shards)}
    results: dict[int, Doc] = {}

    def on_result(task: tuple[int, int], part: Doc | None, exc: BaseException | None) -> None:
        shard, _ = task
        if shard in results:  # an earlier chunk of this shard failed
            progress.advance()
            return
        if exc is not None:
            msg = f"shard {shard} failed: {type(exc).__name__}: {exc}"
            progress.warn(msg)
            results[shard] = mc.failed_shard(plan, shard, msg)
        else:
            assert part is not None
            parts[shard].append(part)
            if len(parts[shard]) == chunks:
                results[shard] = mc.shard_result(plan, shard, parts.pop(shard))
        if shard in results:
            artifacts.write_json(artifacts.shard_uri(output_dir, shard), results[shard])
        progress.advance()

    n_workers = workers or default_workers()
    progress.stage(
        "price",
        f"Pricing {len(plan['positions'])} positions x {plan['simulation']['paths']:,} paths",
        total=len(tasks),
    )
    try:
        run_pool(tasks, _price_task, n_workers, on_result, _init_worker, (plan,))
    except KeyboardInterrupt:
        raise BatchpipeError(
            f"interrupted: {len(results)} of {shards} shards finished, their results are in {output_dir}/shards"
        ) from None
    progress.stage("collate", "Collating")
    doc = mc.collate(plan, [results.get(s) for s in range(shards)])
    artifacts.write_montecarlo_results(output_dir, doc)
    return doc

"""The local engine: the pipeline's stages on this machine, the fan-out on a process pool (Monte Carlo) or on
parallel Blender processes (render).

Monte Carlo work is split into (shard, chunk) tasks: a shard is a slice of positions, as on AWS; a chunk a fixed
group of path blocks. A shard's chunks are folded in order into exactly the result one AWS array child computes,
so results do not depend on --workers. Each shard's result is written as soon as it is complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from batchpipe import catalog, rundir
from batchpipe.backends.summary import RunSummary
from batchpipe.cores import default_workers, process_context
from batchpipe.errors import InputError, Interrupted
from batchpipe.layout import RunLayout
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines import render as rp
from batchpipe.pipelines.montecarlo import price as mc_price
from batchpipe.pipelines.montecarlo import streaming
from batchpipe.pipelines.montecarlo.documents import Plan, Results, ShardResult
from batchpipe.pipelines.portfolio import Portfolio
from batchpipe.pipelines.render_documents import RenderPlan, RenderResult, RenderShardResult
from batchpipe.progress import Progress
from batchpipe.rendering.dependencies import require_dependencies
from batchpipe.rendering.frames import frame_filename, threads_per_process
from batchpipe.rendering.renderer import Renderer

Doc = dict[str, Any]
T = TypeVar("T")

_WORKER: dict[str, Any] = {}


def worker_count(requested: int | None, work: int, what: str) -> tuple[int, str | None]:
    """Processes to start: what was asked (default: every core), but never more than the cores or the units of
    work; the message says why when a request was cut."""
    cores = default_workers()
    n = max(1, min(requested or cores, cores, work))
    if requested is None or n == requested or work == 0:  # nothing left to do (a resume): nothing to say
        return n, None
    if n == cores:
        why = f"this machine has {cores} core{'s' * (cores != 1)}"
    else:
        why = f"the run has {work} {what}{'s' * (work != 1)} to do"
    return n, f"--workers {requested}: using {n} ({why})"


def _init_worker(plan: Plan, output_dir: str) -> None:
    _WORKER.clear()
    _WORKER.update(plan=plan, layout=RunLayout.at(output_dir), shard=None, positions=[])
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _price_task(task: tuple[int, int]) -> ShardResult | mc.ChunkSums:
    """One chunk of one shard, or the whole shard's result when it has one chunk (the fold then runs in the worker,
    not in the parent); a worker reads its shard's positions once, for all the chunks it gets."""
    shard, chunk = task
    plan: Plan = _WORKER["plan"]
    if _WORKER["shard"] != shard:
        _WORKER.update(shard=shard, positions=streaming.read_shard_positions(_WORKER["layout"], plan, shard))
    if plan.simulation.chunks == 1:
        return mc_price.price_shard(plan, shard, _WORKER["positions"])
    return mc_price.price_chunk(plan, shard, _WORKER["positions"], chunk)


def run_pool(
    tasks: Sequence[T],
    fn: Callable[[T], Any],
    workers: int,
    on_result: Callable[[T, Any, BaseException | None], None],
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
) -> None:
    """Run fn over tasks on `workers` processes (in this process if 1), reporting each outcome as it lands.

    Tasks are handed out a few per worker at a time, in order: results in flight stay bounded however many tasks
    there are."""
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
    context = process_context()
    crashed: list[T] = []
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=context, initializer=initializer, initargs=initargs
    ) as pool:
        queue = iter(tasks)
        pending: dict[Future[Any], T] = {}
        window = 4 * min(workers, len(tasks))
        try:
            while True:
                for task in islice(queue, window - len(pending)):
                    pending[pool.submit(fn, task)] = task
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = pending.pop(fut)
                    error = fut.exception()
                    if isinstance(error, BrokenProcessPool):  # a worker died: every unfinished task lands here
                        crashed.append(task)
                    else:
                        on_result(task, None if error else fut.result(), error)
        except BaseException:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    # Run what a dead worker took down again, each task alone in a fresh process: only the task that kills its
    # process fails, the others finish.
    for task in crashed:
        with ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=initializer, initargs=initargs
        ) as alone:
            fut = alone.submit(fn, task)
            error = fut.exception()
            if isinstance(error, BrokenProcessPool):
                error = WorkerCrashed("the worker process died (killed, out of memory, or crashed)")
            on_result(task, None if error else fut.result(), error)


class WorkerCrashed(RuntimeError):
    """A worker process ended without returning its task's result."""


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
    fresh: bool = False,
    force: bool = False,
    max_calibration_rmse: float | None = None,
    risk: mc.RiskOptions | None = None,
) -> RunSummary:
    """Preprocess, price every shard, collate; write the plan, shard results, results.json and results.csv (and
    scenarios.csv with scenarios); `risk`: the command line's greeks and scenarios, over the file's.

    The output directory is claimed first (`batchpipe.rundir`): a new or empty directory, or an earlier run of the
    same job, never another non-empty one unless `force`, and one run at a time. A re-run of the same job resumes:
    when its plan is identical, the shards whose results are there and complete are kept and only the others are
    priced (unless `fresh`). The summary's document is the results document with its first rows (all of them are in
    the files).
    """
    progress.stage("preprocess", f"{job_name}: calibrating and planning")
    builder = mc.PlanBuilder(portfolio, job_name, positions_per_job=positions_per_job, paths=paths, seed=seed,
                             risk=risk)  # fmt: skip
    mc.calibration_gate(builder, max_calibration_rmse, progress.warn)  # before anything is written
    with rundir.claim(Path(output_dir), "montecarlo", job_name, force=force, input_name=portfolio.source,
                      warn=progress.warn) as run:  # fmt: skip
        doc = _price(builder, job_name, output_dir, progress, workers, fresh, run.earlier is not None)
        run.finish(doc.status)
    return RunSummary("montecarlo", job_name, doc.status, str(output_dir), doc.stored())


def _price(builder: mc.PlanBuilder, job_name: str, output_dir: str, progress: Progress, workers: int | None,
           fresh: bool, resumable: bool) -> Results:  # fmt: skip
    layout = RunLayout.at(output_dir)
    plan = streaming.write_plan(layout, builder)
    shards = plan.shards
    done: set[int] = set() if fresh or not resumable else streaming.complete_shards(layout, plan)
    if done:
        progress.warn(f"resuming {job_name}: {len(done)} of {shards} shards already priced (--fresh starts over)")
    chunks = plan.simulation.chunks
    tasks = [(s, c) for s in range(shards) if s not in done for c in range(chunks)]
    parts: dict[int, list[mc.ChunkSums]] = {}
    finished = len(done)

    def on_result(task: tuple[int, int], part: ShardResult | mc.ChunkSums | None, exc: BaseException | None) -> None:
        nonlocal finished
        shard, _ = task
        if shard in done:  # an earlier chunk of this shard failed
            progress.advance()
            return
        result = None
        if exc is not None:
            msg = f"shard {shard} failed: {type(exc).__name__}: {exc}"
            progress.warn(msg)
            parts.pop(shard, None)
            result = mc.failed_shard(plan, shard, streaming.read_shard_positions(layout, plan, shard), msg)
        elif chunks == 1:
            assert isinstance(part, ShardResult)  # the shard's result, folded in the worker
            result = part
            finished += 1
        else:
            assert isinstance(part, mc.ChunkSums)
            parts.setdefault(shard, []).append(part)
            if len(parts[shard]) == chunks:
                positions = streaming.read_shard_positions(layout, plan, shard)
                result = mc.shard_result(plan, shard, positions, parts.pop(shard))
                finished += 1
        if result is not None:
            done.add(shard)
            layout.write_json(layout.shard(shard), result)
        progress.advance()

    n_workers, note = worker_count(workers, len(tasks), "task")
    if note:
        progress.warn(note)
    progress.stage(
        "price",
        f"Pricing {plan.position_count:,} positions x {plan.simulation.paths:,} paths",
        total=len(tasks),
    )
    try:
        run_pool(tasks, _price_task, n_workers, on_result, _init_worker, (plan, output_dir))
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {finished} of {shards} shards finished and kept in {output_dir}/shards",
            f"run the same command with --job-name {job_name} to resume",
        ) from None
    progress.stage("collate", "Collating")
    if resumable and plan.scenarios is None:  # an earlier run of this job's ladder is not this plan's
        (Path(output_dir) / layout.scenarios_csv).unlink(missing_ok=True)
    return streaming.collate(layout, plan)


def run_render(
    blend: Path,
    *,
    job_name: str,
    output_dir: Path,
    progress: Progress,
    frames_per_job: int,
    workers: int | None = None,
    frames: tuple[int, int] | None = None,
    resolution_percentage: int | None = None,
    samples: int | None = None,
    fresh: bool = False,
    force: bool = False,
    blender: str | None = None,
    allow_missing: bool = False,
) -> RunSummary:
    """Inspect, render the shards on parallel Blender processes, stitch; write frames/, output.mp4, render.json.

    The output directory is claimed as for Monte Carlo (`batchpipe.rundir`). Shards run on threads (each waits on
    its own Blender process); Blender's threads are divided among them. Progress counts frames as Blender saves
    them. A re-run of the same job into the same directory resumes: when its plan is identical (same file bytes,
    scene, frames, size, samples, frames per job, Blender version), the shards whose results are complete and whose
    frames are all valid PNGs are kept and only the others are rendered (unless `fresh`); any other plan first
    removes the files the earlier plan wrote (its frames, logs and shard results, by name), so old frames never mix
    with new ones, and nothing else in the directory is touched. Ctrl-C stops the Blender processes and keeps the
    finished shards. The renderer is `blender` (an executable), else $BATCHPIPE_BLENDER, else the installed `bpy`
    module; a file saved by a newer Blender than the renderer is refused before anything is written, and so is one
    whose dependencies (a linked library, a texture, a cache...) are missing, unless `allow_missing` (a warning).
    """
    progress.stage("preprocess", f"{job_name}: inspecting the scene")
    renderer = rp.renderer(blender)
    plan = rp.preprocess(blend, job_name, frames_per_job, frames=frames, resolution_percentage=resolution_percentage,
                         samples=samples, renderer_version=renderer.version)  # fmt: skip
    # the file's external dependencies: missing ones refuse the run (InputError) before the output is claimed
    require_dependencies(blend, allow_missing=allow_missing, warn=progress.warn)
    for name in ("ffmpeg", "ffprobe"):
        rp.tool(name)
    with rundir.claim(output_dir, "render", job_name, force=force, input_name=str(blend),
                      warn=progress.warn) as run:  # fmt: skip
        doc = _render(plan, blend, job_name, output_dir, progress, workers, fresh, run.earlier is not None, renderer)
        run.finish(doc.status)
    return RunSummary("render", job_name, doc.status, str(output_dir), doc.stored())


def _earlier_plan(output_dir: Path) -> RenderPlan | None:
    """The plan of the render run already in the directory, if it left a readable one."""
    try:
        return rp.read_plan(RunLayout.at(str(output_dir)))
    except (FileNotFoundError, ValueError):
        return None


def _remove_plan_files(output_dir: Path, plan: RenderPlan) -> None:
    """Delete what a render plan wrote, by name: its frames, shard logs and shard results (nothing else)."""
    for f in rp.all_frames(plan):
        (output_dir / RunLayout.frame(f)).unlink(missing_ok=True)
    for shard in range(plan.shards):
        (output_dir / RunLayout.log(shard)).unlink(missing_ok=True)
        (output_dir / RunLayout.shard(shard)).unlink(missing_ok=True)


def _render(plan: RenderPlan, blend: Path, job_name: str, output_dir: Path, progress: Progress,
            workers: int | None, fresh: bool, resumable: bool, renderer: Renderer) -> RenderResult:  # fmt: skip
    out = str(output_dir)
    layout = RunLayout.at(out)
    shards = plan.shards
    frames_dir = output_dir / layout.frames
    logs_dir = output_dir / layout.logs
    earlier = _earlier_plan(output_dir) if resumable else None
    same_plan = earlier is not None and earlier.plan_hash == plan.plan_hash  # else the frames are not its
    kept = rp.rendered_shards(out, plan, rp.frame_check(out, plan)) if same_plan and not fresh else {}
    if kept:
        progress.warn(f"resuming {job_name}: {len(kept)} of {shards} shards already rendered (--fresh starts over)")
    elif earlier is not None:  # start clean: the earlier plan's frames never mix with this plan's
        _remove_plan_files(output_dir, earlier)
    video_file = output_dir / layout.video
    for stale_file in (video_file, rp.partial_video(video_file), output_dir / layout.render_result):  # always rebuilt
        stale_file.unlink(missing_ok=True)
    todo = [s for s in range(shards) if s not in kept]
    for shard in todo:  # what an unfinished attempt left of a shard to render again
        for f in rp.frames_of_shard(plan, shard):
            (output_dir / layout.frame(f)).unlink(missing_ok=True)
        (output_dir / layout.shard(shard)).unlink(missing_ok=True)
    logs_dir.mkdir(parents=True, exist_ok=True)
    layout.write_json(layout.plan, plan)
    n_workers, note = worker_count(workers, len(todo), "shard")
    if note:
        progress.warn(note)
    threads = threads_per_process(default_workers(), n_workers)
    results: list[RenderShardResult | None] = [kept.get(s) for s in range(shards)]
    lock = threading.Lock()
    stopping = threading.Event()
    blenders: list[subprocess.Popen[str]] = []
    to_render = sum(len(rp.frames_of_shard(plan, s)) for s in todo)
    progress.stage("render", f"Rendering {to_render} frames of {plan.scene!r}", total=to_render)

    def started(proc: subprocess.Popen[str]) -> None:
        with lock:
            blenders.append(proc)
            if stopping.is_set():  # Ctrl-C came while this shard was starting
                proc.terminate()

    def one(shard: int) -> RenderShardResult:
        def saved(_frame: int) -> None:
            with lock:
                progress.advance()

        return rp.render_shard(plan, shard, blend, frames_dir, threads, renderer, on_frame=saved,
                               log_file=output_dir / layout.log(shard), on_process=started)  # fmt: skip

    pool = ThreadPoolExecutor(max_workers=n_workers)
    try:
        futures = {pool.submit(one, s): s for s in todo}
        for fut in as_completed(futures):
            shard = futures[fut]
            exc = fut.exception()
            result = rp.failed_shard(plan, shard, f"shard {shard} failed: {exc}") if exc else fut.result()
            results[shard] = result
            layout.write_json(layout.shard(shard), result)
            if result.error:
                progress.warn(result.error)
    except KeyboardInterrupt:
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        with lock:
            running = list(blenders)
        _stop_processes(running)
        pool.shutdown(wait=True)
        done = sum(1 for r in results if r is not None and not r.error)
        raise Interrupted(
            f"interrupted: {done} of {shards} shards rendered and kept in {frames_dir}",
            f"run the same command with --job-name {job_name} to resume",
        ) from None
    finally:
        pool.shutdown(wait=True)
    video = None
    if all(r is not None and not r.missing for r in results):
        progress.stage("stitch", f"Stitching {layout.video}")
        video = rp.stitch(plan, frames_dir, output_dir / layout.video)
    doc = rp.collate(plan, results, video, layout.video if video else None)
    layout.write_json(layout.render_result, doc, indent=2)
    return doc


def _stop_processes(procs: list[subprocess.Popen[str]], grace: float = 5.0) -> None:
    """Terminate Blender processes, then kill those still running after `grace` seconds."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DEFAULT_ROOT = Path("batchpipe-runs")


def run_directory(run: str | None, root: Path = DEFAULT_ROOT) -> Path | None:
    """Where a local run named on the command line lives: a directory path, or a job name under root."""
    if run is None:
        return None
    given = Path(run)
    if rundir.describe(given) is not None:
        return given
    if rundir.describe(root / run) is not None:
        return root / run
    return None


def run_status(directory: Path) -> Doc:
    """A local run's state (`batchpipe.rundir.describe`) and how far it got: shards with a result of the run's
    plan, and for a render the plan's frames on disk."""
    info = rundir.describe(directory)
    if info is None:
        raise InputError(f"{directory}: not a batchpipe run directory")
    layout = RunLayout.at(str(directory))
    extra: Doc
    try:
        if catalog.pipeline(info["pipeline"]).counts_frames:
            render_plan = rp.read_plan(layout)
            results = rp.shard_results(layout, render_plan)
            ok = [r for r in results if r is not None and r.plan_hash == render_plan.plan_hash]
            done = sum(1 for r in ok if not (r.error or r.missing))
            names = {frame_filename(f) for f in rp.all_frames(render_plan)}
            frames = {"rendered": len(names & _names(directory / layout.frames)), "total": len(names)}
            extra = {"shards": render_plan.shards, "shardsDone": done, "frames": frames}
        else:
            plan = streaming.read_plan(layout)
            stored = (streaming.shard_result(layout, plan, s) for s in range(plan.shards))
            done = sum(1 for r in stored if r is not None and r.plan_hash == plan.plan_hash)
            extra = {"shards": plan.shards, "shardsDone": done, "positions": plan.position_count}
    except (FileNotFoundError, ValueError):
        return info | {"shards": None, "shardsDone": None}
    return info | extra


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


def result_document(directory: Path, rows: int = streaming.PREVIEW_ROWS) -> Doc | None:
    """A local run's collated result with its first `rows` positions (Monte Carlo), or render.json; None before
    collation. results.json is read line by line (it has one position per line), never whole."""
    info = rundir.describe(directory)
    if info is None:
        raise InputError(f"{directory}: not a batchpipe run directory")
    described = catalog.pipeline(info["pipeline"])
    try:
        summary = RunLayout.at(str(directory)).read_json(described.status_file)
    except (FileNotFoundError, ValueError):
        return None
    if described.status_file == described.result_file:  # a small document: it is the result
        return summary
    try:  # a large one: its summary and first rows
        preview: list[Doc] = []
        with open(directory / described.result_file, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith('    {"index"'):
                    preview.append(json.loads(line.strip().rstrip(",")))
                    if len(preview) >= rows:
                        break
    except (FileNotFoundError, ValueError):
        return None
    return summary | {"positions": preview}

"""The AWS backend: the local engine's functions (`run_montecarlo`, `run_render`, `run_status`) and progress events
over a deployed stack.

A run uploads its (already validated) input, starts the pipeline's state machine with the workshop's payload and
follows the execution: `stage()` as it enters a state (the same stage again updates its line: the array's children
by status, a render's frames in S3), `advance()` as children (a render: frames) finish, `warn()` once for each
stuck-job diagnosis. The AWS calls themselves are in `batchpipe.aws`; nothing here imports boto3.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchpipe import catalog
from batchpipe.aws.handlers import STAGES as PIPELINE_STAGES
from batchpipe.backends.summary import RunSummary
from batchpipe.errors import BatchpipeError, InputError
from batchpipe.progress import Progress

Doc = dict[str, Any]
POLL_SECONDS = 2.0
# The stages whose Batch jobs a run has, by their job names' suffix (RUN-price): `logs --stage`.
LOG_STAGES = tuple(dict.fromkeys(stage for stages in PIPELINE_STAGES.values() for stage in stages))


class Detached(BatchpipeError):
    """The user stopped watching (Ctrl-C): the run goes on in AWS."""

    exit_code = 130


@dataclass
class Target:
    """The stack a command works on; its outputs are looked up once, on first use."""

    stack_name: str = "batchpipe"
    region: str | None = None
    profile: str | None = None
    _outputs: Any = field(default=None, repr=False, compare=False)

    def connect(self) -> None:
        from batchpipe.aws import clients

        clients.configure(region=self.region, profile=self.profile)

    @property
    def outputs(self) -> Any:
        """The stack's `StackOutputs` (an InputError saying what to do when there is no stack or no account)."""
        if self._outputs is None:
            from batchpipe.aws import stack

            self.connect()
            self._outputs = stack.outputs(self.stack_name)
        return self._outputs


def run_montecarlo(
    portfolio: Path,
    *,
    job_name: str,
    target: Target,
    progress: Progress,
    positions_per_job: int | None = None,
    upload: bytes | None = None,
    resume: str | None = None,
    wait: bool = True,
    poll: float = POLL_SECONDS,
) -> RunSummary:
    """Upload the portfolio (`upload`: its bytes with the simulation overrides written in) and run the Monte Carlo
    state machine; with `resume`, run RUN again over its own output instead."""
    return _run("montecarlo", portfolio, job_name, target, progress, upload, resume, wait, poll,
                positionsPerJob=positions_per_job)  # fmt: skip


def run_render(
    blend: Path,
    *,
    job_name: str,
    target: Target,
    progress: Progress,
    frames_per_job: int,
    frames: tuple[int, int] | None = None,
    resolution_percentage: int | None = None,
    samples: int | None = None,
    resume: str | None = None,
    wait: bool = True,
    poll: float = POLL_SECONDS,
    allow_missing: bool = False,
) -> RunSummary:
    """Pack the .blend with every file it uses (a BAT pack: linked libraries, textures, caches, paths rewritten to
    stay inside it), upload the pack and run the render state machine, whose jobs render from it, so AWS renders
    the scene a local run renders; with `resume`, run RUN again over its own output (the same file packs to the same
    bytes). `frames`, `resolution_percentage` and `samples` travel in the payload to the preprocess job, which
    writes them into the plan as a local run does. A missing dependency refuses the run before anything is
    uploaded, unless `allow_missing`."""
    from batchpipe.rendering.pack import INFO_FILE, pack_blend

    span = f"{frames[0]}-{frames[1]}" if frames is not None else None
    with tempfile.TemporaryDirectory(prefix="batchpipe-pack-") as tmp:
        packed = Path(tmp) / f"{blend.stem}.zip"
        manifest = pack_blend(blend, packed, allow_missing=allow_missing, warn=progress.warn, name=str(blend))
        uses = [f for f in manifest.files if f.path not in (manifest.blend, INFO_FILE)]
        progress.stage("upload", f"Uploading {blend.name} packed with the {len(uses)} files it uses "
                       f"({(manifest.zip_size or 0) / 1e6:.1f} MB)")  # fmt: skip
        forms = (packed.read_bytes(), blend.read_bytes()) if resume is not None else None  # a run of either upload
        return _run("render", packed, job_name, target, progress, None, resume, wait, poll, forms=forms,
                    framesPerJob=frames_per_job, frames=span, resolutionPercentage=resolution_percentage,
                    samples=samples)  # fmt: skip


def _outputs_or_local_hint(target: Target) -> Any:
    try:
        return target.outputs
    except InputError as exc:  # no credentials, region or stack: the local engine needs none of them
        local = "or add --local to run on this machine"
        raise InputError(exc.message, f"{exc.hint}; {local}" if exc.hint else local) from None


def _run(pipeline: str, input_file: Path, job_name: str, target: Target, progress: Progress, upload: bytes | None,
         resume: str | None, wait: bool, poll: float, forms: tuple[bytes, ...] | None = None,
         **extra: Any) -> RunSummary:  # fmt: skip
    from batchpipe.aws import runs, sfn

    out = _outputs_or_local_hint(target)
    execution = None
    if resume is not None:
        expected = forms or (upload if upload is not None else input_file.read_bytes())
        arn = runs.resume(out, resume, expected, pipeline)
        execution = arn.rsplit(":", 1)[1]
        job_name = sfn.job_of(sfn.find(out, arn)[1])
    elif upload is not None:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / input_file.name
            copy.write_bytes(upload)
            arn = runs.start(pipeline, out, job_name, copy, **extra)
    else:
        arn = runs.start(pipeline, out, job_name, input_file, **extra)
    if not wait:
        return RunSummary(pipeline, job_name, "RUNNING", location(out, job_name), execution_arn=arn)
    return follow(target, job_name, progress, execution=execution, poll=poll)


def location(outputs: Any, job_name: str) -> str:
    from batchpipe.aws.objects import run_prefix

    return f"s3://{outputs.bucket}/{run_prefix(job_name)}"


def follow(
    target: Target, job_name: str, progress: Progress, *, execution: str | None = None, poll: float = POLL_SECONDS
) -> RunSummary:
    """Follow a run until its execution ends, then read its collated result. Ctrl-C stops watching, not the run."""
    from batchpipe.aws import objects

    out = target.outputs
    frame_names: dict[str, set[str]] = {}
    stage, shown, warned = None, 0, set()
    try:
        while True:
            doc = run_status(out, execution or job_name, frame_names, children=False)
            now = doc["stages"][-1] if doc["stages"] else "starting"
            text, total, completed = f"{job_name}: {now}", None, 0
            if doc["arrays"]:  # the array's children by status, the bar counting finished children
                a = doc["arrays"][-1]
                counts = a["statusSummary"]
                text += " (" + ", ".join(f"{k} {v}" for k, v in counts.items() if v) + ")"
                total, completed = a["size"], counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0)
            if doc.get("frames"):  # a render: the bar counts frames, finer than children
                text += f" frames {doc['frames']['rendered']}/{doc['frames']['total']}"
                total, completed = doc["frames"]["total"], doc["frames"]["rendered"]
            if now != stage:
                stage, shown = now, 0
            progress.stage(now, text, total=total)
            if completed > shown:
                progress.advance(completed - shown)
                shown = completed
            for problem in doc["stuck"]:
                if (same := re.sub(r"RUNNABLE for \d+ min", "RUNNABLE", problem)) not in warned:  # once, not a minute
                    warned.add(same)
                    progress.warn(problem)
            if doc["status"] != "RUNNING":
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        raise Detached(
            "stopped watching; the run goes on",
            f"watch again: batchpipe status {job_name} --watch --stack-name {target.stack_name}",
        ) from None
    result = objects.result_document(out, doc["pipeline"], job_name)
    status = doc["status"] if doc["status"] != "SUCCEEDED" or result is None else str(result.get("status"))
    return RunSummary(doc["pipeline"], job_name, status, location(out, job_name), result, doc["executionArn"])


def watch(target: Target, run: str, progress: Progress, poll: float = POLL_SECONDS) -> RunSummary:
    """`follow` a run named by job name or execution ARN (a resumed run: its latest execution)."""
    from batchpipe.aws import sfn

    _, desc = sfn.find(target.outputs, run)
    return follow(target, sfn.job_of(desc), progress, execution=desc["name"], poll=poll)


def _duration(desc: Doc) -> str:
    end = desc.get("stopDate") or datetime.now(UTC)
    seconds = int((end - desc["startDate"]).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s")  # fmt: skip


def frame_progress(outputs: Any, job_name: str, expected: dict[str, set[str]]) -> dict[str, int] | None:
    """A render run's frames in S3 out of the plan's total, once the plan exists: one paginated listing of the
    frames/ prefix. `expected` caches the plan's frame names by job (a tail reads the plan once)."""
    from batchpipe.aws import objects
    from batchpipe.rendering.frames import FrameRange, frame_filename

    if job_name not in expected:
        plan = objects.plan_document(outputs, job_name)
        if plan is None:
            return None
        frames = FrameRange(int(plan["frameStart"]), int(plan["frameEnd"]), int(plan["frameStep"])).frames()
        expected[job_name] = {frame_filename(f) for f in frames}
    names = expected[job_name]
    return {"rendered": len(names & objects.frames_in_s3(outputs, job_name)), "total": len(names)}


def run_status(outputs: Any, run: str, frame_names: dict[str, set[str]] | None = None, *,
               children: bool = True, cost: bool = False) -> Doc:  # fmt: skip
    """A run's execution status, stages, array progress, failed jobs, and for a render its frames in S3.

    `children`: the failed children of its arrays too, the first 100 of each (`status`; the tail's polls leave
    them: their statusSummary counts them). `cost`: "usage", what its jobs used (`batchpipe.usage`: vCPU-seconds
    of every attempt, an estimated cost, Spot interruptions apart from application failures), which describes
    every child of its arrays."""
    from batchpipe.aws import batch, runs, sfn

    pipeline, desc = sfn.find(outputs, run)
    stages = runs.stages(desc["executionArn"])
    job = sfn.job_of(desc)
    jobs = batch.jobs_of(outputs, job, desc["startDate"].timestamp() * 1000)
    arrays = [j for j in jobs if batch.is_array(j)]
    listed = batch.failed_children(arrays) if children else []
    failed_jobs = [j for j in jobs if j["status"] == "FAILED" and not batch.is_array(j)] + listed
    failed = [
        {
            "job": j["jobName"],
            "index": batch.array_index(j),
            "attempts": len(j.get("attempts") or []),
            "statusReason": j.get("statusReason"),
            "logStream": (j.get("container") or {}).get("logStreamName"),
        }
        for j in {j["jobId"]: j for j in failed_jobs}.values()
    ]
    unshown = max(0, sum(batch.children_by_status(a).get("FAILED", 0) for a in arrays) - len(listed))
    stuck = batch.runnable_problems(outputs, jobs)
    counts = catalog.pipeline(pipeline).counts_frames
    frames = frame_progress(outputs, job, {} if frame_names is None else frame_names) if counts else None
    return {
        "jobName": job,
        "execution": desc["name"],
        "pipeline": pipeline,
        "executionArn": desc["executionArn"],
        "status": desc["status"],
        "started": desc["startDate"].isoformat(),
        "duration": _duration(desc),
        "stages": stages,
        "arrays": [
            {
                "job": a["jobName"],
                "size": a["arrayProperties"]["size"],
                "statusSummary": a["arrayProperties"].get("statusSummary", {}),
            }
            for a in arrays
        ],
        "failedJobs": failed,
        **({"failedChildrenNotShown": unshown} if children else {}),
        **({"usage": _usage(jobs)} if cost else {}),
        "stuck": stuck,
        **({"frames": frames} if frames is not None else {}),
    }


def _usage(jobs: list[Doc]) -> Doc:
    from batchpipe.aws import batch
    from batchpipe.usage import usage

    every = [j for j in jobs if not batch.is_array(j)]
    every += [child for parent in jobs if batch.is_array(parent) for child in batch.every_child(parent)]
    return usage(list({j["jobId"]: j for j in every}.values()), int(time.time() * 1000))


def recent_runs(target: Target) -> list[Doc]:
    """Recent runs of both pipelines in the stack, newest first."""
    from batchpipe.aws import sfn

    return [{"jobName": e["name"], "pipeline": p, "status": e["status"], "started": e["startDate"].isoformat(),
             "duration": _duration(e)} for p, e in sfn.executions(target.outputs)]  # fmt: skip


def result_document(target: Target, run: str) -> tuple[str, str, Doc | None, str]:
    """(pipeline, job name, collated result or None, execution status) of a run, by job name or execution ARN."""
    from batchpipe.aws import objects, sfn

    pipeline, desc = sfn.find(target.outputs, run)
    job = sfn.job_of(desc)
    return pipeline, job, objects.result_document(target.outputs, pipeline, job), str(desc["status"])


def download(target: Target, pipeline: str, job_name: str, directory: Path) -> list[Path]:
    """The run's results (Monte Carlo: results.json, results.csv; render: render.json and, when there is one, the
    video) into `directory`, every target checked to stay inside it."""
    from batchpipe.aws import objects

    described = catalog.pipeline(pipeline)
    return objects.download(target.outputs, job_name, list(described.downloads), directory,
                         optional=described.optional_downloads)  # fmt: skip


def video_link(target: Target, job_name: str) -> tuple[str, str]:
    """(s3:// URI, a presigned link valid for an hour) of a render run's video."""
    from batchpipe.aws import objects

    return objects.video_link(target.outputs, job_name)


def _label(job: Doc) -> str:
    from batchpipe.aws import batch

    index = batch.array_index(job)
    return str(job["jobName"]) + ("" if index is None else f" shard {index}")


def _log_jobs(outputs: Any, pipeline: str, job: str, since: float, shard: int | None, stage: str | None,
              note: Callable[[str], None], noted: set[str]) -> list[Doc]:  # fmt: skip
    """The jobs whose logs `logs` shows, failed first, then in stage order: with `shard`, that array child (a run
    of one shard: its single job); otherwise every single job and each array's failed children (the first 100)."""
    from batchpipe.aws import batch

    order = {f"{job}-{name}": n for n, name in enumerate(PIPELINE_STAGES[pipeline])}
    jobs = [j for j in batch.jobs_of(outputs, job, since) if stage is None or j["jobName"] == f"{job}-{stage}"]
    chosen: list[Doc] = []
    for j in jobs:
        if batch.is_array(j):
            size = j["arrayProperties"]["size"]
            if shard is not None and shard >= size:
                raise InputError(f"run '{job}' has {size} shards: --shard is 0 to {size - 1}")
            if shard is not None:
                chosen += batch.describe([f"{j['jobId']}:{shard}"], f"reading shard {shard} of {j['jobName']}")
                continue
            chosen += batch.failed_children([j])
            if j["jobName"] not in noted:
                noted.add(j["jobName"])
                note(f"{j['jobName']}: an array of {size} children; shown: its failed ones; one child: --shard N")
        elif shard is None or (shard == 0 and order.get(j["jobName"]) == 1):  # a single shard is shard 0
            chosen.append(j)
    rank = {j["jobId"]: n for n, j in enumerate(chosen)}
    return sorted({j["jobId"]: j for j in chosen}.values(),
                  key=lambda j: (j["status"] != "FAILED", order.get(j["jobName"], 9), batch.array_index(j) or 0,
                                 rank[j["jobId"]]))  # fmt: skip


def logs(target: Target, run: str, shard: int | None = None, stage: str | None = None, follow: bool = False,
         out: Callable[[str], None] = print, note: Callable[[str], None] | None = None,
         poll: float = POLL_SECONDS) -> int:  # fmt: skip
    """Print the CloudWatch log events of a run's Batch jobs through `out` (a header line `==> JOB ... <==` before
    each attempt's stream), failed jobs first; `shard`: that array child only; `stage`: that stage's jobs only.
    `follow`: keep polling for new events until the job (with `shard` or `stage`) or else the run ends. `note` gets
    what is not a log line (default: `out`). Returns how many events were printed."""
    from batchpipe.aws import batch, sfn
    from batchpipe.aws import logs as cloudwatch

    say = note or out
    outputs = target.outputs
    pipeline, desc = sfn.find(outputs, run)
    job = sfn.job_of(desc)
    if stage is not None and stage not in PIPELINE_STAGES[pipeline]:
        stages = ", ".join(PIPELINE_STAGES[pipeline])
        raise InputError(f"a {pipeline} run has no stage '{stage}': its stages are {stages}")
    since = desc["startDate"].timestamp() * 1000
    positions: dict[tuple[str, str], str] = {}
    definitions: dict[str, str] = {}
    noted: set[str] = set()
    shown, printed, current = set(), 0, None
    try:
        while True:
            status = desc["status"]
            jobs = _log_jobs(outputs, pipeline, job, since, shard, stage, say, noted)
            for j in jobs:
                group, names = cloudwatch.group_of(j, definitions), cloudwatch.streams(j)
                state = j["status"] + (f": {j['statusReason']}" if j.get("statusReason") else "")
                if not names and j["jobId"] not in shown and (not follow or j["status"] in batch.FINISHED):
                    shown.add(j["jobId"])
                    say(f"==> {_label(j)}: no log stream ({state}) <==")
                for attempt, stream in enumerate(names, 1):
                    for event in cloudwatch.events(group, stream, positions):
                        if current != (group, stream):
                            current = (group, stream)
                            out(f"==> {_label(j)}, attempt {attempt} of {len(names)} ({state}) <==")
                        out(event["message"].rstrip("\n"))
                        printed += 1
            if not follow:
                return printed
            chosen_ended = (shard is not None or stage is not None) and jobs and all(
                j["status"] in batch.FINISHED for j in jobs)  # fmt: skip
            if status != "RUNNING" or chosen_ended:  # what was read after it ended was the last of it
                return printed
            time.sleep(poll)
            desc = sfn.describe(desc["executionArn"], f"looking up run '{run}'") or desc
    except KeyboardInterrupt:
        raise Detached("stopped following the logs; the run goes on") from None


def unreachable(exc: BaseException) -> BatchpipeError | None:
    """An AWS endpoint that cannot be reached or is not AWS (a connection refused or timed out, a name that does
    not resolve, a malformed region, an answer that is not AWS's) as one line naming it; None for anything else."""
    from batchpipe.aws import clients

    return clients.unreachable(exc)


def cancel(target: Target, run: str) -> tuple[str, int]:
    from batchpipe.aws import runs

    return runs.cancel(target.outputs, run)

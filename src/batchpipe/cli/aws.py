"""The AWS commands: deploy, status, results, cancel, destroy (and `run` without --local, in cli/run.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from batchpipe.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def aws_options(fn: F) -> F:
    """--stack-name, --region, --profile; boto3 resolves everything else (credentials, AWS_ENDPOINT_URL)."""

    def configure(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        ctx.ensure_object(dict)[_param.name] = value
        return value

    for option in reversed(
        [
            click.option(
                "--stack-name",
                envvar="BATCHPIPE_STACK",
                default="batchpipe",
                show_default=True,
                help="CloudFormation stack (env BATCHPIPE_STACK).",
            ),
            click.option("--region", help="AWS region (default: boto3's: AWS_DEFAULT_REGION, config)."),
            click.option("--profile", help="AWS profile (default: boto3's: AWS_PROFILE, default)."),
        ]
    ):
        fn = option(fn)
    return fn


def connect(region: str | None, profile: str | None) -> None:
    from batchpipe.aws import clients

    clients.configure(region=region, profile=profile)


def _event_printer(console: Any) -> Callable[[dict[str, Any]], None]:
    def show(event: dict[str, Any]) -> None:
        status = event["ResourceStatus"]
        colour = "red" if "FAILED" in status else "green" if status.endswith("COMPLETE") else "yellow"
        reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
        console.print(f"{event['Timestamp']:%H:%M:%S} [{colour}]{status:<28}[/] {event['LogicalResourceId']}{reason}")

    return show


@click.command()
@aws_options
@click.option("--no-build", is_flag=True, help="Do not build and push the container images (no docker needed).")
@click.option("--max-vcpus", type=click.IntRange(min=1), help="Most vCPUs the compute environments may run.")
@click.option("--image-tag", help="Tag the images with this instead of their content hash.")
@click.option("--vpc-id", help="Run Batch in this VPC (default: the stack creates one).")
@click.option("--subnet-ids", help="Comma-separated subnets of --vpc-id for Batch instances.")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
def deploy(stack_name: str, region: str | None, profile: str | None, no_build: bool, max_vcpus: int | None,
           image_tag: str | None, vpc_id: str | None, subnet_ids: str | None, dry_run: bool) -> None:  # fmt: skip
    """Create or update the stack, then build and push both images and point the job definitions at them.

    \b
    Example:
      batchpipe deploy --region eu-west-1 --max-vcpus 64
    """
    from rich.console import Console

    from batchpipe.aws import images, stack
    from batchpipe.aws.template import REPO_ROOT, build_template

    connect(region, profile)
    console = Console(stderr=True)
    template = build_template()
    params = {"MaxvCpus": str(max_vcpus)} if max_vcpus else {}
    if bool(vpc_id) != bool(subnet_ids):
        raise InputError("--vpc-id and --subnet-ids go together")
    if vpc_id and subnet_ids:
        params |= {"VpcId": vpc_id, "SubnetIds": subnet_ids}
    if not no_build:
        images.docker()  # fail before touching the stack when docker is missing
    if dry_run:
        changes = stack.planned_changes(stack_name, template, params)
        click.echo("\n".join(changes) if changes else f"stack '{stack_name}' is up to date: nothing would change")
        return
    first = stack.deploy(stack_name, template, params, _event_printer(console))
    second = "UNCHANGED"
    if not no_build:
        out = stack.outputs(stack_name)
        repos = {"pricer": out.pricer_repository_uri, "render": out.render_repository_uri}
        built = images.build_and_push(REPO_ROOT, repos, console.print, tag=image_tag)
        wanted = {"PricerImage": built["pricer"], "RenderImage": built["render"]}
        if any(stack.parameter(stack_name, k) != v for k, v in wanted.items()):
            second = stack.deploy(stack_name, template, params | wanted, _event_printer(console))
    if first == "UNCHANGED" and second == "UNCHANGED":
        click.echo(f"stack '{stack_name}' is up to date: nothing changed")
    else:
        click.echo(f"stack '{stack_name}' {first.lower() if first != 'UNCHANGED' else 'updated'}")


def _duration(desc: dict[str, Any]) -> str:
    end = desc.get("stopDate") or datetime.now(UTC)
    seconds = int((end - desc["startDate"]).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s")  # fmt: skip


def frame_progress(outputs: Any, job_name: str, expected: dict[str, set[str]]) -> dict[str, int] | None:
    """A render run's frames in S3 out of the plan's total, once the plan exists: one paginated listing of the
    frames/ prefix. `expected` caches the plan's frame names by job (a tail reads the plan once)."""
    from batchpipe.aws import runs
    from batchpipe.rendering.frames import FrameRange, frame_filename

    if job_name not in expected:
        plan = runs.plan_document(outputs, job_name)
        if plan is None:
            return None
        frames = FrameRange(int(plan["frameStart"]), int(plan["frameEnd"]), int(plan["frameStep"])).frames()
        expected[job_name] = {frame_filename(f) for f in frames}
    names = expected[job_name]
    return {"rendered": len(names & runs.frames_in_s3(outputs, job_name)), "total": len(names)}


def run_status(outputs: Any, run: str, frame_names: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """A run's execution status, stages, array progress, failed children, and for a render its frames in S3."""
    from batchpipe.aws import runs
    from batchpipe.aws.clients import client

    pipeline, desc = runs.find(outputs, run)
    history = client("stepfunctions").get_execution_history(executionArn=desc["executionArn"], maxResults=1000)
    stages = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]
    job = runs.job_of(desc)
    jobs = [j for j in runs.batch_jobs(outputs, job) if j.get("createdAt", 0) >= desc["startDate"].timestamp() * 1000]
    arrays = [j for j in jobs if "size" in (j.get("arrayProperties") or {})]
    failed = [
        {
            "job": j["jobName"],
            "index": runs.array_index(j),
            "attempts": len(j.get("attempts") or []),
            "statusReason": j.get("statusReason"),
            "logStream": (j.get("container") or {}).get("logStreamName"),
        }
        for j in jobs
        if j["status"] == "FAILED"
    ]
    stuck = runs.runnable_problems(outputs, jobs)
    frames = frame_progress(outputs, job, {} if frame_names is None else frame_names) if pipeline == "render" else None
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
        "stuck": stuck,
        **({"frames": frames} if frames is not None else {}),
    }


@click.command()
@click.argument("run", required=False)
@aws_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--watch", is_flag=True, help="Follow RUN live until it ends, then show its results.")
@click.option("--local", is_flag=True, help="Runs on this machine: RUN is a run directory, a job name under "
              "./batchpipe-runs/, or a directory of runs to list (default ./batchpipe-runs/).")  # fmt: skip
def status(run: str | None, stack_name: str, region: str | None, profile: str | None, as_json: bool,
           watch: bool, local: bool) -> None:  # fmt: skip
    """Recent runs of both pipelines, or one run (execution ARN or job name) in detail.

    \b
    Example:
      batchpipe status
      batchpipe status MCAutocallable --watch
      batchpipe status --local
    """
    from rich.console import Console
    from rich.table import Table

    if local:
        from batchpipe.cli.local import local_status

        local_status(run, as_json, watch)
        return
    from batchpipe.aws import runs, stack

    connect(region, profile)
    out = stack.outputs(stack_name)
    if run is None:
        rows = [{"jobName": e["name"], "pipeline": p, "status": e["status"], "started": e["startDate"].isoformat(),
                 "duration": _duration(e)} for p, e in runs.executions(out)]  # fmt: skip
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"Recent runs in stack '{stack_name}'", title_justify="left")
        for col in ("name", "pipeline", "status", "started", "duration"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["jobName"], r["pipeline"], r["status"], r["started"][:19].replace("T", " "), r["duration"])
        Console().print(table)
        return
    if watch:
        tail(out, run, stack_name, as_json)
        return
    doc = run_status(out, run)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    console = Console()
    console.print(f"[bold]{doc['jobName']}[/] ({doc['pipeline']}): {doc['status']}, started {doc['started'][:19]}, "
                  f"{doc['duration']}")  # fmt: skip
    console.print("stages: " + " > ".join(doc["stages"]))
    for a in doc["arrays"]:
        summary = ", ".join(f"{k} {v}" for k, v in a["statusSummary"].items() if v)
        console.print(f"array {a['job']}: {a['size']} children: {summary}")
    if doc.get("frames"):
        console.print(f"frames: {doc['frames']['rendered']} of {doc['frames']['total']} in S3")
    for problem in doc["stuck"]:
        console.print(f"[yellow]{problem}[/]")
    for f in doc["failedJobs"]:
        console.print(f"[red]failed[/] {f['job']} index {f['index']}, {f['attempts']} attempts: {f['statusReason']} "
                      f"(log stream {f['logStream']})")  # fmt: skip


def _safe_target(root: Path, key: str, prefix: str) -> Path:
    relative = key[len(prefix) :].lstrip("/")
    target = (root / relative).resolve()
    if not relative or not target.is_relative_to(root.resolve()):
        raise InputError(f"refusing to write object '{key}' outside {root}")
    return target


@click.command()
@click.argument("run")
@aws_options
@click.option("--download", "download", type=click.Path(file_okay=False, path_type=Path),
              help="Download the run's results (and video) into this directory.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result document.")
@click.option("--local", is_flag=True, help="A run on this machine: a run directory or a job name under "
              "./batchpipe-runs/.")  # fmt: skip
def results(run: str, stack_name: str, region: str | None, profile: str | None, download: Path | None,
            as_json: bool, local: bool) -> None:  # fmt: skip
    """The collated results of a run (the video's location and a link for render).

    \b
    Example:
      batchpipe results MCAutocallable --download ./mc
      batchpipe results autocallable-20261201-101500-3f2a --local
    """
    from rich.console import Console

    if local:
        from batchpipe.cli.local import local_results

        if download is not None:
            raise InputError("--download is for AWS runs: a local run's files are in its directory")
        local_results(run, as_json)
        return
    from batchpipe.aws import runs, stack
    from batchpipe.aws.clients import client
    from batchpipe.ui import montecarlo_tables, render_summary

    connect(region, profile)
    out = stack.outputs(stack_name)
    pipeline, desc = runs.find(out, run)
    doc = runs.result_document(out, pipeline, runs.job_of(desc))
    if doc is None:
        raise InputError(f"run '{desc['name']}' has no collated results yet ({desc['status']}): "
                         f"`batchpipe status {desc['name']}` shows where it is")  # fmt: skip
    prefix = runs.run_prefix(runs.job_of(desc))
    if download is not None:
        names = ["results.json", "results.csv"] if pipeline == "montecarlo" else ["render.json", "output.mp4"]
        for name in names:
            key = f"{prefix}/{name}"
            target = _safe_target(download, key, prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                client("s3").download_file(out.bucket, key, str(target))
            except Exception as exc:  # the video is absent for a partial render
                if name != "output.mp4":
                    raise InputError(f"cannot download s3://{out.bucket}/{key}: {exc}") from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    elif pipeline == "montecarlo":
        montecarlo_tables(doc, Console())
    else:
        render_summary(doc, f"s3://{out.bucket}/{prefix}", Console())
        if doc.get("video"):
            url = client("s3").generate_presigned_url(
                "get_object", Params={"Bucket": out.bucket, "Key": f"{prefix}/output.mp4"}, ExpiresIn=3600
            )
            click.echo(f"video: s3://{out.bucket}/{prefix}/output.mp4\nlink (1 hour): {url}")


@click.command()
@click.argument("run")
@aws_options
def cancel(run: str, stack_name: str, region: str | None, profile: str | None) -> None:
    """Stop a run: its execution and every unfinished Batch job it started.

    \b
    Example:
      batchpipe cancel MCAutocallable
    """
    from batchpipe.aws import runs, stack

    connect(region, profile)
    arn, terminated = runs.cancel(stack.outputs(stack_name), run)
    click.echo(f"stopped {arn}; terminated {terminated} Batch job{'s' if terminated != 1 else ''}")


@click.command()
@aws_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def destroy(stack_name: str, region: str | None, profile: str | None, yes: bool) -> None:
    """Empty the bucket (every version) and the image repositories, then delete the stack.

    \b
    Example:
      batchpipe destroy --yes
    """
    from rich.console import Console

    from batchpipe.aws import stack

    connect(region, profile)
    if not yes and not click.confirm(f"Delete stack '{stack_name}' with all its runs' data and images?"):
        raise InputError("not confirmed: nothing deleted")
    stack.destroy(stack_name, _event_printer(Console(stderr=True)))
    click.echo(f"stack '{stack_name}' deleted")


COMMANDS = [deploy, status, results, cancel, destroy]


def start_run(pipeline: str, job_name: str, input_file: Path, stack_name: str, region: str | None,
              profile: str | None, no_wait: bool, as_json: bool, upload: bytes | None = None,
              resume: str | None = None, **extra: Any) -> None:  # fmt: skip
    """`run ... ` without --local: the input is already validated; upload it, start, then tail or print the ARN."""
    import tempfile

    from batchpipe.aws import runs, stack

    try:
        connect(region, profile)
        out = stack.outputs(stack_name)
    except InputError as exc:  # no credentials, region or stack: the local engine needs none of them
        local = "or add --local to run on this machine"
        raise InputError(exc.message, f"{exc.hint}; {local}" if exc.hint else local) from None
    if resume is not None:
        arn = runs.resume(out, resume, upload if upload is not None else input_file.read_bytes(), pipeline)
        execution = arn.rsplit(":", 1)[1]
        job_name = runs.job_of(runs.find(out, arn)[1])
        if no_wait:
            click.echo(json.dumps({"jobName": job_name, "executionArn": arn}) if as_json else arn)
            return
        tail(out, job_name, stack_name, as_json, execution=execution)
        return
    if upload is not None:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / input_file.name
            copy.write_bytes(upload)
            arn = runs.start(pipeline, out, job_name, copy, **extra)
    else:
        arn = runs.start(pipeline, out, job_name, input_file, **extra)
    if no_wait:
        click.echo(json.dumps({"jobName": job_name, "executionArn": arn}) if as_json else arn)
        return
    tail(out, job_name, stack_name, as_json)


def tail(out: Any, job_name: str, stack_name: str, as_json: bool, poll: float = 2.0,
         execution: str | None = None) -> None:  # fmt: skip
    """Follow a run: current stage, then the array's children by status (a render: and its frames in S3, counted
    by one paginated listing per poll), then its results."""
    import sys
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from batchpipe.aws import runs
    from batchpipe.ui import montecarlo_tables, render_summary

    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=False)  # fmt: skip
    task = bar.add_task(f"{job_name}: starting", total=None)
    frame_names: dict[str, set[str]] = {}
    try:
        with bar:
            while True:
                doc = run_status(out, execution or job_name, frame_names)
                stage = doc["stages"][-1] if doc["stages"] else "starting"
                text = f"{job_name}: {stage}"
                if doc["arrays"]:  # the array's children by status, as a bar of finished children
                    a = doc["arrays"][-1]
                    counts = a["statusSummary"]
                    text += " (" + ", ".join(f"{k} {v}" for k, v in counts.items() if v) + ")"
                    finished = counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0)
                    bar.update(task, total=a["size"], completed=finished)
                if doc.get("frames"):  # a render: the bar counts frames, finer than children
                    text += f" frames {doc['frames']['rendered']}/{doc['frames']['total']}"
                    bar.update(task, total=doc["frames"]["total"], completed=doc["frames"]["rendered"])
                if doc["stuck"]:
                    text += f" - {doc['stuck'][0]}"
                bar.update(task, description=text)
                if doc["status"] != "RUNNING":
                    break
                time.sleep(poll)
    except KeyboardInterrupt:
        console.print(f"stopped watching; the run goes on. Watch again: batchpipe status {job_name} --watch "
                      f"--stack-name {stack_name}")  # fmt: skip
        sys.exit(130)
    result = runs.result_document(out, doc["pipeline"], job_name)
    if as_json:
        click.echo(json.dumps(result if result is not None else doc, indent=2))
    elif result is not None:
        if doc["pipeline"] == "montecarlo":
            montecarlo_tables(result, Console())
        else:
            render_summary(result, f"s3://{out.bucket}/{runs.run_prefix(job_name)}", Console())
    if doc["status"] != "SUCCEEDED":
        console.print(f"[red]{doc['status']}[/]: `batchpipe status {job_name}` shows the stages and failed jobs")
        sys.exit(1)

"""The AWS commands: deploy, status, results, logs, cancel, destroy (and `run` without --local, in cli/run.py): thin
shells over `batchpipe.backends.aws` and, for deploy (a plan: `batchpipe.deploy`, `batchpipe.aws.deploy`) and
destroy, `batchpipe.aws`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batchpipe.backends.aws import LOG_STAGES, Target
from batchpipe.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def aws_options(fn: F) -> F:
    """--stack-name, --region, --profile, handed to the command as one `target` (boto3 resolves everything else:
    credentials, AWS_ENDPOINT_URL; the stack's outputs are looked up on first use)."""

    @functools.wraps(fn)
    def with_target(*args: Any, stack_name: str, region: str | None, profile: str | None, **kwargs: Any) -> Any:
        return fn(*args, target=Target(stack_name, region, profile), **kwargs)

    command: Any = with_target
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
        command = option(command)
    return command  # type: ignore[no-any-return]


def _event_printer(console: Any) -> Callable[[dict[str, Any]], None]:
    def show(event: dict[str, Any]) -> None:
        status = event["ResourceStatus"]
        colour = "red" if "FAILED" in status else "green" if status.endswith("COMPLETE") else "yellow"
        reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
        console.print(f"{event['Timestamp']:%H:%M:%S} [{colour}]{status:<28}[/] {event['LogicalResourceId']}{reason}")

    return show


@click.command()
@aws_options
@click.option("--no-build", is_flag=True, help="Do not build and push the container images (no builder needed; "
              "`run` refuses until a deploy has pushed them).")  # fmt: skip
@click.option(
    "--builder",
    type=click.Choice(["docker", "podman", "buildah"]),
    help="Build and push the images with this (default: the first of docker, podman, buildah on PATH).",
)
@click.option(
    "--max-vcpus",
    type=click.IntRange(min=1),
    help="Most vCPUs each compute environment runs at once (Spot: the shards; On-Demand: the stages and the "
    "shards Spot could not place, after the Spot ones): a run's shards never hold more. 256 on a new stack; an "
    "update keeps the deployed value.",
)
@click.option("--image-tag", help="Tag the images with this instead of their content hash.")
@click.option("--vpc-id", help="Run Batch in this VPC (default: the stack creates one).")
@click.option("--subnet-ids", help="Comma-separated subnets of --vpc-id for Batch instances.")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
def deploy(target: Target, no_build: bool, builder: str | None, max_vcpus: int | None, image_tag: str | None,
           vpc_id: str | None, subnet_ids: str | None, dry_run: bool) -> None:  # fmt: skip
    """Create or update the stack, then build and push both images and point the job definitions at them.

    Works from any directory: the template and the images' build contexts come with batchpipe.

    \b
    Example:
      batchpipe deploy --region eu-west-1 --max-vcpus 64
      batchpipe deploy --builder podman
    """
    from rich.console import Console

    from batchpipe.aws import deploy as aws_deploy
    from batchpipe.aws.template import build_template
    from batchpipe.deploy.plan import describe

    if bool(vpc_id) != bool(subnet_ids):
        raise InputError("--vpc-id and --subnet-ids go together")
    if no_build and builder:
        raise InputError("--builder is for building the images: drop it or --no-build")
    using = None if no_build else aws_deploy.builder(builder)  # before anything is read: no builder, one line
    target.connect()
    params = ({"MaxvCpus": str(max_vcpus)} if max_vcpus else {}) | (
        {"VpcId": vpc_id, "SubnetIds": subnet_ids} if vpc_id and subnet_ids else {}
    )
    plan = aws_deploy.plan(target.stack_name, build_template(), params, build=not no_build, image_tag=image_tag,
                           read_changes=dry_run)  # fmt: skip
    if dry_run:
        click.echo("\n".join(describe(plan)))
        return
    console = Console(stderr=True)
    done = aws_deploy.execute(plan, using, _event_printer(console), console.print)
    if done == "UNCHANGED":
        click.echo(f"stack '{target.stack_name}' is up to date: nothing changed")
    else:
        click.echo(f"stack '{target.stack_name}' {done.lower()}")
    missing = aws_deploy.missing_images(target.stack_name)
    if missing:
        what = f"no image is pushed yet: {' and '.join(missing)} are" if len(missing) > 1 else f"image {missing[0]} is"
        click.echo(f"{what} not in ECR, so `batchpipe run` refuses to start runs: build and push the images with "
                   "`batchpipe deploy` (docker, podman or buildah)", err=True)  # fmt: skip


@click.command()
@click.argument("run", required=False)
@aws_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--watch", is_flag=True, help="Follow RUN live until it ends, then show its results.")
@click.option("--cost", is_flag=True, help="Also what RUN's jobs used: vCPU-seconds, an estimated cost, Spot "
              "interruptions and application failures (describes every array child).")  # fmt: skip
@click.option("--local", is_flag=True, help="Runs on this machine: RUN is a run directory, a job name under "
              "./batchpipe-runs/, or a directory of runs to list (default ./batchpipe-runs/).")  # fmt: skip
def status(run: str | None, target: Target, as_json: bool, watch: bool, cost: bool, local: bool) -> None:
    """Recent runs of both pipelines, or one run (execution ARN or job name) in detail.

    \b
    Example:
      batchpipe status
      batchpipe status MCAutocallable --watch
      batchpipe status MCAutocallable --cost
      batchpipe status --local
    """
    from rich.console import Console
    from rich.table import Table

    from batchpipe.backends import aws

    if cost and (run is None or watch or local):
        raise InputError("--cost is for one AWS run: batchpipe status RUN --cost")
    if local:
        from batchpipe.cli.local import local_status

        local_status(run, as_json, watch)
        return
    if run is None:
        rows = aws.recent_runs(target)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"Recent runs in stack '{target.stack_name}'", title_justify="left")
        for col in ("name", "pipeline", "status", "started", "duration"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["jobName"], r["pipeline"], r["status"], r["started"][:19].replace("T", " "), r["duration"])
        Console().print(table)
        return
    if watch:
        from batchpipe.cli.show import show_summary

        show_summary(_follow(target, run), as_json)
        return
    doc = aws.run_status(target.outputs, run, cost=cost)
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
    _print_failed(console, doc)
    if doc.get("usage"):
        _print_usage(console, doc["usage"])


def _print_failed(console: Any, doc: dict[str, Any]) -> None:
    """The failed jobs of `status RUN` (an array's first 100 failed children)."""
    for f in doc["failedJobs"]:
        shard = "" if f["index"] is None else f" shard {f['index']}"
        console.print(f"[red]failed[/] {f['job']}{shard}, {f['attempts']} attempts: {f['statusReason']} "
                      f"(log stream {f['logStream']})")  # fmt: skip
    if doc.get("failedChildrenNotShown"):
        console.print(f"... and {doc['failedChildrenNotShown']} more failed children")
    if doc["failedJobs"]:
        console.print(f"their logs: batchpipe logs {doc['jobName']} [--shard N]")


def _print_usage(console: Any, used: dict[str, Any]) -> None:
    """`status RUN --cost`: compute used, its estimated cost (labelled an estimate), retries by cause."""
    console.print(f"compute: {used['vcpuSeconds']:,.0f} vCPU-seconds ({used['vcpuSeconds'] / 3600:,.2f} vCPU-hours) "
                  f"in {used['attempts']} attempts; estimated cost ${used['estimatedCostUsd']:,.2f}")  # fmt: skip
    console.print(f"  ({used['costBasis']})")
    console.print(f"retries: {used['spotInterruptions']} Spot interruptions (Host EC2 ...), "
                  f"{used['applicationFailures']} application failures (non-zero exit)")  # fmt: skip


def _follow(target: Target, run: str) -> Any:
    from rich.console import Console

    from batchpipe.backends import aws
    from batchpipe.ui import RichProgress

    with RichProgress(Console(stderr=True)) as progress:
        return aws.watch(target, run, progress)


@click.command()
@click.argument("run")
@aws_options
@click.option("--download", "download", type=click.Path(file_okay=False, path_type=Path),
              help="Download the run's results (and video) into this directory.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result document.")
@click.option("--local", is_flag=True, help="A run on this machine: a run directory or a job name under "
              "./batchpipe-runs/.")  # fmt: skip
def results(run: str, target: Target, download: Path | None, as_json: bool, local: bool) -> None:
    """The collated results of a run (the video's location and a link for render).

    \b
    Example:
      batchpipe results MCAutocallable --download ./mc
      batchpipe results autocallable-20261201-101500-3f2a --local
    """
    from rich.console import Console

    from batchpipe import catalog, ui
    from batchpipe.backends import aws

    if local:
        from batchpipe.cli.local import local_results

        if download is not None:
            raise InputError("--download is for AWS runs: a local run's files are in its directory")
        local_results(run, as_json)
        return
    pipeline, job, doc, state = aws.result_document(target, run)
    if doc is None:
        raise InputError(f"run '{job}' has no collated results yet ({state}): "
                         f"`batchpipe status {job}` shows where it is")  # fmt: skip
    if download is not None:
        aws.download(target, pipeline, job, download)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    getattr(ui, catalog.pipeline(pipeline).renderer)(doc, Console(), aws.location(target.outputs, job))
    if doc.get("video"):
        uri, url = aws.video_link(target, job)
        click.echo(f"video: {uri}\nlink (1 hour): {url}")


@click.command()
@click.argument("run")
@aws_options
def cancel(run: str, target: Target) -> None:
    """Stop a run: its execution and every unfinished Batch job it started.

    \b
    Example:
      batchpipe cancel MCAutocallable
    """
    from batchpipe.backends import aws

    arn, terminated = aws.cancel(target, run)
    click.echo(f"stopped {arn}; terminated {terminated} Batch job{'s' if terminated != 1 else ''}")


@click.command()
@click.argument("run")
@aws_options
@click.option("--shard", type=click.IntRange(min=0), help="Only this shard's job (the array child of this index).")
@click.option("--stage", type=click.Choice(LOG_STAGES), help="Only this stage's jobs (montecarlo: preprocess, price, "
              "collate; render: preprocess, render, stitch).")  # fmt: skip
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the job (with --shard or "
              "--stage) or the run ends.")  # fmt: skip
def logs(run: str, target: Target, shard: int | None, stage: str | None, follow: bool) -> None:
    """The CloudWatch logs of a run's Batch jobs, each attempt's stream after a `==> JOB ... <==` line: failed
    jobs first, then the stages in order; an array's failed children (the first 100), or one child with --shard.

    \b
    Example:
      batchpipe logs MCAutocallable
      batchpipe logs MCAutocallable --shard 7
      batchpipe logs scene-20261123-101500 --stage stitch --follow
    """
    from batchpipe.backends import aws

    printed = aws.logs(target, run, shard=shard, stage=stage, follow=follow, out=click.echo,
                       note=lambda line: click.echo(line, err=True))  # fmt: skip
    if not printed:
        click.echo(f"no log events yet for run '{run}'" + (f" shard {shard}" if shard is not None else "") +
                   (f" stage {stage}" if stage else ""), err=True)  # fmt: skip


@click.command()
@aws_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def destroy(target: Target, yes: bool) -> None:
    """Empty the bucket (every version) and the image repositories, then delete the stack.

    \b
    Example:
      batchpipe destroy --yes
    """
    from rich.console import Console

    from batchpipe.aws import stack

    target.connect()
    if not yes and not click.confirm(f"Delete stack '{target.stack_name}' with all its runs' data and images?"):
        raise InputError("not confirmed: nothing deleted")
    stack.destroy(target.stack_name, _event_printer(Console(stderr=True)))
    click.echo(f"stack '{target.stack_name}' deleted")


COMMANDS = [deploy, status, results, logs, cancel, destroy]

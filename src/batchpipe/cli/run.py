"""`batchpipe run PIPELINE INPUT`: preprocess, fan out, collate; --local runs it on this machine."""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from batchpipe.backends.aws import Target
from batchpipe.cli.aws import aws_options
from batchpipe.cli.show import show_summary
from batchpipe.errors import InputError
from batchpipe.pricing.domain import MAX_PATHS, MIN_PATHS

DEFAULT_ROOT = Path("batchpipe-runs")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")


_SUFFIXES = itertools.count(secrets.randbits(16))  # random across processes, never repeated within one


def _job_name(given: str | None, stem: str) -> str:
    """The given name, checked; or the input's name, the UTC second and a 4-hex suffix: random across processes,
    counted within one, and never one whose default output directory exists (two runs started in the same second
    from copies of one file never share a name, nor a default output directory)."""
    if given is None:
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:60] or "run"
        while True:
            name = f"{safe}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{next(_SUFFIXES) % 0x10000:04x}"
            if not (DEFAULT_ROOT / name).exists():
                return name
    if not JOB_NAME.match(given):
        raise InputError(f"--job-name {given!r}: use 1-80 letters, digits, '-' or '_', starting with a letter or digit")
    return given


def _check_resume_options(local: bool, fresh: bool, resume: str | None, shards_option: str) -> None:
    """--fresh is for local runs, --resume RUN for AWS runs, and a resume keeps RUN's own sharding."""
    if local and resume is not None:
        raise InputError("--resume RUN is for AWS runs: run the same --local command (same --job-name) to resume")
    if not local and fresh:
        raise InputError("--fresh applies to --local runs: an AWS run always starts fresh under a new --job-name")
    source = click.get_current_context().get_parameter_source(shards_option)
    if resume is not None and source not in (None, click.core.ParameterSource.DEFAULT):
        raise InputError(f"--resume RUN keeps RUN's own --{shards_option.replace('_', '-')}: leave the option out")


def _output_dir(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Path | None:
    """--output as a path; an empty value (an unset shell variable) is refused, never read as '.'."""
    if value is None:
        return None
    if not value.strip():
        raise InputError("--output is empty (an unset variable?): name a directory, or leave the option out")
    return Path(value)


@click.group()
def run() -> None:
    """Run a pipeline."""


F = TypeVar("F", bound=Callable[..., Any])


def common_options(what: str) -> Callable[[F], F]:
    """Options every pipeline's run command takes."""

    def decorate(fn: F) -> F:
        for option in reversed(
            [
                click.option("--local", "local_run", is_flag=True, help="Run on this machine instead of AWS Batch."),
                click.option("--job-name", help=f"Name of the run (default: the {what} name and UTC time)."),
                click.option("--workers", type=click.IntRange(min=1), help="Parallel workers (default: all cores)."),
                click.option(
                    "--output",
                    "output",
                    type=click.Path(),  # checked when the run claims it: one line, exit 2, for every case
                    callback=_output_dir,
                    help="Output directory (default: ./batchpipe-runs/JOB_NAME/): new, empty, or an earlier run of "
                    "the same job.",
                ),
                click.option(
                    "--force",
                    is_flag=True,
                    help="Write into a non-empty --output that is not an earlier run of this job (batchpipe's own "
                    "file names there are replaced; nothing else is touched).",
                ),
                click.option("--json", "as_json", is_flag=True, help="Print the result document instead of tables."),
            ]
        ):
            fn = option(fn)
        return fn

    return decorate


@run.command()
@click.argument("portfolio", type=click.Path(dir_okay=False, path_type=Path))
@common_options("portfolio")
@aws_options
@click.option("--no-wait", is_flag=True, help="On AWS: print the execution ARN and return.")
@click.option("--positions-per-job", type=click.IntRange(min=1), help="Positions per shard (array child).")
@click.option("--paths", type=click.IntRange(MIN_PATHS, MAX_PATHS),
              help="Monte Carlo paths (overrides the file), rounded up to whole antithetic pairs in 64 equal blocks "
              "(a multiple of 128: 100,000 runs 100,096); results report both.")  # fmt: skip
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Random seed (overrides the file).")
@click.option(
    "--max-calibration-rmse",
    type=click.FloatRange(min=0, min_open=True),
    metavar="VOLPOINTS",
    help="Refuse to price (exit 2) when the calibration's implied-vol RMSE is above this many vol points.",
)
@click.option(
    "--greeks",
    is_flag=True,
    help="Also price every position's delta, gamma, vega and rho on the same paths (see the README).",
)
@click.option(
    "--spot-bump",
    type=float,
    metavar="FRACTION",
    help="With --greeks: the relative spot bump of delta and gamma (default 0.01).",
)
@click.option(
    "--vol-bump",
    type=float,
    metavar="VOL",
    help="With --greeks: vega's bump of sqrt(v0) and sqrt(theta) (default 0.01, one vol point).",
)
@click.option("--rate-bump", type=float, metavar="RATE", help="With --greeks: rho's rate bump (default 0.0001).")
@click.option("--scenarios", "scenarios", metavar="LADDER",
              help='Also price every position in each shocked market of a ladder, e.g. '
              '"spot=-30%:30%:5%,vol=-5:5:1" (spot shifts times vol shifts, in vol points).')  # fmt: skip
@click.option("--fresh", is_flag=True, help="Price every shard again instead of resuming a run of the same job.")
@click.option("--resume", "resume", metavar="RUN", help="On AWS: price only what RUN is missing, over its output.")
def montecarlo(
    portfolio: Path,
    local_run: bool,
    job_name: str | None,
    positions_per_job: int | None,
    paths: int | None,
    seed: int | None,
    max_calibration_rmse: float | None,
    workers: int | None,
    output: Path | None,
    force: bool,
    as_json: bool,
    target: Target,
    no_wait: bool,
    greeks: bool,
    spot_bump: float | None,
    vol_bump: float | None,
    rate_bump: float | None,
    scenarios: str | None,
    fresh: bool,
    resume: str | None,
) -> None:
    """Price a portfolio of autocallable notes: calibrate, price shards in parallel, collate.

    Writes results.json and results.csv (with --scenarios, scenarios.csv) to --output (default
    ./batchpipe-runs/JOB_NAME/), which must be new, empty, or an earlier run of the same job (resumed); one run at a
    time per directory.
    Exit code 0 when every position priced, 1 when some failed, 2 for bad input.

    \b
    Example:
      batchpipe run montecarlo examples/portfolio.json --local --paths 200000
      batchpipe run montecarlo examples/portfolio.json --local --greeks --scenarios "spot=-30%:30%:5%,vol=-5:5:1"
    """
    from rich.console import Console

    from batchpipe.backends import aws, local
    from batchpipe.pipelines.montecarlo import PlanBuilder, RiskOptions, calibration_gate, risk_request
    from batchpipe.pipelines.portfolio import load_portfolio, with_simulation_overrides
    from batchpipe.ui import RichProgress

    _check_resume_options(local_run, fresh, resume, "positions_per_job")
    doc_in = load_portfolio(portfolio)
    risk = RiskOptions(greeks, spot_bump, vol_bump, rate_bump, scenarios)
    request = risk_request(doc_in, risk)  # the options' own checks (the model's come with the plan)
    name = _job_name(job_name, doc_in.name)
    stderr = Console(stderr=True)
    with RichProgress(stderr) as progress:
        if local_run:
            summary = local.run_montecarlo(doc_in, job_name=name, output_dir=str(output or DEFAULT_ROOT / name),
                                           progress=progress, positions_per_job=positions_per_job, paths=paths,
                                           seed=seed, workers=workers, fresh=fresh, force=force,
                                           max_calibration_rmse=max_calibration_rmse, risk=risk)  # fmt: skip
        else:
            # what the AWS preprocess will do, here first: input it cannot price (a surface that cannot be fitted)
            # never reaches S3; the AWS stages read --paths / --seed, the greeks and scenarios from the uploaded file
            calibration_gate(PlanBuilder(doc_in, name, positions_per_job, paths, seed, risk), max_calibration_rmse,
                             progress.warn)  # fmt: skip
            given = risk != RiskOptions()  # the options, written into the file's "greeks" and "scenarios" blocks
            upload = with_simulation_overrides(portfolio, paths, seed, request.greeks if given else None,
                                               request.scenarios if given else None)  # fmt: skip
            summary = aws.run_montecarlo(portfolio, job_name=name, target=target, progress=progress,
                                         positions_per_job=positions_per_job, upload=upload, resume=resume,
                                         wait=not no_wait)  # fmt: skip
    show_summary(summary, as_json)


@run.command()
@click.argument("blend", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@common_options("file")
@aws_options
@click.option("--no-wait", is_flag=True, help="On AWS: print the execution ARN and return.")
@click.option("--frames-per-job", type=click.IntRange(min=1), default=1, show_default=True,
              help="Frames each shard (array child) renders.")  # fmt: skip
@click.option("--frames", "frame_range", metavar="START-END", help="Render these frames instead of the scene's range.")
@click.option("--resolution-percentage", type=click.IntRange(1, 10_000), help="Scale the resolution (preview).")
@click.option("--samples", type=click.IntRange(min=1), help="Render samples (Cycles or EEVEE; preview).")
@click.option("--fresh", is_flag=True, help="Render every shard again instead of resuming a run of the same job.")
@click.option("--resume", "resume", metavar="RUN", help="On AWS: render only what RUN is missing, over its output.")
@click.option("--blender", metavar="PATH", help="Render with this Blender executable (env BATCHPIPE_BLENDER) instead "
              "of the installed official build (the bpy module); --local only.")  # fmt: skip
@click.option("--allow-missing", is_flag=True,
              help="Render even when linked libraries, textures or other files the scene uses are missing (a "
              "warning; they are absent from the frames).")  # fmt: skip
def render(
    blend: Path,
    local_run: bool,
    job_name: str | None,
    workers: int | None,
    output: Path | None,
    force: bool,
    as_json: bool,
    frames_per_job: int,
    frame_range: str | None,
    resolution_percentage: int | None,
    samples: int | None,
    target: Target,
    no_wait: bool,
    fresh: bool,
    resume: str | None,
    blender: str | None,
    allow_missing: bool,
) -> None:
    """Render a Blender file in parallel frame chunks and stitch the frames into an H.264 MP4.

    Writes frames/NNNN.png (named by frame number), output.mp4 and render.json to --output (default
    ./batchpipe-runs/JOB_NAME/), which must be new, empty, or an earlier run of the same job; one run at a time per
    directory. The file's own scripts never run (Blender's auto-exec is disabled). Every file the scene uses
    (linked libraries, textures, sounds, caches, fonts) must be there: a missing one is an error (exit 2) unless
    --allow-missing.
    Running the same job again resumes: complete shards of the same plan are kept (--fresh starts over).
    Exit code 0 when every frame rendered, 1 when some did not, 2 for bad input.

    \b
    Example:
      batchpipe run render scene.blend --frames-per-job 4 --local --resolution-percentage 50
    """
    from rich.console import Console

    from batchpipe.backends import aws, local
    from batchpipe.pipelines import render as rp
    from batchpipe.rendering.frames import parse_frames_option
    from batchpipe.ui import RichProgress

    try:
        frames = parse_frames_option(frame_range) if frame_range is not None else None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    name = _job_name(job_name, blend.stem)
    _check_resume_options(local_run, fresh, resume, "frames_per_job")
    if not local_run:
        if blender is not None:
            raise InputError("--blender applies to --local runs only (on AWS the render image's Blender renders)")
        # the local engine's checks but the renderer's version, here first: nothing is uploaded for a file the
        # preprocess job would refuse (that job also refuses a file newer than the image's Blender)
        rp.check_input(blend, name, frames_per_job, frames=frames, resolution_percentage=resolution_percentage,
                       samples=samples)  # fmt: skip
    with RichProgress(Console(stderr=True)) as progress:
        if local_run:
            summary = local.run_render(blend, job_name=name, output_dir=output or DEFAULT_ROOT / name,
                                       progress=progress, frames_per_job=frames_per_job, workers=workers,
                                       frames=frames, resolution_percentage=resolution_percentage, samples=samples,
                                       fresh=fresh, force=force, blender=blender,
                                       allow_missing=allow_missing)  # fmt: skip
        else:
            summary = aws.run_render(blend, job_name=name, target=target, progress=progress,
                                     frames_per_job=frames_per_job, frames=frames,
                                     resolution_percentage=resolution_percentage, samples=samples, resume=resume,
                                     wait=not no_wait, allow_missing=allow_missing)  # fmt: skip
    show_summary(summary, as_json)

"""What tells the pipelines apart outside their stage code: one small descriptor each, instead of
`if pipeline == "montecarlo"` branches in the backends, the AWS clients and the CLI. It imports nothing, so every
layer may use it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pipeline:
    name: str
    state_machine_output: str  # the StackOutputs field of its state machine's ARN
    job_definition_output: str  # ... and of its job definition's
    result_file: str  # the collated document under the run's output
    status_file: str  # the small document that says how a run ended (summary.json: results.json less its rows)
    downloads: tuple[str, ...]  # what `results --download` fetches
    optional_downloads: frozenset[str]  # ... of which a partial run may lack these
    input_noun: str  # what its input is called in messages
    counts_frames: bool  # progress and status count frames
    renderer: str  # the `batchpipe.ui` function that shows its result


MONTECARLO = Pipeline(
    name="montecarlo",
    state_machine_output="montecarlo_state_machine_arn",
    job_definition_output="pricer_job_definition_arn",
    result_file="results.json",
    status_file="summary.json",
    downloads=("results.json", "results.csv", "scenarios.csv"),
    optional_downloads=frozenset({"scenarios.csv"}),  # only a run with --scenarios writes it
    input_noun="the portfolio",
    counts_frames=False,
    renderer="montecarlo_tables",
)
RENDER = Pipeline(
    name="render",
    state_machine_output="render_state_machine_arn",
    job_definition_output="render_job_definition_arn",
    result_file="render.json",
    status_file="render.json",
    downloads=("render.json", "output.mp4"),
    optional_downloads=frozenset({"output.mp4"}),  # a partial render has no video
    input_noun="the .blend file",
    counts_frames=True,
    renderer="render_summary",
)
PIPELINES = {p.name: p for p in (MONTECARLO, RENDER)}


def pipeline(name: str) -> Pipeline:
    try:
        return PIPELINES[name]
    except KeyError:
        raise ValueError(f"no pipeline {name!r}: {', '.join(PIPELINES)}") from None

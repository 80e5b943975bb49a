"""Both state machines executed end to end by moto's Step Functions interpreter, with the real Lambda handler
(deployed as its zip) and the real container entrypoints run in-process for the Batch jobs (tests/aws/moto_runtime.py).
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import zstandard

from batchpipe.aws import clients
from batchpipe.backends.aws import run_status
from tests.aws.moto_stack import BUCKET, Stack
from tests.conftest import EXAMPLE, WORKSHOP_HESTON, small_portfolio
from tests.functional.test_render_dependencies import made_project, project  # noqa: F401 (fixtures, by name)


def shard_submissions(stack: Stack) -> list[Any]:
    return [s for s in stack.runtime.submitted if s.command[:1] in (["price"], ["render"])]


def test_workshop_payload_prices_48_positions_in_10_shards(stack: Stack) -> None:
    doc = json.loads(EXAMPLE.read_text())  # the workshop's positions, a small path count to stay quick
    doc |= {"market": {"heston": WORKSHOP_HESTON}, "simulation": {"paths": 256}}
    uri = stack.put("inputs/portfolio.json", json.dumps(doc).encode())
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "MCAutocallable", uri, positionsPerJob=5))
    assert desc["status"] == "SUCCEEDED", desc
    [fan] = shard_submissions(stack)
    assert fan.array_size == 10
    assert fan.command == ["price", "--output", f"s3://{BUCKET}/MCAutocallable"]
    results = stack.result("MCAutocallable", "results.json")
    assert results["status"] == "SUCCEEDED" and len(results["positions"]) == 48
    assert json.loads(desc["output"])["status"] == "SUCCEEDED"


def test_one_shard_runs_as_a_single_job(stack: Stack) -> None:
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "one", uri))  # the workshop's payload shape
    assert desc["status"] == "SUCCEEDED", desc
    [single] = shard_submissions(stack)
    assert single.array_size is None
    assert stack.result("one", "results.json")["status"] == "SUCCEEDED"


def test_failed_shard_collates_as_partial(stack: Stack) -> None:
    stack.runtime.fail_children = {1}
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "partial", uri, positionsPerJob="2"))
    assert desc["status"] == "FAILED" and desc["error"] == "batchpipe.Partial"
    results = stack.result("partial", "results.json")
    assert results["status"] == "PARTIAL"
    assert [p["error"] is not None for p in results["positions"]] == [False, False, True, True, False]
    # Summarize read the small summary.json (results.json less its positions), not every row
    assert stack.result("partial", "summary.json") == {k: v for k, v in results.items() if k != "positions"}
    history = stack.sfn.get_execution_history(executionArn=desc["executionArn"])["events"]
    summaries = [json.loads(e["taskSucceededEventDetails"]["output"])["Payload"] for e in history
                 if "missingCount" in e.get("taskSucceededEventDetails", {}).get("output", "")]  # fmt: skip
    assert [(s["missing"], s["missingCount"]) for s in summaries] == [([2, 3], 2)]
    # what `batchpipe status partial` shows: the stages, the array's children by status, the failed child
    shown = run_status(stack.outputs(), "partial")
    assert shown["status"] == "FAILED" and shown["stages"][-1] == "Partial" and "Collate" in shown["stages"]
    [array] = shown["arrays"]
    assert array["size"] == 3 and array["statusSummary"]["FAILED"] == 1 and array["statusSummary"]["SUCCEEDED"] == 2
    assert [f["index"] for f in shown["failedJobs"] if f["index"] is not None] == [1]


def test_one_position_past_the_array_limit_plans_two_per_child(stack: Stack) -> None:
    stack.runtime.run_shards = False
    doc = small_portfolio(positions=[{"notional": 1e6, "strike": 3550, "barrier": 1.0}] * 10_001)
    uri = stack.put("inputs/big.json", json.dumps(doc).encode())
    stack.execute("montecarlo", stack.payload("montecarlo", "big", uri, positionsPerJob=1))
    [fan] = shard_submissions(stack)
    assert fan.array_size == 5_001  # 10,001 children would break AWS Batch's limit of 10,000
    plan = stack.result("big", "plan.json")
    assert plan["positionsPerJobRequested"] == 1 and plan["positionsPerJob"] == 2 and plan["shards"] == 5_001


def test_bad_payload_fails_in_prepare_with_the_reason(stack: Stack) -> None:
    desc = stack.execute("render", stack.payload("render", "nope", "s3://x/y.blend"))  # no framesPerJob
    assert desc["status"] == "FAILED"
    history = stack.sfn.get_execution_history(executionArn=desc["executionArn"])["events"]
    assert any("framesPerJob is required" in json.dumps(e, default=str) for e in history)
    assert stack.runtime.submitted == []


def test_render_workshop_payload_199_frames_at_string_1_per_job(stack: Stack, blend_scene: Any) -> None:
    stack.runtime.run_shards = False  # the array's size is the point here, not rendering 199 frames
    uri = stack.put("inputs/long.blend", blend_scene(start=1, end=199).read_bytes())
    stack.execute("render", stack.payload("render", "Pottery", uri, framesPerJob="1"))
    [fan] = shard_submissions(stack)
    assert fan.array_size == 199
    assert fan.command == ["render", "--output", f"s3://{BUCKET}/Pottery"]


def test_render_end_to_end_with_blender_and_ffmpeg(stack: Stack, blend_scene: Any) -> None:
    uri = stack.put("inputs/short.blend", blend_scene(start=5, end=7).read_bytes())
    desc = stack.execute("render", stack.payload("render", "short", uri, framesPerJob=2))
    assert desc["status"] == "SUCCEEDED", stack.sfn.get_execution_history(executionArn=desc["executionArn"])
    [fan] = shard_submissions(stack)
    assert fan.array_size == 2
    doc = stack.result("short", "render.json")
    assert doc["status"] == "SUCCEEDED" and doc["videoInfo"]["frames"] == 3
    keys = {o["Key"] for o in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="short/")["Contents"]}
    assert {"short/frames/0005.png", "short/frames/0006.png", "short/frames/0007.png", "short/output.mp4"} <= keys


def test_render_preview_options_on_aws_make_the_local_plan(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blend_scene: Any
) -> None:
    """--frames, --resolution-percentage and --samples travel in the payload to the preprocess job: the plan in S3
    has them, with the planHash a local plan of the same options and pack computes, and the frames are rendered
    so. The upload is a pack: for a scene that uses no other file, the .blend alone, unchanged."""
    from click.testing import CliRunner

    from batchpipe.aws import stack as stack_module
    from batchpipe.cli import main
    from batchpipe.pipelines import render as rp
    from batchpipe.rendering.pack import PackManifest

    blend = tmp_path / "preview.blend"
    blend.write_bytes(blend_scene(start=1, end=9, width=32, height=24).read_bytes())
    monkeypatch.setattr(stack_module, "outputs", lambda name: stack.outputs())
    args = ["run", "render", str(blend), "--job-name", "preview", "--frames", "6-7", "--resolution-percentage", "50",
            "--samples", "2", "--json"]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    [fan] = shard_submissions(stack)
    assert fan.array_size == 2
    plan = stack.result("runs/preview", "plan.json")
    assert (plan["frameStart"], plan["frameEnd"], plan["resolutionPercentage"], plan["samples"]) == (6, 7, 50, 2)
    pack = PackManifest.read(plan["pack"])
    assert pack.blend == "preview.blend" and [f.path for f in pack.files] == ["pack-info.txt", "preview.blend"]
    local = rp.preprocess(
        blend,
        "preview",
        1,
        frames=(6, 7),
        resolution_percentage=50,
        samples=2,
        pack=pack,
        renderer_version=plan["blender"],
    )
    assert plan["planHash"] == local.plan_hash and plan["outputSize"] == [16, 12]
    assert plan["blendSha256"] == local.blend_sha256  # packed unchanged
    doc = stack.result("runs/preview", "render.json")
    assert doc["status"] == "SUCCEEDED" and doc["framesRendered"] == ["0006.png", "0007.png"]
    assert doc["resolution"] == [16, 12] and doc["videoInfo"]["frames"] == 2


def test_a_scene_linking_a_library_renders_on_aws_from_its_pack(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    project: Path,  # noqa: F811 (the fixture)
) -> None:
    """The upload is the scene packed with its linked library and both textures; the jobs render from the pack, so
    the frame is the one a local render with every file present makes, not the one without the library."""
    from click.testing import CliRunner

    from batchpipe.aws import stack as stack_module
    from batchpipe.cli import main

    scene = project / "scene.blend"
    monkeypatch.setattr(stack_module, "outputs", lambda name: stack.outputs())
    done = CliRunner().invoke(main, ["run", "render", str(scene), "--job-name", "linked", "--json"])
    assert done.exit_code == 0, done.output
    plan = stack.result("runs/linked", "plan.json")
    packed = {f["path"] for f in plan["pack"]["files"]}
    assert {"scene.blend", "lib/props.blend", "tex/wood.png", "tex/prop.png"} <= packed
    assert stack.result("runs/linked", "render.json")["status"] == "SUCCEEDED"
    on_aws = stack.s3.get_object(Bucket=BUCKET, Key="runs/linked/frames/0001.png")["Body"].read()
    local = {}
    for name, args in (("present", []), ("missing", ["--allow-missing"])):
        if name == "missing":
            (project / "lib" / "props.blend").unlink()
        out = tmp_path / name
        ran = CliRunner().invoke(main, ["run", "render", str(scene), "--local", "--output", str(out), "--job-name",
                                        name, "--workers", "1", *args])  # fmt: skip
        assert ran.exit_code == 0, ran.output
        local[name] = (out / "frames" / "0001.png").read_bytes()
    assert pixels(local["present"]) != pixels(local["missing"])  # the library shows in the frame
    assert pixels(on_aws) == pixels(local["present"])  # (Blender's text chunks differ: file path, date)


def pixels(png: bytes) -> tuple[bytes, bytes]:
    """A PNG's header and decompressed image data, without its text chunks."""
    pos, header, data = 8, b"", b""
    while pos < len(png):
        size, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + size]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
        pos += 12 + size
    return header, zlib.decompress(data)


def test_run_without_local_tails_to_the_results(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from batchpipe.aws import stack as stack_module
    from batchpipe.cli import main

    monkeypatch.setattr(stack_module, "outputs", lambda name: stack.outputs())  # the stack made by the fixture
    portfolio = tmp_path / "portfolio.json"
    portfolio.write_text(json.dumps(small_portfolio()))
    ok = CliRunner().invoke(main, ["run", "montecarlo", str(portfolio), "--job-name", "tailed", "--json"])
    assert ok.exit_code == 0, ok.output
    # (the in-process Batch jobs print their own one-line summaries into the same stdout first)
    assert json.loads(ok.stdout[ok.stdout.index('{\n  "jobName"') :])["status"] == "SUCCEEDED"
    stack.runtime.fail_children = {0}
    bad = CliRunner().invoke(main, ["run", "montecarlo", str(portfolio), "--job-name", "tailed2",
                                    "--positions-per-job", "2"])  # fmt: skip
    assert bad.exit_code == 1 and "FAILED" in bad.stderr and "batchpipe status tailed2" in bad.stderr
    assert "PARTIAL" in bad.stdout  # the collated table is still shown
    # status --watch follows a run through the same backend call and shows the same result
    watched = CliRunner().invoke(main, ["status", "tailed", "--watch", "--json"])
    assert watched.exit_code == 0, watched.output
    assert json.loads(watched.stdout) == stack.result("runs/tailed", "results.json")


def test_resume_prices_only_the_missing_shards(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from batchpipe.aws import stack as stack_module
    from batchpipe.cli import main

    portfolio = tmp_path / "portfolio.json"
    portfolio.write_bytes(json.dumps(small_portfolio()).encode())
    stack.runtime.fail_children = {1}
    uri = stack.put("runs/half/input/portfolio.json", portfolio.read_bytes())
    first = stack.execute("montecarlo", stack.payload("montecarlo", "half", uri, positionsPerJob=2))
    assert first["error"] == "batchpipe.Partial"
    stack.runtime.fail_children = set()
    monkeypatch.setattr(stack_module, "outputs", lambda name: stack.outputs())
    resumed = CliRunner().invoke(main, ["run", "montecarlo", str(portfolio), "--resume", "half", "--json"])
    assert resumed.exit_code == 0, resumed.output
    skipped = [json.loads(line)["shard"] for line in resumed.stdout.splitlines() if '"skipped"' in line]
    assert sorted(skipped) == [0, 2]  # only shard 1 was priced again
    results = stack.result("half", "results.json")
    assert results["status"] == "SUCCEEDED" and all(p["error"] is None for p in results["positions"])
    other = tmp_path / "other.json"
    other.write_text(json.dumps(small_portfolio(simulation={"paths": 4000, "seed": 7})))
    refused = CliRunner().invoke(main, ["run", "montecarlo", str(other), "--resume", "half"])
    assert refused.exit_code == 2 and "resume needs the same file" in refused.stderr


def test_render_resume_renders_only_the_missing_shard_and_stitches(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blend_scene: Any
) -> None:
    from click.testing import CliRunner

    from batchpipe.aws import stack as stack_module
    from batchpipe.cli import main
    from batchpipe.jobs.render import already_rendered
    from batchpipe.layout import RunLayout
    from batchpipe.pipelines import render as rp

    blend = tmp_path / "short.blend"
    blend.write_bytes(blend_scene(start=5, end=6).read_bytes())
    output = f"s3://{BUCKET}/runs/half"
    stack.runtime.fail_children = {1}
    uri = stack.put("runs/half/input/short.blend", blend.read_bytes())
    first = stack.execute("render", stack.payload("render", "half", uri, framesPerJob=1) | {"outputUri": output})
    assert first["error"] == "batchpipe.Partial"
    assert stack.result("runs/half", "render.json")["missingFrames"] == [6]
    stack.runtime.fail_children = set()
    monkeypatch.setattr(stack_module, "outputs", lambda name: stack.outputs())
    resumed = CliRunner().invoke(main, ["run", "render", str(blend), "--resume", "half", "--json"])
    assert resumed.exit_code == 0, resumed.output
    skipped = [json.loads(line)["shard"] for line in resumed.stdout.splitlines() if '"skipped"' in line]
    assert skipped == [0]  # only the failed shard 1 rendered again
    [again] = [s for s in shard_submissions(stack) if "--resume" in s.command]
    assert again.command == ["render", "--output", output, "--resume"] and again.array_size == 2
    doc = stack.result("runs/half", "render.json")
    assert doc["status"] == "SUCCEEDED" and doc["framesRendered"] == ["0005.png", "0006.png"]
    assert doc["videoInfo"]["frames"] == 2
    assert "frames 2/2" in resumed.stderr  # the tail's count of the frames in S3
    assert run_status(stack.outputs(), "half")["frames"] == {"rendered": 2, "total": 2}
    # a shard whose result says complete but whose frame is gone from S3 is rendered again
    plan = rp.read_plan(RunLayout.at(output))
    assert already_rendered(output, plan, 0)
    stack.s3.delete_object(Bucket=BUCKET, Key="runs/half/frames/0005.png")
    assert not already_rendered(output, plan, 0)

    other = tmp_path / "other.blend"  # the same scene uncompressed: other bytes
    with blend.open("rb") as fh:  # Blender writes several zstd frames
        other.write_bytes(zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read())
    refused = CliRunner().invoke(main, ["run", "render", str(other), "--resume", "half"])
    assert refused.exit_code == 2 and "the .blend file differs" in refused.stderr
    wrong = CliRunner().invoke(main, ["run", "montecarlo", str(EXAMPLE), "--resume", "half"])
    assert wrong.exit_code == 2 and "is a render run" in wrong.stderr


def test_shards_spot_could_not_place_run_again_on_on_demand_and_the_run_succeeds(stack: Stack) -> None:
    stack.runtime.no_spot_capacity = {1, 3, 4}  # the Spot queue cancelled these children for lack of capacity
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "fallback", uri, positionsPerJob=1))
    assert desc["status"] == "SUCCEEDED", desc
    spot, again = shard_submissions(stack)
    assert (spot.queue, spot.array_size) == ("batchpipe-spot", 5)
    out = f"s3://{BUCKET}/fallback"
    assert (again.queue, again.array_size) == ("batchpipe-ondemand", 3)  # exactly the three, on On-Demand
    assert again.command == ["price", "--output", out, "--resume", "--shard-list", "1,3-4"]
    assert {s.queue for s in stack.runtime.submitted if s not in (spot, again)} == {"batchpipe-ondemand"}
    results = stack.result("fallback", "results.json")
    assert results["status"] == "SUCCEEDED" and all(p["pv"] is not None for p in results["positions"])
    # one shard stranded: one On-Demand job, not an array (AWS Batch's arrays have 2 children at least)
    stack.runtime.submitted.clear()
    stack.runtime.no_spot_capacity = {0}
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "one-left", uri, positionsPerJob=1))
    assert desc["status"] == "SUCCEEDED", desc
    _, single = shard_submissions(stack)
    assert (single.queue, single.array_size) == ("batchpipe-ondemand", None)
    assert single.command[-3:] == ["--resume", "--shard", "0"]


def test_a_shard_that_failed_on_its_own_is_not_run_again_on_on_demand(stack: Stack) -> None:
    stack.runtime.fail_children = {1}  # the application failed: the result document reports it, --resume retries
    stack.runtime.no_spot_capacity = {3}
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "mixed", uri, positionsPerJob=1))
    assert desc["status"] == "FAILED" and desc["error"] == "batchpipe.Partial"
    _, again = shard_submissions(stack)
    assert again.array_size is None and again.command[-2:] == ["--shard", "3"]
    assert [p["index"] for p in stack.result("mixed", "results.json")["positions"] if p["error"]] == [1]


def test_a_single_shard_render_falls_back_too(stack: Stack, blend_scene: Any) -> None:
    stack.runtime.run_shards = False
    stack.runtime.no_spot_capacity = {0}
    blend = stack.put("inputs/scene.blend", blend_scene(start=5, end=7).read_bytes())
    stack.execute("render", stack.payload("render", "r-fallback", blend, framesPerJob=3))
    spot, again = shard_submissions(stack)
    assert spot.queue == "batchpipe-spot" and (again.queue, again.array_size) == ("batchpipe-ondemand", None)
    assert again.command == ["render", "--output", f"s3://{BUCKET}/r-fallback", "--resume", "--shard", "0"]


def test_every_job_carries_the_run_pipeline_and_stack_tags(stack: Stack) -> None:
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "tagged", uri, positionsPerJob=2))
    assert desc["status"] == "SUCCEEDED", desc
    batch = clients.client("batch")
    jobs = [j for q in (stack.queue, stack.on_demand_queue) for j in batch.list_jobs(jobQueue=q,
            jobStatus="SUCCEEDED")["jobSummaryList"]]  # fmt: skip
    described = batch.describe_jobs(jobs=[j["jobId"] for j in jobs])["jobs"]
    assert sorted(j["jobName"] for j in described) == ["tagged-collate", "tagged-preprocess", "tagged-price"]
    for job in described:
        assert job["tags"] == {"batchpipe:run": "tagged", "batchpipe:pipeline": "montecarlo",
                               "batchpipe:stack": "batchpipe-e2e"}, job["jobName"]  # fmt: skip


def test_a_throttled_submit_is_retried_not_a_failed_run(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.batch_simple.models import BatchSimpleBackend
    from moto.core.exceptions import JsonRESTError

    original, throttled = BatchSimpleBackend.submit_job, []

    def submit_job(self: BatchSimpleBackend, *args: Any, **kwargs: Any) -> Any:
        if len(throttled) < 2:  # AWS Batch answers 429 twice, then accepts
            throttled.append(kwargs.get("job_name") or args[0])
            raise JsonRESTError("TooManyRequestsException", "Too Many Requests")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BatchSimpleBackend, "submit_job", submit_job)
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    desc = stack.execute("montecarlo", stack.payload("montecarlo", "throttled", uri))
    assert desc["status"] == "SUCCEEDED", desc
    assert throttled == ["throttled-preprocess", "throttled-preprocess"]


def test_resume_after_a_deploy_runs_on_the_stacks_current_job_definition(stack: Stack) -> None:
    from batchpipe.aws import runs

    portfolio = json.dumps(small_portfolio()).encode()
    stack.runtime.fail_children = {1}
    uri = stack.put("runs/fixed/input/portfolio.json", portfolio)
    old = stack.payload("montecarlo", "fixed", uri, positionsPerJob=2)
    assert stack.execute("montecarlo", old)["error"] == "batchpipe.Partial"
    # "fix, deploy": the update registers a new revision (the old one is kept: SkipDeregisterOnUpdate, but a
    # resume must not depend on it) and may give the queue another ARN
    stack.runtime.fail_children = set()
    batch = clients.client("batch")
    stack.definitions["pricer"] = batch.register_job_definition(
        jobDefinitionName="batchpipe-pricer", type="container",
        containerProperties={"image": "pricer:fixed", "vcpus": 1, "memory": 512})["jobDefinitionArn"]  # fmt: skip
    assert stack.definitions["pricer"] != old["jobDefinitionArn"]
    arn = runs.resume(stack.outputs(), "fixed", portfolio, "montecarlo")
    resumed = stack.sfn.describe_execution(executionArn=arn)
    sent = json.loads(resumed["input"])
    assert sent == {**old, "jobDefinitionArn": stack.definitions["pricer"], "resume": True}
    deadline = time.monotonic() + 60
    while resumed["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
        resumed = stack.sfn.describe_execution(executionArn=arn)
    assert resumed["status"] == "SUCCEEDED" and stack.result("fixed", "results.json")["status"] == "SUCCEEDED"

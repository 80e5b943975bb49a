"""The render plan's fingerprint ("planHash"): everything a frame depends on, nothing it does not; which stored
shard results count as complete; and which shards a resume keeps, in a directory and in S3 (moto in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchpipe import storage
from batchpipe.errors import InputError
from batchpipe.layout import RunLayout
from batchpipe.pipelines.render import (
    check_input,
    failed_shard,
    frame_check,
    frames_of_shard,
    is_complete,
    preprocess,
    rendered_shards,
)
from batchpipe.pipelines.render_documents import RenderPlan, RenderShardResult
from batchpipe.rendering.frames import frame_filename
from tests.conftest import as_format_1
from tests.unit.test_frames import REAL_BLEND, make_png


@pytest.fixture
def blend(tmp_path: Path) -> Path:
    path = tmp_path / "scene.blend"
    path.write_bytes(REAL_BLEND.read_bytes())
    return path


def plan_of(blend: Path, **options: Any) -> RenderPlan:
    args: dict[str, Any] = {"frames": (1, 8), "resolution_percentage": None, "samples": None,
                            "renderer_version": "3.4.1"} | options  # fmt: skip
    per_job = args.pop("frames_per_job", 2)
    return preprocess(blend, args.pop("job", "job"), per_job, **args)


def test_the_plan_hash_follows_what_the_frames_depend_on(blend: Path, tmp_path: Path) -> None:
    base = plan_of(blend)
    assert base.blend_sha256 and len(base.plan_hash) == 24
    moved = tmp_path / "elsewhere" / "renamed.blend"
    moved.parent.mkdir()
    moved.write_bytes(blend.read_bytes())
    assert plan_of(moved).plan_hash == base.plan_hash  # the same bytes elsewhere: the same frames
    assert plan_of(blend, job="other").plan_hash == base.plan_hash
    changed = {
        "samples": plan_of(blend, samples=2),
        "percentage": plan_of(blend, resolution_percentage=50),
        "range": plan_of(blend, frames=(1, 9)),
        "framesPerJob": plan_of(blend, frames_per_job=3),
    }
    edited = tmp_path / "edited.blend"
    edited.write_bytes(blend.read_bytes() + b"\0")  # one byte more: another file
    changed["bytes"] = plan_of(edited)
    hashes = {name: plan.plan_hash for name, plan in changed.items()}
    assert base.plan_hash not in hashes.values() and len(set(hashes.values())) == len(hashes)


def test_the_plan_hash_follows_the_renderers_version(blend: Path) -> None:
    """Frames another Blender rendered are not this plan's: a resume with another renderer renders them again."""
    base = plan_of(blend)
    assert (base.file_version, base.blender) == ("2.80", "3.4.1")  # the file was saved by Blender 2.80
    assert plan_of(blend, renderer_version="3.4.1").plan_hash == base.plan_hash
    others = {v: plan_of(blend, renderer_version=v) for v in ("3.4.0", "3.4.2", "3.5.0", "4.5.3")}
    assert all(plan.blender == v and plan.file_version == "2.80" for v, plan in others.items())
    hashes = {plan.plan_hash for plan in others.values()}
    assert base.plan_hash not in hashes and len(hashes) == len(others)
    done = {"jobName": "job", "shard": 0, "planHash": others["3.4.2"].plan_hash, "frames": [1, 2],
            "rendered": [1, 2], "missing": [], "error": None, "seconds": 1.0}  # fmt: skip
    assert is_complete(others["3.4.2"], 0, stored(done)) and not is_complete(base, 0, stored(done))


def test_a_file_newer_than_the_renderer_is_refused_before_anything_is_planned(blend: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        plan_of(blend, renderer_version="2.79", source="s3://b/scene.blend")
    assert info.value.exit_code == 2 and str(info.value) == (
        "s3://b/scene.blend: saved by Blender 2.80, newer than the renderer (Blender 2.79): render it with Blender "
        "2.80 or later (--blender PATH renders with another Blender)"
    )
    assert plan_of(blend, renderer_version="2.80.0").blender == "2.80.0"
    newer = tmp_path / "newer.blend"
    newer.write_bytes(as_format_1(blend.read_bytes()))  # as Blender 5.0 saves it
    with pytest.raises(
        InputError, match=r"newer\.blend: saved by Blender 5\.0, newer than the renderer \(Blender 4\.5\.3\)"
    ):
        plan_of(newer, renderer_version="4.5.3")
    assert plan_of(newer, renderer_version="5.0.1").file_version == "5.0"
    check_input(newer, "job", 1)  # before an AWS run: the renderer there is not known here, the rest is checked
    with pytest.raises(InputError, match="framesPerJob"):
        check_input(newer, "job", 0)
    broken = tmp_path / "broken.blend"
    broken.write_bytes(b"BLENDER17-02v0600" + blend.read_bytes()[12:])  # a header format to come
    for check in (lambda: plan_of(broken, renderer_version="4.5.3"), lambda: check_input(broken, "job", 1)):
        with pytest.raises(InputError, match=r"broken\.blend: unknown \.blend header b'BLENDER17-02v0600'"):
            check()


def stored(doc: dict[str, Any]) -> RenderShardResult | None:
    """A shard result as a run reads it back: None when the file is not one (`RunLayout.shard_result`)."""
    try:
        return RenderShardResult.read(doc)
    except ValueError:
        return None


def test_only_a_finished_result_of_the_same_plan_is_complete(blend: Path) -> None:
    plan = plan_of(blend)
    frames = frames_of_shard(plan, 1)
    done = {"jobName": "job", "shard": 1, "planHash": plan.plan_hash, "frames": frames, "rendered": frames,
            "missing": [], "error": None, "seconds": 1.0}  # fmt: skip
    assert is_complete(plan, 1, stored(done))
    assert not is_complete(plan, 1, None)
    assert not is_complete(plan, 2, stored(done))
    assert not is_complete(plan, 1, stored({**done, "planHash": plan_of(blend, samples=3).plan_hash}))
    assert not is_complete(plan, 1, stored({k: v for k, v in done.items() if k != "planHash"}))  # before hashes
    assert not is_complete(plan, 1, stored({**done, "rendered": frames[:1], "missing": frames[1:]}))
    assert not is_complete(plan, 1, stored({**done, "error": "shard 1: Blender exited with code 1"}))
    assert not is_complete(plan, 1, failed_shard(plan, 1, "boom"))


def finished_run(output: str, plan: RenderPlan) -> dict[int, RenderShardResult]:
    """What a run that rendered every shard leaves at `output`: each frame a PNG of the plan's size, each shard's
    complete result; returns the results."""
    png = make_png(*plan.output_size)
    results = {}
    for shard in range(plan.shards):
        frames = frames_of_shard(plan, shard)
        for f in frames:
            storage.write_bytes(storage.join(output, "frames", frame_filename(f)), png)
        results[shard] = RenderShardResult(
            job_name=plan.job_name,
            shard=shard,
            plan_hash=plan.plan_hash,
            frames=frames,
            rendered=frames,
            missing=[],
            error=None,
            seconds=1.0,
        )
        RunLayout.at(output).write_json(RunLayout.shard(shard), results[shard])
    return results


def test_a_directory_keeps_the_shards_whose_frames_are_all_valid_pngs(blend: Path, tmp_path: Path) -> None:
    plan = plan_of(blend, resolution_percentage=5)  # 4 shards of 2 frames, 96x54
    output = str(tmp_path / "out")
    results = finished_run(output, plan)
    check = frame_check(output, plan)
    assert rendered_shards(output, plan, check) == results
    (tmp_path / "out" / "frames" / "0003.png").unlink()  # shard 1 (frames 3-4): a frame gone
    cut = tmp_path / "out" / "frames" / "0006.png"  # shard 2 (frames 5-6): a frame cut short
    cut.write_bytes(cut.read_bytes()[:-20])
    assert set(rendered_shards(output, plan, check)) == {0, 3}  # shards 1 and 2 are rendered again
    assert rendered_shards(output, plan, check, [1, 3]) == {3: results[3]}
    RunLayout.at(output).write_json(RunLayout.shard(3), results[3].model_copy(update={"job_name": "other"}))
    assert set(rendered_shards(output, plan, check)) == {0}
    assert not check(str(tmp_path / "out" / "frames" / "0006.png"))
    wrong_size = frame_check(output, plan_of(blend, resolution_percentage=10))
    assert not wrong_size(str(tmp_path / "out" / "frames" / "0001.png"))


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto import mock_aws

    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "t",
                       "AWS_SECRET_ACCESS_KEY": "t"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    from batchpipe.aws import clients

    clients.client.cache_clear()
    with mock_aws():
        clients.client("s3").create_bucket(Bucket="bp-resume")
        yield "s3://bp-resume"
    clients.client.cache_clear()


def test_s3_keeps_the_shards_whose_frame_objects_are_all_there(blend: Path, bucket: str) -> None:
    from batchpipe.aws import clients

    plan = plan_of(blend, resolution_percentage=5)
    output = f"{bucket}/runs/job"
    results = finished_run(output, plan)
    check = frame_check(output, plan)
    assert rendered_shards(output, plan, check) == results
    s3 = clients.client("s3")
    s3.delete_object(Bucket="bp-resume", Key="runs/job/frames/0003.png")  # shard 1 (frames 3-4): a frame gone
    assert set(rendered_shards(output, plan, check)) == {0, 2, 3}  # shard 1 is rendered again
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda event_name, **_: calls.append(event_name.split(".")[-1]))
    assert rendered_shards(output, plan, check, [0]) == {0: results[0]}
    assert calls == ["GetObject", "HeadObject", "HeadObject"]  # its result, one HEAD per frame, nothing listed
    calls.clear()
    assert rendered_shards(output, plan, check, [1]) == {}
    assert calls == ["GetObject", "HeadObject"]  # frame 3 is not there: frame 4 is not asked for

"""The render plan's fingerprint ("planHash"): everything a frame depends on, nothing it does not; and which stored
shard results count as complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchpipe.pipelines.render import failed_shard, frames_of_shard, is_complete, preprocess
from tests.unit.test_frames import REAL_BLEND


@pytest.fixture
def blend(tmp_path: Path) -> Path:
    path = tmp_path / "scene.blend"
    path.write_bytes(REAL_BLEND.read_bytes())
    return path


def plan_of(blend: Path, **options: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"frames": (1, 8), "resolution_percentage": None, "samples": None} | options
    per_job = args.pop("frames_per_job", 2)
    return preprocess(blend, args.pop("job", "job"), per_job, **args)


def test_the_plan_hash_follows_what_the_frames_depend_on(blend: Path, tmp_path: Path) -> None:
    base = plan_of(blend)
    assert base["blendSha256"] and len(base["planHash"]) == 24
    moved = tmp_path / "elsewhere" / "renamed.blend"
    moved.parent.mkdir()
    moved.write_bytes(blend.read_bytes())
    assert plan_of(moved)["planHash"] == base["planHash"]  # the same bytes elsewhere: the same frames
    assert plan_of(blend, job="other")["planHash"] == base["planHash"]
    changed = {
        "samples": plan_of(blend, samples=2),
        "percentage": plan_of(blend, resolution_percentage=50),
        "range": plan_of(blend, frames=(1, 9)),
        "framesPerJob": plan_of(blend, frames_per_job=3),
    }
    edited = tmp_path / "edited.blend"
    edited.write_bytes(blend.read_bytes() + b"\0")  # one byte more: another file
    changed["bytes"] = plan_of(edited)
    hashes = {name: plan["planHash"] for name, plan in changed.items()}
    assert base["planHash"] not in hashes.values() and len(set(hashes.values())) == len(hashes)


def test_only_a_finished_result_of_the_same_plan_is_complete(blend: Path) -> None:
    plan = plan_of(blend)
    frames = frames_of_shard(plan, 1)
    done = {"jobName": "job", "shard": 1, "planHash": plan["planHash"], "frames": frames, "rendered": frames,
            "missing": [], "error": None}  # fmt: skip
    assert is_complete(plan, 1, done)
    assert not is_complete(plan, 1, None)
    assert not is_complete(plan, 2, done)
    assert not is_complete(plan, 1, {**done, "planHash": plan_of(blend, samples=3)["planHash"]})
    assert not is_complete(plan, 1, {k: v for k, v in done.items() if k != "planHash"})  # before plan hashes
    assert not is_complete(plan, 1, {**done, "rendered": frames[:1], "missing": frames[1:]})
    assert not is_complete(plan, 1, {**done, "error": "shard 1: Blender exited with code 1"})
    assert not is_complete(plan, 1, failed_shard(plan, 1, "boom"))

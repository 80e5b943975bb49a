"""The files a run writes stay byte-for-byte what earlier versions wrote, and earlier files read back the same.

tests/data/golden/ holds a small run of each pipeline as written before the documents were typed: a Monte Carlo run
(given Heston parameters, so no calibration; a non-ASCII id, a position's own dates, a tiny notional) with both
shards and with shard 1 missing (PARTIAL), and a render's plan, shard results and render.json (also with a failed
shard). Each is rebuilt here from its inputs and compared as bytes.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from batchpipe.layout import RunLayout
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines import render as rp
from batchpipe.pipelines.montecarlo import streaming
from batchpipe.pipelines.portfolio import load_portfolio
from batchpipe.pipelines.render_documents import RenderPlan, VideoInfo
from batchpipe.rendering.blenderlog import shard_error

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
MC = GOLDEN / "montecarlo"
RENDER = GOLDEN / "render"
RENDERER_VERSION = "3.4.1"  # the Blender that rendered the golden run's frames


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_montecarlo_plan_and_positions_are_the_same_bytes(tmp_path: Path) -> None:
    portfolio = load_portfolio(MC / "portfolio.json")
    layout = RunLayout.at(str(tmp_path))
    streaming.write_plan(layout, mc.PlanBuilder(portfolio, "golden", positions_per_job=2))
    assert _bytes(tmp_path / "positions.jsonl") == _bytes(MC / "positions.jsonl")
    assert _bytes(tmp_path / "plan.json") == _bytes(MC / "plan.json")


def _close(got: Any, want: Any) -> bool:
    """The same document, floats within 1e-12 relative (the paths' arithmetic may round differently elsewhere)."""
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(want, dict) and isinstance(got, dict):
        return list(got) == list(want) and all(_close(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want, strict=True))
    return type(got) is type(want) and got == want


@pytest.mark.parametrize("shard", [0, 1])
def test_montecarlo_shard_results_are_the_same_documents(tmp_path: Path, shard: int) -> None:
    for name in ("plan.json", "positions.jsonl"):
        shutil.copy(MC / name, tmp_path / name)
    layout = RunLayout.at(str(tmp_path))
    plan = streaming.read_plan(layout)
    result = mc.price_shard(plan, shard, streaming.read_shard_positions(layout, plan, shard))
    layout.write_json(layout.shard(shard), result)
    got = json.loads((tmp_path / layout.shard(shard)).read_text())
    assert _close(got, json.loads((MC / layout.shard(shard)).read_text()))


@pytest.mark.parametrize(("shards", "expected"), [([0, 1], MC), ([0], MC / "partial")])
def test_montecarlo_collate_writes_the_same_bytes(tmp_path: Path, shards: list[int], expected: Path) -> None:
    for name in ("plan.json", "positions.jsonl"):
        shutil.copy(MC / name, tmp_path / name)
    (tmp_path / "shards").mkdir()
    for s in shards:
        shutil.copy(MC / RunLayout.shard(s), tmp_path / RunLayout.shard(s))
    layout = RunLayout.at(str(tmp_path))
    streaming.collate(layout, streaming.read_plan(layout))
    for name in ("results.json", "results.csv", "summary.json"):
        assert _bytes(tmp_path / name) == _bytes(expected / name), name


def test_render_plan_is_the_same_bytes(tmp_path: Path) -> None:
    plan = rp.preprocess(RENDER / "scene.blend", "golden-render", 2, source="scene.blend", samples=1,
                         renderer_version=RENDERER_VERSION)  # fmt: skip
    layout = RunLayout.at(str(tmp_path))
    layout.write_json(layout.plan, plan)
    assert _bytes(tmp_path / "plan.json") == _bytes(RENDER / "plan.json")


@pytest.mark.parametrize("partial", [False, True])
def test_render_results_are_the_same_bytes(tmp_path: Path, partial: bool) -> None:
    layout = RunLayout.at(str(tmp_path))
    done = RunLayout.at(str(RENDER))
    plan = rp.read_plan(done)
    first, second = rp.shard_results(done, plan)
    if partial:
        message = shard_error(1, 1, ["Fra:6 Mem:9.04M", "Error: boom", "", "Blender quit"], {6: "no such file"},
                              "logs/shard-00001.log")  # fmt: skip
        assert message == (
            "shard 1: Error: boom; Blender exited with code 1; frames missing or invalid: 6 (no such file); "
            "log: logs/shard-00001.log"
        )
        second = rp.failed_shard(plan, 1, message)
        layout.write_json(layout.shard(1), second)
        assert _bytes(tmp_path / layout.shard(1)) == _bytes(RENDER / "partial" / "shard-00001.json")
        doc = rp.collate(plan, [first, second], None, None)
        expected = RENDER / "partial" / "render.json"
    else:
        video = json.loads((RENDER / "render.json").read_text())["videoInfo"]
        doc = rp.collate(plan, [first, second], VideoInfo.read(video), "output.mp4")
        expected = RENDER / "render.json"
    layout.write_json(layout.render_result, doc, indent=2)
    assert _bytes(tmp_path / "render.json") == _bytes(expected)
    for s in (0, 1):  # a stored shard result reads back and is written again as the same bytes
        layout.write_json(layout.shard(s), rp.shard_results(done, plan)[s])
        assert _bytes(tmp_path / layout.shard(s)) == _bytes(RENDER / layout.shard(s))


def test_a_render_plan_stored_before_the_versions_still_reads() -> None:
    """A plan without fileVersion and blender (as stored before they were recorded) reads back, so that a re-run
    finds the earlier plan's files and removes them: its hash never matches a new plan's (theirs covers Blender's
    version)."""
    earlier = rp.read_plan(RunLayout.at(str(RENDER / "before-versions")))
    assert isinstance(earlier, RenderPlan)
    assert (earlier.file_version, earlier.blender, earlier.blender_version) == (None, None, "3.4")
    assert earlier.plan_hash == "864be5b12e34f587be3f9600"
    now = rp.read_plan(RunLayout.at(str(RENDER)))
    assert (now.file_version, now.blender) == ("3.4", RENDERER_VERSION)
    assert now.model_copy(update={"file_version": None, "blender": None, "plan_hash": ""}) == earlier.model_copy(
        update={"plan_hash": ""}
    )
    assert now.plan_hash != earlier.plan_hash

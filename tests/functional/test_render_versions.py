"""Blender versions end to end, with real Blender: the version that saved a file is read from its header (plain,
gzip, zstd), a file saved by a newer Blender than the renderer is refused before anything is written (exit 2), and
the plan and render.json record both versions; frames another Blender rendered are not kept on resume."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from batchpipe.pipelines import render as rp
from batchpipe.pipelines.render_documents import RenderPlan
from batchpipe.rendering.blendfile import file_version, inspect_blend, read_header
from batchpipe.rendering.versions import blender_version, major_minor
from tests.conftest import DEBIAN_BLENDER, as_format_1, need_bpy, need_tool, with_version
from tests.functional.test_render import listing, names, render
from tests.functional.test_render_resume import identities, unchanged

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def renderer() -> str:
    """The version of the Blender batchpipe renders with: the pinned official build ("4.5.15")."""
    need_bpy()
    return importlib.metadata.version("bpy")


def test_a_blender_executable_says_its_version() -> None:
    run = subprocess.run([need_tool(DEBIAN_BLENDER), "--version"], capture_output=True, text=True, check=True)
    assert blender_version(DEBIAN_BLENDER) == run.stdout.splitlines()[0].split()[1]  # "3.4.1"


def test_a_file_saved_by_the_pinned_blender_is_refused_by_an_older_one(
    blend_scene: Any, renderer: str, tmp_path: Path
) -> None:
    blend = blend_scene(start=1, end=1)  # saved by the official build
    out = tmp_path / "out"
    result = render(blend, out, "--blender", DEBIAN_BLENDER)
    assert result.exit_code == 2, result.output + result.stderr
    older = blender_version(DEBIAN_BLENDER)
    saved = "{}.{}".format(*major_minor(renderer))
    assert result.stderr.strip().splitlines() == [
        f"error: {blend}: saved by Blender {saved}, newer than the renderer (Blender {older}): render it with "
        f"Blender {saved} or later (--blender PATH renders with another Blender)"
    ]
    assert not out.exists()


def test_files_saved_by_blender_plain_gzip_and_zstd(blend_scene: Any, renderer: str, tmp_path: Path) -> None:
    saved = "{}.{}".format(*major_minor(renderer))
    zstd, plain = blend_scene(compress=True), blend_scene(compress=False)
    gz = tmp_path / "gzip.blend"  # Blender before 3.0 compressed with gzip: the same file, so compressed
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for path, compression in [(plain, "none"), (gz, "gzip"), (zstd, "zstd")]:
        assert file_version(path) == saved, path
        header = read_header(path)
        assert (header.format_version, header.pointer_size, header.little_endian) == (0, 8, True)
        info = inspect_blend(path)
        assert (info.compression, info.blender_version) == (compression, saved)
        assert info.min_version is not None and major_minor(info.min_version) <= major_minor(saved)


@pytest.mark.parametrize(("kind", "claimed"), [("4.99", "4.99"), ("format-1", "5.0")])
def test_a_file_newer_than_the_renderer_is_exit_2_and_writes_nothing(
    blend_scene: Any, renderer: str, tmp_path: Path, kind: str, claimed: str
) -> None:
    data = blend_scene(compress=False).read_bytes()
    newer = tmp_path / "scene.blend"
    newer.write_bytes(with_version(data, b"499") if kind == "4.99" else as_format_1(data))
    out = tmp_path / "out"
    result = render(newer, out)
    assert result.exit_code == 2, result.output + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {newer}: saved by Blender {claimed}, newer than the renderer (Blender {renderer}): render it with "
        f"Blender {claimed} or later (--blender PATH renders with another Blender)"
    ]
    assert not out.exists()


def test_plan_and_result_record_both_versions_and_another_blenders_frames_are_rendered_again(
    blend_scene: Any, renderer: str, tmp_path: Path
) -> None:
    blend = blend_scene(start=1, end=3)
    out = tmp_path / "out"
    first = render(blend, out, "--frames", "1-2")
    assert first.exit_code == 0, first.output + first.stderr
    saved = "{}.{}".format(*major_minor(renderer))
    plan = json.loads((out / "plan.json").read_text())
    assert (plan["fileVersion"], plan["blender"]) == (saved, renderer)
    assert list(plan)[-4:] == ["fileVersion", "blender", "pack", "planHash"]
    doc = json.loads((out / "render.json").read_text())
    assert (doc["blender"], doc["fileVersion"]) == (renderer, saved) and list(doc)[-2:] == ["blender", "fileVersion"]

    # what the same run would have left had another Blender rendered it: its plan and results say so
    other = RenderPlan.read(plan).model_copy(update={"blender": "3.3.0"})
    other = other.model_copy(update={"plan_hash": rp.plan_hash(other)})
    (out / "plan.json").write_text(json.dumps(other.stored()))
    for result in (out / "shards").iterdir():
        (result).write_text(json.dumps(json.loads(result.read_text()) | {"planHash": other.plan_hash}))
    before = identities(out)
    again = render(blend, out, "--frames", "1-2")
    assert again.exit_code == 0, again.output + again.stderr
    assert "resuming" not in again.stderr
    assert unchanged(before, identities(out)) == set()  # every frame rendered again, by this Blender
    assert json.loads((out / "plan.json").read_text())["blender"] == renderer


def test_a_plan_stored_before_the_versions_is_an_earlier_plan_whose_files_go(blend_scene: Any, tmp_path: Path) -> None:
    blend = blend_scene(start=1, end=3)
    out = tmp_path / "out"
    assert render(blend, out, "--frames", "1-3").exit_code == 0
    plan = json.loads((out / "plan.json").read_text())
    (out / "plan.json").write_text(json.dumps({k: v for k, v in plan.items() if k not in ("fileVersion", "blender")}))
    second = render(blend, out, "--frames", "2-3")
    assert second.exit_code == 0, second.output + second.stderr
    assert "resuming" not in second.stderr
    assert listing(out / "frames") == names(2, 3)  # frame 1 of the earlier plan is gone
    assert listing(out / "shards") == ["shard-00000.json", "shard-00001.json"]

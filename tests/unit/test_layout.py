"""The run layout's names are the ones every other reader spells itself: the state machines' Lambda (self-contained,
so it cannot import them), the pipeline catalog and the run directory's staged files; and the store is chosen
once, from the output location."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from batchpipe import catalog, rundir, storage
from batchpipe.aws import handlers
from batchpipe.layout import RunLayout
from batchpipe.storage import LocalStore, S3Store, store_for


def prepared(pipeline: str) -> dict[str, Any]:
    event = {"jobName": "job", "inputUri": "s3://b/in", "outputUri": "s3://b/runs/job/",
             "jobDefinitionArn": "def", "jobQueueArn": "queue", "framesPerJob": 1}  # fmt: skip
    return handlers.prepare({"pipeline": pipeline, "input": event})


@pytest.mark.parametrize("pipeline", ["montecarlo", "render"])
def test_the_lambda_names_the_plan_and_the_result_as_the_layout_does(pipeline: str) -> None:
    layout = RunLayout.at("s3://b/runs/job")
    result = {"montecarlo": RunLayout.results, "render": RunLayout.render_result}[pipeline]
    assert handlers.RESULTS[pipeline] == result
    out = prepared(pipeline)
    assert out["planUri"] == layout.uri(layout.plan)
    assert out["resultUri"] == layout.uri(result)


def test_the_lambda_reads_the_montecarlo_summary_the_layout_names(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    monkeypatch.setattr(handlers, "_read_json", lambda uri: read.append(uri) or {"status": "SUCCEEDED"})
    layout = RunLayout.at("s3://b/runs/job")
    handlers.summary({"resultUri": layout.uri(layout.results)})
    handlers.summary({"resultUri": layout.uri(layout.render_result)})
    assert read == [layout.uri(layout.summary), layout.uri(layout.render_result)]


def test_the_catalog_and_the_run_directory_name_the_layouts_files() -> None:
    mc, render = catalog.pipeline("montecarlo"), catalog.pipeline("render")
    assert (mc.result_file, mc.status_file) == (RunLayout.results, RunLayout.summary)
    assert mc.downloads == (RunLayout.results, RunLayout.results_csv, RunLayout.scenarios_csv)
    assert (render.result_file, render.status_file) == (RunLayout.render_result, RunLayout.render_result)
    assert render.downloads == (RunLayout.render_result, RunLayout.video)
    staged = {RunLayout.plan, RunLayout.positions, RunLayout.results, RunLayout.results_csv, RunLayout.summary,
              RunLayout.render_result}  # fmt: skip
    assert staged == rundir.STAGED


def test_names_under_the_layout() -> None:
    assert RunLayout.shard(7) == "shards/shard-00007.json"
    assert RunLayout.frame(12) == "frames/0012.png"
    assert RunLayout.log(3) == "logs/shard-00003.log"
    assert RunLayout.at("s3://b/run/").uri(RunLayout.shard(1)) == "s3://b/run/shards/shard-00001.json"


def test_the_store_is_chosen_from_the_location(tmp_path: Path) -> None:
    assert isinstance(store_for("s3://b/run"), S3Store)
    assert isinstance(store_for(str(tmp_path)), LocalStore)


def test_a_directory_store_writes_atomically_with_the_umasks_mode(tmp_path: Path) -> None:
    store = store_for(str(tmp_path / "run"))
    store.write_text("shards/shard-00000.json", "{}\n")
    path = tmp_path / "run" / "shards" / "shard-00000.json"
    assert path.read_text() == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == storage.file_mode()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left
    assert store.list_names("shards") == {path.name}
    assert store.read_range("shards/shard-00000.json", 0, 1) == b"{"


def test_a_directory_store_works_in_place(tmp_path: Path) -> None:
    store = store_for(str(tmp_path))
    with store.local_dir("frames", fetch=["0001.png"]) as frames:
        assert frames == tmp_path / "frames" and frames.is_dir()
        (frames / "0001.png").write_bytes(b"png")
        store.publish(RunLayout.frame(1), frames / "0001.png")  # already where it belongs: nothing moves
    assert (tmp_path / "frames" / "0001.png").read_bytes() == b"png"
    with store.local_copy("frames/0001.png") as path:
        assert path == tmp_path / "frames" / "0001.png"
    assert store.local_file("frames/0001.png") == path
    assert store_for("s3://b/run").local_file("frames/0001.png") is None

"""The render tail's frame count: the plan read once, then ONE paginated ListObjectsV2 of the frames/ prefix per poll
(1,000 keys a page), never a call per frame. botocore's Stubber fails on any call not queued here."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from batchpipe.aws.stack import StackOutputs
from batchpipe.backends.aws import frame_progress

OUTPUTS = StackOutputs(
    "bucket", "queue", "pricer-def", "render-def", "mc-sm", "render-sm", "pricer", "render", "od-queue"
)
PLAN = {"frameStart": 1, "frameEnd": 2500, "frameStep": 1, "frames": 2500}


@pytest.fixture
def s3(stubs: dict[str, Stubber]) -> Stubber:
    return stubs["s3"]


def page(names: list[str], token: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"Contents": [{"Key": f"runs/r/frames/{n}"} for n in names], "KeyCount": len(names),
                           "IsTruncated": token is not None}  # fmt: skip
    if token:
        doc["NextContinuationToken"] = token
    return doc


def listing_pages(stub: Stubber, pages: list[tuple[list[str], str | None]]) -> None:
    token = None
    for names, next_token in pages:
        params = {"Bucket": "bucket", "Prefix": "runs/r/frames/", "MaxKeys": 1000}
        if token:
            params["ContinuationToken"] = token
        stub.add_response("list_objects_v2", page(names, next_token), params)
        token = next_token


def test_frames_are_counted_from_one_paginated_listing_per_poll(s3: Stubber) -> None:
    body = json.dumps(PLAN).encode()
    s3.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))},
                    {"Bucket": "bucket", "Key": "runs/r/plan.json"})  # fmt: skip
    rendered = [f"{f:04d}.png" for f in range(1, 2001)]
    # 2,000 frames and a stray key: two pages of 1,000 and one of 1; the stray key is not a frame of the plan
    listing_pages(s3, [(rendered[:1000], "t1"), (rendered[1000:], "t2"), (["notes.txt"], None)])
    cache: dict[str, set[str]] = {}
    assert frame_progress(OUTPUTS, "r", cache) == {"rendered": 2000, "total": 2500}
    # the next poll: the plan is not read again, the listing is
    everything = [f"{f:04d}.png" for f in range(1, 2501)]
    listing_pages(s3, [(everything[:1000], "t1"), (everything[1000:2000], "t2"), (everything[2000:], None)])
    assert frame_progress(OUTPUTS, "r", cache) == {"rendered": 2500, "total": 2500}


def test_no_plan_yet_means_no_count_and_no_listing(s3: Stubber) -> None:
    s3.add_client_error("get_object", "NoSuchKey", http_status_code=404,
                        expected_params={"Bucket": "bucket", "Key": "runs/r/plan.json"})  # fmt: skip
    assert frame_progress(OUTPUTS, "r", {}) is None

"""The video link `results` prints: SigV4 on the regional virtual-hosted endpoint, for us-east-1 too (the default
client signed SigV2 for https://BUCKET.s3.amazonaws.com/, which buckets made since June 2020 refuse). Presigning is
local: no request is made, no network needed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from batchpipe.aws import clients, objects
from batchpipe.aws.stack import StackOutputs

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SIGV4 = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}
OUTPUTS = StackOutputs(
    "batchpipe-databucket-1a2b3c", "queue", "pricer-def", "render-def", "mc", "render", "p", "r", "od-queue"
)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    nowhere = str(tmp_path / "none")
    for key, value in {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_CONFIG_FILE": nowhere,
                       "AWS_SHARED_CREDENTIALS_FILE": nowhere}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    yield
    clients.configure()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_the_video_link_is_sigv4_on_the_regional_virtual_hosted_endpoint(
    credentials: None, region: str, caplog: pytest.LogCaptureFixture
) -> None:
    clients.configure(region=region)
    with caplog.at_level(logging.DEBUG):
        uri, link = objects.video_link(OUTPUTS, "scene-1", expires=900)
    assert uri == "s3://batchpipe-databucket-1a2b3c/runs/scene-1/output.mp4"
    url = urlsplit(link)
    assert (url.scheme, url.netloc, url.path) == ("https", f"batchpipe-databucket-1a2b3c.s3.{region}.amazonaws.com",
                                                  "/runs/scene-1/output.mp4")  # fmt: skip
    query = {k: v for k, [v] in parse_qs(url.query, strict_parsing=True).items()}
    assert set(query) == SIGV4  # no AWSAccessKeyId and Signature (SigV2)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed).total_seconds()) < 60
    assert query["X-Amz-Credential"] == f"{KEY_ID}/{signed:%Y%m%d}/{region}/s3/aws4_request"
    assert query["X-Amz-Expires"] == "900" and query["X-Amz-SignedHeaders"] == "host"
    assert len(query["X-Amz-Signature"]) == 64
    assert SECRET not in link and SECRET not in caplog.text  # the secret signs, and is never written anywhere

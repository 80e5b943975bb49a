"""An AWS endpoint that cannot be reached, or that is not AWS, through the real command in its own process: one line
on stderr naming the endpoint and what to check, exit code 2, within seconds (it hung 11-31 s in ten adaptive
retries and printed three chained tracebacks). Everything here is on 127.0.0.1 or fails name resolution."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import batchpipe
from tests.aws.conftest import free_port

HANG = 20.0  # seconds: generous for a slow machine; the point is no 30 s hang


def batchpipe_command(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    nowhere = str(tmp_path / "none")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATCHPIPE_"))}
    environ |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": nowhere, "AWS_SHARED_CREDENTIALS_FILE": nowhere,
                "PYTHONPATH": str(Path(batchpipe.__file__).parents[1]), **env}  # fmt: skip
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", "from batchpipe.cli import main; main()", *args], env=environ,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return done, time.monotonic() - started


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.splitlines()
    return line


def test_a_closed_port_is_one_line_naming_it_within_seconds(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    done, took = batchpipe_command(tmp_path, "status", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    line = one_line(done)
    assert line == (f"error: cannot reach http://127.0.0.1:{port}: could not connect "
                    "(check AWS_ENDPOINT_URL: is the service running there?)")  # fmt: skip
    assert took < HANG


def test_a_region_that_does_not_exist_is_one_line_naming_the_endpoint(tmp_path: Path) -> None:
    done, took = batchpipe_command(tmp_path, "status", "--region", "not-a-region")
    line = one_line(done)
    assert line.startswith("error: cannot reach https://cloudformation.not-a-region.amazonaws.com: ")
    assert "region 'not-a-region'" in line and took < HANG


def test_a_malformed_region_name_is_one_line(tmp_path: Path) -> None:
    done, _ = batchpipe_command(tmp_path, "status", "--region", "eu west 1")
    assert one_line(done) == ("error: 'eu west 1' is not a region name (check --region or AWS_DEFAULT_REGION, "
                              "e.g. eu-west-1)")  # fmt: skip


@pytest.fixture
def not_aws() -> Iterator[tuple[str, dict[str, Any]]]:
    """An HTTP server on 127.0.0.1 that answers every request with what `answer` holds (status, type, body)."""
    answer: dict[str, Any] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = answer["body"]
            self.send_response(answer["status"])
            self.send_header("Content-Type", answer["type"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answer
    server.shutdown()
    server.server_close()


PAGE = b"<!DOCTYPE html>\n<html><body><h1>Welcome to nginx!</h1></body></html>"


@pytest.mark.parametrize(("status", "kind", "body", "what"), [
    (200, "text/html", PAGE, "a web page (HTTP 200)"),  # botocore: KeyError 'DescribeStacksResult'
    (404, "text/html", PAGE, "a web page (HTTP 404)"),  # botocore: ClientError (Unknown)
    (502, "text/html", PAGE, "a web page (HTTP 502)"),  # botocore: retried, then ClientError (502)
    (200, "text/plain", b"<<not xml", "an answer that does not parse as AWS's"),  # botocore: ResponseParserError
], ids=["html-200", "html-404", "html-502", "not-xml"])  # fmt: skip
def test_an_endpoint_that_is_not_aws_is_one_line_naming_it(
    tmp_path: Path, not_aws: tuple[str, dict[str, Any]], status: int, kind: str, body: bytes, what: str
) -> None:
    url, answer = not_aws
    answer.update(status=status, type=kind, body=body)
    done, took = batchpipe_command(tmp_path, "status", AWS_ENDPOINT_URL=url)
    assert one_line(done) == f"error: {url} did not answer as AWS: {what} (check AWS_ENDPOINT_URL, --region and " \
                             "any HTTPS_PROXY)"  # fmt: skip
    assert took < HANG

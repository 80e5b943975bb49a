"""`stubs`: botocore's Stubber on the clients batchpipe itself makes. `clients.client(service)` is cached, so the
client stubbed here is the very one every module of batchpipe.aws is handed: nothing is patched.

`server`: a moto server on 127.0.0.1 for a test module (its URL, for AWS_ENDPOINT_URL), reset by whoever uses it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from batchpipe.aws import clients
from tests.aws.moto_stack import stack  # noqa: F401 (a fixture: moto's Step Functions running the pipelines)

SERVICES = ("s3", "stepfunctions", "batch", "cloudformation", "logs")


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Stubber]]:
    """A Stubber for each service, active: a call not queued fails at once (it never reaches AWS)."""
    nowhere = str(tmp_path / "none")
    for key, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_CONFIG_FILE": nowhere,
                       "AWS_SHARED_CREDENTIALS_FILE": nowhere}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    clients.configure(region="us-east-1")
    stubbers = {service: Stubber(clients.client(service)) for service in SERVICES}
    for s in stubbers.values():
        s.activate()
    try:
        yield stubbers
        for s in stubbers.values():
            s.assert_no_pending_responses()
    finally:
        for s in stubbers.values():
            s.deactivate()
        clients.configure()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    os.environ["MOTO_PORT"] = str(port)  # moto's server must know its own port
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()

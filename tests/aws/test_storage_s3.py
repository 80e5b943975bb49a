"""storage over S3 (moto in-process): listings go past 1,000 keys, ranged and streamed reads, missing objects."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from batchpipe import storage


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import moto

    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(key, value)
    from batchpipe.aws import clients

    clients.client.cache_clear()
    with moto.mock_aws():
        clients.client("s3").create_bucket(Bucket="bp-storage")
        yield "s3://bp-storage"
    clients.client.cache_clear()


def test_listing_goes_past_1000_keys_and_stays_under_its_prefix(bucket: str) -> None:
    names = [f"{f:04d}.png" for f in range(1, 1011)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: storage.write_bytes(f"{bucket}/run/frames/{n}", b"x"), names))
    storage.write_bytes(f"{bucket}/run/frames-old/0001.png", b"x")
    storage.write_bytes(f"{bucket}/other/frames/9999.png", b"x")
    assert storage.list_names(f"{bucket}/run/frames") == set(names)
    assert storage.list_names(f"{bucket}/run/nothing") == set()


def test_ranged_streamed_and_missing_reads(bucket: str) -> None:
    uri = f"{bucket}/run/positions.jsonl"
    storage.write_bytes(uri, b"".join(b'{"i":%d}\n' % i for i in range(5000)))
    assert storage.read_range(uri, 8, 16) == b'{"i":1}\n'
    assert storage.read_range(uri, 5, 5) == b""
    assert list(storage.read_lines(uri)) == [b'{"i":%d}' % i for i in range(5000)]
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(f"{bucket}/run/missing.json")
    with pytest.raises(FileNotFoundError):
        list(storage.read_lines(f"{bucket}/run/missing.json"))


def test_the_clients_pool_holds_a_connection_for_every_concurrent_read(bucket: str) -> None:
    from batchpipe.aws import clients

    client = clients.client("s3")
    # fewer pooled connections than reads in flight: each read past the pool opens (and on real S3 handshakes) a
    # new connection and drops it (botocore's default pool of 10 opened 370 connections for a 2,000-shard collate)
    assert client.meta.config.max_pool_connections >= storage.S3Store.read_concurrency

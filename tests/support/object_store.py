"""A real S3 API server on loopback (moto) for tests of object-store sources, and buckets
filled in it."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from support.server import free_port

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
PARTITION = "aws"  # moto keeps S3's buckets by account and partition


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server on a free loopback port while the block runs; its endpoint."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 client of the server at ``endpoint``."""
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip


def fill_bucket(endpoint: str, bucket: str, files: dict[str, bytes]) -> None:
    """Make ``bucket`` at ``endpoint`` holding ``files`` (key -> bytes). The objects go
    straight into the server's store (it runs in this process): a request each would take
    seconds for the thousands a test of paging needs."""
    s3_client(endpoint).create_bucket(Bucket=bucket)
    store = s3_backends[DEFAULT_ACCOUNT_ID][PARTITION]
    for key, data in files.items():
        store.put_object(bucket, key, data)

"""The object store: the SigV4 signer against AWS's published example, the filesystem store, and
the S3 store against a small S3-compatible server on localhost (the true edge)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from crm_kit.objectstore import (
    FilesystemStore,
    ObjectNotFound,
    S3Store,
    SigV4Credentials,
    object_store_from_url,
    sign_v4,
)
from crm_kit.settings import ServiceSettings

pytestmark = pytest.mark.unit

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_signer_matches_aws_get_object_example() -> None:
    # "Examples: Signature Calculations in AWS Signature Version 4", GET Object.
    empty = hashlib.sha256(b"").hexdigest()
    authorization = sign_v4(
        SigV4Credentials(ACCESS_KEY, SECRET_KEY, "us-east-1"),
        "GET",
        "/test.txt",
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": empty,
            "x-amz-date": "20130524T000000Z",
        },
        empty,
        "20130524T000000Z",
    )
    assert authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_credentials_never_show_the_secret() -> None:
    assert SECRET_KEY not in repr(SigV4Credentials(ACCESS_KEY, SECRET_KEY, "us-east-1"))
    store = S3Store("https://s3.example.com", "bucket", "il-central-1", ACCESS_KEY, SECRET_KEY)
    assert SECRET_KEY not in repr(store)
    settings = ServiceSettings(
        service_name="t", object_store_url="s3://b?endpoint=https://h", object_store_secret_access_key=SECRET_KEY
    )
    assert SECRET_KEY not in repr(settings)
    assert settings.secrets() == {"object_store_secret_access_key": SECRET_KEY}


def test_production_refuses_an_empty_s3_secret() -> None:
    with pytest.raises(ValueError, match="object_store_secret_access_key"):
        ServiceSettings(service_name="t", environment="production", object_store_url="s3://b?endpoint=https://h")


async def test_filesystem_store_round_trip(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    await store.put("tickets/t1/a.pdf", b"%PDF-1.4 hello", "application/pdf")
    assert await store.get("tickets/t1/a.pdf") == (b"%PDF-1.4 hello", "application/pdf")
    await store.put("tickets/t1/a.pdf", b"again", "text/plain")
    assert await store.get("tickets/t1/a.pdf") == (b"again", "text/plain")
    # No temporary file is left behind by the atomic writes.
    assert sorted(p.name for p in (tmp_path / "tickets" / "t1").iterdir()) == ["a.pdf", "a.pdf.type.json"]
    await store.delete("tickets/t1/a.pdf")
    with pytest.raises(ObjectNotFound):
        await store.get("tickets/t1/a.pdf")
    await store.delete("tickets/t1/a.pdf")  # deleting a missing object is not an error


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a b", "a//b", "", "a/./b", "tickets/\u05e7"])
async def test_filesystem_store_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        await FilesystemStore(tmp_path).put(key, b"x", "text/plain")


def test_object_store_from_url(tmp_path: Path) -> None:
    fs = object_store_from_url(f"file://{tmp_path}")
    assert isinstance(fs, FilesystemStore) and fs.root == tmp_path
    s3 = object_store_from_url(
        "s3://crm-files?endpoint=https://minio.internal:9000&region=il-central-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    assert isinstance(s3, S3Store)
    assert (s3.endpoint, s3.bucket, s3.credentials.region) == (
        "https://minio.internal:9000",
        "crm-files",
        "il-central-1",
    )
    for wrong in ("file://relative/path", "s3://bucket", "ftp://x/y"):
        with pytest.raises(ValueError):
            object_store_from_url(wrong, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
    with pytest.raises(ValueError, match="access key"):
        object_store_from_url("s3://b?endpoint=https://h")


_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/\d{8}/il-central-1/s3/aws4_request,"
    r"SignedHeaders=([a-z0-9;-]+),Signature=[0-9a-f]{64}$"
)


@pytest.fixture
async def fake_s3() -> AsyncIterator[tuple[str, dict[str, tuple[bytes, str]]]]:
    """A tiny S3-compatible server: checks each request is signed (header shape, payload hash)
    and keeps objects in a dict by path."""
    objects: dict[str, tuple[bytes, str]] = {}

    async def handle(request: web.Request) -> web.Response:
        match = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
        if match is None or "x-amz-date" not in match.group(1) or "host" not in match.group(1):
            return web.Response(status=403, text="SignatureDoesNotMatch")
        body = await request.read()
        if request.headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return web.Response(status=400, text="XAmzContentSHA256Mismatch")
        path = request.path
        if request.method == "PUT":
            objects[path] = (body, request.headers.get("Content-Type", ""))
            return web.Response(status=200)
        if request.method == "GET":
            if path not in objects:
                return web.Response(status=404, text="NoSuchKey")
            data, content_type = objects[path]
            return web.Response(body=data, headers={"Content-Type": content_type})
        objects.pop(path, None)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", objects
    finally:
        await runner.cleanup()


async def test_s3_store_put_get_delete(fake_s3: tuple[str, dict[str, tuple[bytes, str]]]) -> None:
    endpoint, objects = fake_s3
    store = object_store_from_url(
        f"s3://crm-files?endpoint={endpoint}&region=il-central-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    data = bytes(range(256)) * 100
    await store.put("tickets/t1/photo", data, "image/png")
    assert objects["/crm-files/tickets/t1/photo"] == (data, "image/png")
    assert await store.get("tickets/t1/photo") == (data, "image/png")
    await store.delete("tickets/t1/photo")
    assert objects == {}
    with pytest.raises(ObjectNotFound):
        await store.get("tickets/t1/photo")

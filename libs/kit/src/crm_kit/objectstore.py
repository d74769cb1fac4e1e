"""Object storage for files too large for a database row (ticket attachments): one small
interface, a filesystem store for a laptop (`make run`), and an S3-compatible store for a cluster.

The S3 store speaks the REST API itself (path-style URLs, AWS Signature Version 4) over httpx: three
calls (PUT, GET, DELETE an object) do not justify an SDK and its dependency tree, and any
S3-compatible server (MinIO, Ceph, a cloud's S3 API) answers the same requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, quote, urlsplit

import httpx

# Keys are relative paths of these characters only: no traversal, no shell or URL surprises.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_TYPE_SUFFIX = ".type.json"
UNSIGNED_EMPTY = hashlib.sha256(b"").hexdigest()


class ObjectNotFound(LookupError):
    """The store holds no object under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object {key!r} in the object store")
        self.key = key


class ObjectStoreError(RuntimeError):
    """The store refused or failed a request (other than a missing object)."""


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> tuple[bytes, str]: ...

    async def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    """The key if it is a safe relative path, else ValueError."""
    if not _SAFE_KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"object key {key!r} must be a relative path of [A-Za-z0-9/_.-] without '..'")
    return key


class FilesystemStore:
    """Objects as files under root, each with a JSON sidecar holding its content type. A write goes
    to a temporary file renamed into place, so a reader never sees half an object."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @staticmethod
    def _write_atomically(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        # The sidecar first: an object file present means its type is known.
        self._write_atomically(
            path.with_name(path.name + _TYPE_SUFFIX), json.dumps({"content_type": content_type}).encode()
        )
        self._write_atomically(path, data)

    def _get(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        try:
            data = path.read_bytes()
            meta = json.loads(path.with_name(path.name + _TYPE_SUFFIX).read_bytes())
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        return data, str(meta.get("content_type", "application/octet-stream"))

    def _delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + _TYPE_SUFFIX).unlink(missing_ok=True)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, key, data, content_type)

    async def get(self, key: str) -> tuple[bytes, str]:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)


# ---------------------------------------------------------------- AWS Signature Version 4


@dataclass(frozen=True)
class SigV4Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    service: str = "s3"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    k_date = _hmac(("AWS4" + secret_access_key).encode(), date)
    return _hmac(_hmac(_hmac(k_date, region), service), "aws4_request")


def sign_v4(
    credentials: SigV4Credentials,
    method: str,
    path: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    amz_date: str,
    query: str = "",
) -> str:
    """The Authorization header value for a request. `headers` are the ones to sign (host,
    x-amz-date and x-amz-content-sha256 among them); `path` is already URI-encoded."""
    canonical = {name.lower().strip(): " ".join(value.strip().split()) for name, value in headers.items()}
    signed = ";".join(sorted(canonical))
    canonical_request = "\n".join(
        [
            method,
            path or "/",
            query,
            "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical)),
            signed,
            payload_sha256,
        ]
    )
    date = amz_date[:8]
    scope = f"{date}/{credentials.region}/{credentials.service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = signing_key(credentials.secret_access_key, date, credentials.region, credentials.service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope},SignedHeaders={signed},Signature={signature}"
    )


class S3Store:
    """Objects in one bucket of an S3-compatible server, path-style (`endpoint/bucket/key`), which
    every S3-compatible server accepts whatever its DNS."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        timeout_seconds: float = 30.0,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the S3 endpoint must be an http(s) URL, not {endpoint_url!r}")
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc
        self.bucket = bucket
        self.credentials = SigV4Credentials(access_key_id, secret_access_key, region)
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r}, region={self.credentials.region!r})"

    def _signed(self, method: str, key: str, data: bytes, extra: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        path = "/" + quote(self.bucket, safe="") + "/" + quote(check_key(key), safe="/")
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        payload_sha256 = hashlib.sha256(data).hexdigest()
        headers = {"host": self.host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256, **extra}
        headers["authorization"] = sign_v4(self.credentials, method, path, headers, payload_sha256, amz_date)
        return self.endpoint + path, headers

    async def _request(
        self, method: str, key: str, data: bytes = b"", extra: Mapping[str, str] | None = None
    ) -> httpx.Response:
        url, headers = self._signed(method, key, data, extra or {})
        async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
            return await client.request(method, url, headers=headers, content=data if data else None)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        response = await self._request("PUT", key, data, {"content-type": content_type})
        if response.status_code // 100 != 2:
            raise ObjectStoreError(f"PUT {key!r}: the object store answered {response.status_code}")

    async def get(self, key: str) -> tuple[bytes, str]:
        response = await self._request("GET", key)
        if response.status_code == 404:
            raise ObjectNotFound(key)
        if response.status_code // 100 != 2:
            raise ObjectStoreError(f"GET {key!r}: the object store answered {response.status_code}")
        return response.content, response.headers.get("content-type", "application/octet-stream")

    async def delete(self, key: str) -> None:
        response = await self._request("DELETE", key)
        # S3 answers 204 for a missing key too: a delete is idempotent.
        if response.status_code // 100 != 2 and response.status_code != 404:
            raise ObjectStoreError(f"DELETE {key!r}: the object store answered {response.status_code}")


def object_store_from_url(url: str, *, access_key_id: str = "", secret_access_key: str = "") -> ObjectStore:
    """`file:///absolute/path` → FilesystemStore; `s3://bucket?endpoint=https://host:port&region=…`
    → S3Store (region defaults to us-east-1)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"a file object store URL is file:///absolute/path, not {url!r}")
        return FilesystemStore(Path(parts.path))
    if parts.scheme == "s3":
        query = parse_qs(parts.query)
        endpoint = query.get("endpoint", [""])[0]
        if not parts.netloc or not endpoint:
            raise ValueError(f"an S3 object store URL is s3://bucket?endpoint=https://host:port&region=…, not {url!r}")
        if not access_key_id or not secret_access_key:
            raise ValueError("an S3 object store needs an access key id and a secret access key")
        return S3Store(endpoint, parts.netloc, query.get("region", ["us-east-1"])[0], access_key_id, secret_access_key)
    raise ValueError(f"object store URLs are file:// or s3://, not {url!r}")

"""S3-compatible object storage for pushed evidence (AWS S3, Cloudflare R2, MinIO) via boto3.

The engine never receives a pushed file through its API: it presigns a PUT for the client, then
reads the stored object back to hash it. Presigned URLs are signed for the address clients use
(EVIDENCE_STORAGE_PUBLIC_ENDPOINT_URL), reads and writes go to EVIDENCE_STORAGE_ENDPOINT_URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from engine.errors import StorageUnavailable
from engine.settings import Settings

CHUNK = 1024 * 1024
DELETE_BATCH = 1000  # the most keys one S3 DeleteObjects request takes
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
CHANGED_CODES = {"PreconditionFailed", "412"}
REFUSED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


class ObjectMissing(Exception):
    """Nothing is stored under the key (never uploaded, or deleted)."""


class ObjectChanged(Exception):
    """The object was replaced between reading it and copying it."""


class ObjectTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"object of {size} bytes or more")
        self.size = size


@dataclass(frozen=True)
class Digest:
    """What the engine itself computed from the stored bytes."""

    sha256: str
    size: int
    etag: str | None


def is_configured(settings: Settings) -> bool:
    return bool(settings.storage_bucket)


@dataclass(frozen=True)
class Store:
    """One bucket: `client` talks to the store, `presigner` signs URLs for clients."""

    client: Any
    presigner: Any
    bucket: str
    where: str

    def presign_put(self, key: str, content_type: str, expires: int) -> str:
        url: str = self.presigner.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=expires, HttpMethod="PUT")
        return url

    def presign_get(self, key: str, *, filename: str, content_type: str, expires: int) -> str:
        url: str = self.presigner.generate_presigned_url(
            "get_object", Params={
                "Bucket": self.bucket, "Key": key, "ResponseContentType": content_type,
                "ResponseContentDisposition": f'attachment; filename="{filename}"'},
            ExpiresIn=expires, HttpMethod="GET")
        return url

    def digest(self, key: str, max_size: int) -> Digest:
        """Stream the object once, computing its SHA-256 and size; stop past `max_size`."""
        with self._errors():
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            try:
                if int(response.get("ContentLength") or 0) > max_size:
                    raise ObjectTooLarge(int(response["ContentLength"]))
                sha, size = hashlib.sha256(), 0
                for chunk in body.iter_chunks(CHUNK):
                    size += len(chunk)
                    if size > max_size:
                        raise ObjectTooLarge(size)
                    sha.update(chunk)
            finally:
                body.close()
        return Digest(sha.hexdigest(), size, response.get("ETag"))

    def put(self, key: str, body: IO[bytes], content_type: str) -> None:
        """Store `body` under `key`, as a client's PUT to a presigned URL does (the console
        uploads a file it received on the client's behalf)."""
        with self._errors():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                   ContentType=content_type)

    def copy(self, source: str, target: str, *, if_match: str | None) -> None:
        """Server-side copy; with `if_match`, only if the source still has that ETag."""
        extra = {"CopySourceIfMatch": if_match} if if_match else {}
        with self._errors():
            self.client.copy_object(Bucket=self.bucket, Key=target, MetadataDirective="COPY",
                                    CopySource={"Bucket": self.bucket, "Key": source}, **extra)

    def delete(self, key: str) -> None:
        with self._errors():
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete objects, up to 1,000 a request; keys already gone count as deleted."""
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = keys[start:start + DELETE_BATCH]
            with self._errors():
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in chunk], "Quiet": True})
            failed = [e for e in answer.get("Errors", [])
                      if str(e.get("Code")) not in MISSING_CODES]
            if failed:
                raise StorageUnavailable(
                    f"the evidence store at {self.where} did not delete {len(failed)} "
                    f"object(s): {failed[0].get('Code')} {failed[0].get('Message', '')}".rstrip(),
                    code="storage_unavailable")

    def check_bucket(self) -> None:
        """One cheap call, so a client is told now, not at its PUT, that storage is down."""
        with self._errors():
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in MISSING_CODES:
                    exc.response["Error"]["Code"] = "NoSuchBucket"
                raise

    def exists(self, key: str) -> bool:
        try:
            with self._errors():
                self.client.head_object(Bucket=self.bucket, Key=key)
        except ObjectMissing:
            return False
        return True

    def read(self, key: str) -> bytes:
        """The whole object (a stored snapshot: small, compressed); ObjectMissing if gone."""
        with self._errors():
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        return data

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Storage failures become typed errors; messages never carry credentials."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in MISSING_CODES:
                raise ObjectMissing(code) from None
            if code in CHANGED_CODES:
                raise ObjectChanged(code) from None
            if code == "NoSuchBucket":
                raise StorageUnavailable(
                    f"the evidence bucket {self.bucket!r} does not exist at {self.where}; "
                    "create it (docker compose does, with minio-init)",
                    code="storage_unavailable") from None
            if code in REFUSED_CODES:
                raise StorageUnavailable(
                    f"the evidence store at {self.where} refused the engine's credentials "
                    f"({code}); check EVIDENCE_STORAGE_ACCESS_KEY_ID / _SECRET_ACCESS_KEY",
                    code="storage_unavailable") from None
            raise StorageUnavailable(f"the evidence store at {self.where} answered {code}: "
                                     f"{error.get('Message', '')}".rstrip(": "),
                                     code="storage_unavailable") from None
        except BotoCoreError as exc:
            raise StorageUnavailable(f"could not reach the evidence store at {self.where}: "
                                     f"{type(exc).__name__}",
                                     code="storage_unavailable") from None


def _client(settings: Settings, endpoint_url: str | None) -> Any:
    secret = settings.storage_secret_access_key
    return _cached_client(endpoint_url, settings.storage_region, settings.storage_access_key_id,
                          secret.get_secret_value() if secret else None)


@lru_cache(maxsize=8)
def _cached_client(endpoint_url: str | None, region: str, access_key_id: str | None,
                   secret_access_key: str | None) -> Any:
    """boto3 clients are thread-safe and costly to build: one per configuration."""
    config = Config(signature_version="s3v4", connect_timeout=5, read_timeout=60,
                    retries={"mode": "standard", "max_attempts": 3},
                    s3={"addressing_style": "path" if endpoint_url else "auto"})
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config,
        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key)


def open_store(settings: Settings) -> Store:
    """The configured store, or 503 `storage_unavailable` saying what to set."""
    if not is_configured(settings) or settings.storage_bucket is None:
        raise StorageUnavailable(
            "evidence storage is not configured on this server: set EVIDENCE_STORAGE_BUCKET "
            "(and EVIDENCE_STORAGE_ENDPOINT_URL, EVIDENCE_STORAGE_ACCESS_KEY_ID, "
            "EVIDENCE_STORAGE_SECRET_ACCESS_KEY for an S3-compatible store such as MinIO or R2)",
            code="storage_unavailable")
    endpoint = settings.storage_endpoint_url
    public = settings.storage_public_endpoint_url or endpoint
    return Store(client=_client(settings, endpoint), presigner=_client(settings, public),
                 bucket=settings.storage_bucket, where=endpoint or "AWS S3")

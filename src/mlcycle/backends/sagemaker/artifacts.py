"""Artifacts of the sagemaker backend: S3 objects under ``s3://BUCKET/PREFIX/artifacts/``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mlcycle.backends.base import ArtifactStore, validate_key
from mlcycle.backends.sagemaker._errors import translated

__all__ = ["S3ArtifactStore"]


class S3ArtifactStore(ArtifactStore):
    """Artifacts as S3 objects; a ``PutObject`` replaces an object atomically.

    Parameters
    ----------
    client : callable
        Returns the backend's S3 client (created on first use).
    bucket : str
        The bucket.
    prefix : str
        The key prefix under which artifacts live (no leading or trailing ``/``).
    """

    def __init__(self, client: Callable[[], Any], *, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` with one ``PutObject``."""
        with translated(kind="artifact", name=key):
            self._client().put_object(Bucket=self.bucket, Key=self._key(key), Body=bytes(data))
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes."""
        with translated(kind="artifact", name=key):
            body = self._client().get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return body.read()  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        """Delete the object (S3 deletes silently, so its existence is checked first)."""
        with translated(kind="artifact", name=key):
            self._client().head_object(Bucket=self.bucket, Key=self._key(key))
            self._client().delete_object(Bucket=self.bucket, Key=self._key(key))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Iterate over keys starting with ``prefix`` (``ListObjectsV2``, paginated)."""
        base = f"{self.prefix}/" if self.prefix else ""
        with translated(kind="artifact", name=prefix):
            pages = self._client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=base + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"][len(base) :]

    def uri(self, key: str) -> str:
        """Return ``s3://BUCKET/PREFIX/KEY``."""
        return f"s3://{self.bucket}/{self._key(key)}"

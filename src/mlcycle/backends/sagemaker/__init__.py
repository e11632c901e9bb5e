"""The sagemaker backend: the same specs on AWS, through boto3.

``sagemaker://REGION?bucket=BUCKET&prefix=PREFIX&role=ROLE_ARN`` names it. Clients are created
per backend instance on first use (never at import or in the constructor), so two backends for
two regions never share one. Credentials come from boto3's usual chain and are never logged,
shown in ``repr`` or recorded in lineage.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from mlcycle.backends.base import ArtifactStore, Backend, Capability
from mlcycle.backends.sagemaker.artifacts import S3ArtifactStore
from mlcycle.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.backends.sagemaker.featurestore import SageMakerFeatureStoreBackend
    from mlcycle.backends.sagemaker.lineage import SageMakerLineageBackend
    from mlcycle.backends.sagemaker.registry import SageMakerRegistryBackend
    from mlcycle.backends.sagemaker.training import SageMakerTrainingBackend

__all__ = ["SageMakerBackend"]

_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_ROLE_RE = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@\-/]+$")
_PARAMS = frozenset({"bucket", "prefix", "role"})


class SageMakerBackend(Backend):
    """SageMaker, S3 and friends in one AWS account and region.

    Parameters
    ----------
    region : str
        The AWS region, for example ``"us-east-1"``.
    bucket : str
        The S3 bucket for artifacts, offline stores and job outputs (it must exist; mlcycle
        never creates buckets behind your back).
    prefix : str
        Key prefix inside the bucket.
    role : str, optional
        ARN of the IAM role that SageMaker jobs assume.
    boto3_session : boto3.session.Session, optional
        A session to create clients from (default: a new one for ``region``).

    Examples
    --------
    >>> import mlcycle
    >>> b = mlcycle.connect("sagemaker://us-east-1?bucket=my-bucket&prefix=ml")
    >>> b.region, b.artifacts.uri("flows/f.json")
    ('us-east-1', 's3://my-bucket/ml/artifacts/flows/f.json')
    """

    scheme: ClassVar[str] = "sagemaker"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.ARTIFACTS, Capability.FLOWS, Capability.FEATURE_STORE, Capability.TRAINING,
         Capability.LINEAGE, Capability.REGISTRY}
    )

    def __init__(
        self,
        region: str,
        *,
        bucket: str,
        prefix: str = "mlcycle",
        role: str | None = None,
        boto3_session: Any | None = None,
    ) -> None:
        if not isinstance(region, str) or not _REGION_RE.match(region):
            raise ConfigurationError(f"not an AWS region: {region!r}")
        if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket):
            raise ConfigurationError(f"not an S3 bucket name: {bucket!r}")
        if role is not None and not _ROLE_RE.match(role):
            raise ConfigurationError(f"not an IAM role ARN: {role!r}")
        self.region = region
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.role = role
        self._session = boto3_session
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._feature_store: SageMakerFeatureStoreBackend | None = None
        self._training: SageMakerTrainingBackend | None = None
        self._lineage: SageMakerLineageBackend | None = None
        self._registry: SageMakerRegistryBackend | None = None
        base = f"{self.prefix}/artifacts" if self.prefix else "artifacts"
        self._artifacts = S3ArtifactStore(lambda: self.client("s3"), bucket=bucket, prefix=base)

    @classmethod
    def from_uri(cls, uri: Any) -> SageMakerBackend:
        """Build from a parsed ``sagemaker://REGION?bucket=...`` URI."""
        params = dict(uri.params)
        unknown = set(params) - _PARAMS
        if unknown:
            raise ConfigurationError(
                f"unknown parameter(s) {sorted(unknown)} in {uri.text!r}; known: {sorted(_PARAMS)}"
            )
        if "bucket" not in params:
            raise ConfigurationError(f"{uri.text!r} needs a bucket: sagemaker://REGION?bucket=B")
        region = uri.location.strip("/")
        return cls(
            region,
            bucket=params["bucket"],
            prefix=params.get("prefix", "mlcycle"),
            role=params.get("role"),
        )

    @property
    def uri(self) -> str:
        """``sagemaker://REGION?bucket=...&prefix=...[&role=...]``."""
        text = f"sagemaker://{self.region}?bucket={self.bucket}&prefix={quote(self.prefix)}"
        if self.role:
            text += f"&role={quote(self.role, safe='')}"
        return text

    @property
    def artifacts(self) -> ArtifactStore:
        """S3 objects under ``s3://BUCKET/PREFIX/artifacts/``."""
        return self._artifacts

    @property
    def feature_store(self) -> SageMakerFeatureStoreBackend:
        """SageMaker Feature Store, with offline stores under ``s3://BUCKET/PREFIX/offline-store``.

        Created on first use; it creates no client until it is used.
        """
        with self._lock:
            if self._feature_store is None:
                from mlcycle.backends.sagemaker.featurestore import SageMakerFeatureStoreBackend

                self._feature_store = SageMakerFeatureStoreBackend(self)
            return self._feature_store

    @property
    def training(self) -> SageMakerTrainingBackend:
        """SageMaker training jobs, with inputs and job records under ``s3://BUCKET/PREFIX/training``.

        Created on first use; it creates no client until it is used.
        """
        with self._lock:
            if self._training is None:
                from mlcycle.backends.sagemaker.training import SageMakerTrainingBackend

                self._training = SageMakerTrainingBackend(self)
            return self._training

    @property
    def lineage(self) -> SageMakerLineageBackend:
        """SageMaker ML Lineage Tracking (Artifacts, Actions, Contexts, Associations).

        Created on first use; it creates no client until it is used.
        """
        self.require(Capability.LINEAGE)
        with self._lock:
            if self._lineage is None:
                from mlcycle.backends.sagemaker.lineage import SageMakerLineageBackend

                self._lineage = SageMakerLineageBackend(self)
            return self._lineage

    @property
    def registry(self) -> SageMakerRegistryBackend:
        """SageMaker's model registry, with model package groups and model packages.

        Created on first use; it creates no client until it is used.
        """
        self.require(Capability.REGISTRY)
        with self._lock:
            if self._registry is None:
                from mlcycle.backends.sagemaker.registry import SageMakerRegistryBackend

                self._registry = SageMakerRegistryBackend(self)
            return self._registry

    def client(self, service: str) -> Any:
        """Return this backend's boto3 client for ``service``, created on first use.

        Raises
        ------
        MissingDependencyError
            If boto3 is not installed (``pip install 'mlcycle[aws]'``).
        """
        with self._lock:
            if service not in self._clients:
                try:
                    import boto3
                except ImportError as exc:
                    raise MissingDependencyError(
                        "the sagemaker backend needs boto3: pip install 'mlcycle[aws]'",
                        package="boto3",
                        extra="aws",
                    ) from exc
                session = self._session or boto3.session.Session(region_name=self.region)
                self._session = session
                self._clients[service] = session.client(service, region_name=self.region)
            return self._clients[service]

    def close(self) -> None:
        """Close the clients; new ones are created if the backend is used again."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

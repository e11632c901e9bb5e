"""The model artifact: a SageMaker-compatible ``model.tar.gz``.

The archive holds, as SageMaker's XGBoost container writes and reads it:

``xgboost-model``
    The booster in XGBoost's JSON model format (never a pickle), loadable by plain XGBoost,
    with the feature names and types it was trained on.
``mlcycle/model.json``
    What the model expects and how it was made: ``feature_names`` (in order),
    ``feature_types``, ``label``, ``objective``, ``num_round``, ``rounds``,
    ``best_iteration``, ``job`` and the versions. It sits in a folder, because the container
    takes the first plain *file* of the model folder as the model.

The archive's bytes are deterministic for a given model and metadata.

Examples
--------
>>> import xgboost as xgb, numpy as np
>>> booster = xgb.train({"max_depth": 1}, xgb.DMatrix(np.eye(3), label=[0, 1, 2],
...                                                   feature_names=["a", "b", "c"]), 2)
>>> tarball = build_model_tarball(booster, metadata={"label": "y"})
>>> artifact = read_model_tarball(tarball)
>>> artifact.feature_names, artifact.metadata["label"]
(('a', 'b', 'c'), 'y')
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle.errors import SpecValidationError

if TYPE_CHECKING:  # pragma: no cover
    import xgboost

__all__ = ["METADATA_FILE", "MODEL_FILE", "ModelArtifact", "build_model_tarball",
           "read_model_tarball"]

#: The model file inside ``model.tar.gz``, as SageMaker's XGBoost container names it.
MODEL_FILE = "xgboost-model"
#: The metadata file inside ``model.tar.gz``.
METADATA_FILE = "mlcycle/model.json"


@attrs.frozen(kw_only=True)
class ModelArtifact:
    """The contents of a ``model.tar.gz``.

    Parameters
    ----------
    model : bytes
        The ``xgboost-model`` file (XGBoost JSON).
    metadata : dict
        The ``mlcycle/model.json`` file.
    """

    model: bytes = attrs.field(repr=False)
    metadata: dict[str, Any]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features the model expects, in order."""
        return tuple(self.metadata.get("feature_names", ()))

    def booster(self) -> xgboost.Booster:
        """Load the model with XGBoost."""
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(self.model))
        return booster


def _add(tar: tarfile.TarFile, name: str, data: bytes, *, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_model_tarball(
    booster: xgboost.Booster, *, metadata: Mapping[str, Any], mtime: float = 0.0
) -> bytes:
    """Return the bytes of ``model.tar.gz`` for ``booster``.

    Parameters
    ----------
    booster : ``xgboost.Booster``
        The trained model; its feature names and types go into the metadata.
    metadata : mapping
        More metadata (JSON-serializable).
    mtime : float
        The time stamp of the archive's members (epoch seconds).

    Returns
    -------
    bytes
    """
    import xgboost

    model = bytes(booster.save_raw(raw_format="json"))
    meta = {
        "format": "json",
        "feature_names": list(booster.feature_names or ()),
        "feature_types": list(booster.feature_types or ()),
        "xgboost_version": xgboost.__version__,
        **dict(metadata),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MODEL_FILE, model, mtime=mtime)
        folder = tarfile.TarInfo("mlcycle")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        folder.mtime = int(mtime)
        tar.addfile(folder)
        _add(tar, METADATA_FILE, json.dumps(meta, sort_keys=True, indent=1).encode(),
             mtime=mtime)
    return gzip.compress(raw.getvalue(), mtime=0)


def read_model_tarball(data: bytes) -> ModelArtifact:
    """Read a ``model.tar.gz`` from its bytes (nothing is extracted to disk).

    Raises
    ------
    SpecValidationError
        If the bytes are not a model archive with an ``xgboost-model`` file
        (``field="model"``).
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            if MODEL_FILE not in members:
                raise SpecValidationError(f"the archive has no {MODEL_FILE}", field="model")
            model = tar.extractfile(members[MODEL_FILE]).read()  # type: ignore[union-attr]
            metadata: dict[str, Any] = {}
            if METADATA_FILE in members:
                metadata = json.loads(
                    tar.extractfile(members[METADATA_FILE]).read()  # type: ignore[union-attr]
                )
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SpecValidationError(f"not a model.tar.gz: {exc}", field="model") from exc
    if not metadata.get("feature_names"):
        learner = json.loads(model).get("learner", {})
        metadata["feature_names"] = learner.get("feature_names", [])
    return ModelArtifact(model=model, metadata=metadata)

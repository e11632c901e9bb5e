"""Turn what the user passes as a model into a private XGBoost Booster, and choose the device.

Accepted models: an ``xgboost.Booster``, a fitted ``xgboost.XGBModel`` (the scikit-learn API),
or a path to a SageMaker-style ``model.tar.gz`` that holds ``xgboost-model`` (or to a bare model
file). Model files must be XGBoost JSON or UBJSON; nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tarfile
import warnings
from pathlib import Path
from typing import Any

from mlcycle._logging import logger
from mlcycle.errors import (
    ConfigurationError,
    InvalidStateError,
    NotFoundError,
    SpecValidationError,
)
from mlcycle.explain._deps import import_xgboost

__all__ = ["MODEL_MEMBER", "ResolvedModel", "load_model", "resolve_device", "resolve_model"]

#: The member of a SageMaker XGBoost ``model.tar.gz`` that holds the model.
MODEL_MEMBER = "xgboost-model"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
_TREE_BOOSTERS = ("gbtree", "dart")


class ResolvedModel:
    """A private copy of the booster plus what explaining needs to know about it."""

    def __init__(self, booster: Any, *, iteration_range: tuple[int, int]) -> None:
        config = json.loads(booster.save_config())
        learner = config["learner"]
        self.booster = booster
        self.iteration_range = iteration_range
        self.kind: str = learner["gradient_booster"]["name"]
        self.objective: str = learner["objective"]["name"]
        params = learner["learner_model_param"]
        self.n_outputs = max(int(params.get("num_class", "0")), int(params.get("num_target", "1")))
        self.n_features = int(booster.num_features())
        self.feature_names: tuple[str, ...] | None = (
            tuple(booster.feature_names) if booster.feature_names else None
        )
        types = booster.feature_types
        self.categorical = bool(types) and any(t == "c" for t in types)


def _read_model_bytes(path: Path) -> bytes:
    """The raw model bytes of ``path``: a ``model.tar.gz`` member, or the file itself."""
    if not path.is_file():
        raise NotFoundError(
            f"model file {str(path)!r} does not exist", kind="model", name=str(path)
        )
    if tarfile.is_tarfile(path):
        # Read the member into memory: nothing is extracted to disk, so no path can escape.
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
            found = [m for m in members if m.name.removeprefix("./") == MODEL_MEMBER]
            if not found or not found[0].isfile():
                names = sorted(m.name for m in members)
                raise SpecValidationError(
                    f"{str(path)!r} holds no regular file {MODEL_MEMBER!r} (members: {names})",
                    field="model",
                )
            handle = tar.extractfile(found[0])
            assert handle is not None  # a regular file always has a handle
            with handle:
                return handle.read()
    return path.read_bytes()


def _check_model_format(raw: bytes, source: str) -> None:
    head = raw.lstrip()[:1]
    if head == b"{":  # a JSON object, or a UBJSON object (whose marker is also "{")
        return
    if raw[:1] == b"\x80":  # the PROTO opcode every pickle of protocol 2 or later starts with
        raise SpecValidationError(
            f"{source} is a Python pickle; mlcycle never unpickles models. Save the booster "
            "with Booster.save_model('xgboost-model.json') (JSON or UBJSON) instead",
            field="model",
        )
    raise SpecValidationError(
        f"{source} is not an XGBoost model in JSON or UBJSON format", field="model"
    )


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load an XGBoost model from a SageMaker ``model.tar.gz`` or a model file, safely.

    Parameters
    ----------
    path : path-like
        A ``model.tar.gz`` (gzip or plain tar) that holds ``xgboost-model``, the layout the
        SageMaker XGBoost container writes, or a bare XGBoost model file.

    Returns
    -------
    ``xgboost.Booster``
        The model.

    Raises
    ------
    mlcycle.errors.NotFoundError
        The file does not exist.
    mlcycle.errors.SpecValidationError
        With ``field="model"``: the archive has no ``xgboost-model``, or the model is a pickle
        (never loaded) or is not XGBoost JSON/UBJSON.
    """
    xgb = import_xgboost()
    path = Path(path)
    raw = _read_model_bytes(path)
    source = f"the model in {str(path)!r}"
    _check_model_format(raw, source)
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(raw))
    except xgb.core.XGBoostError as exc:
        raise SpecValidationError(f"{source} could not be loaded: {exc}", field="model") from exc
    return booster


def resolve_model(model: Any) -> ResolvedModel:
    """Return a private copy of ``model``'s booster (so the caller's object is never changed)."""
    xgb = import_xgboost()
    iteration_range = (0, 0)  # all trees, as Booster.predict uses by default
    if isinstance(model, str | os.PathLike):
        booster = load_model(model)
    elif isinstance(model, xgb.Booster):
        booster = model.copy()
    elif isinstance(model, xgb.XGBModel):
        try:
            booster = model.get_booster().copy()
        except ValueError as exc:  # sklearn's NotFittedError is a ValueError
            raise InvalidStateError(
                f"{type(model).__name__} is not fitted yet", state="unfitted"
            ) from exc
        # the scikit-learn predict uses the best iteration after early stopping
        with contextlib.suppress(AttributeError):
            iteration_range = (0, int(model.best_iteration) + 1)
    else:
        raise SpecValidationError(
            "model must be an xgboost.Booster, an xgboost.XGBModel or a path to a model.tar.gz, "
            f"not {type(model).__name__}",
            field="model",
        )
    resolved = ResolvedModel(booster, iteration_range=iteration_range)
    if resolved.kind not in _TREE_BOOSTERS:
        raise SpecValidationError(
            f"TreeSHAP explains tree models; this booster is {resolved.kind!r}", field="model"
        )
    return resolved


def _cuda_usable(xgb: Any, booster: Any, device: str, n_features: int) -> bool:
    """Try a one-row prediction on ``device``; True if XGBoost really ran it there."""
    if not xgb.build_info().get("USE_CUDA", False):
        return False  # e.g. the xgboost-cpu wheel: no CUDA at all
    import numpy as np

    with warnings.catch_warnings():
        # XGBoost warns (and falls back to the CPU) when it finds no GPU; we check the result.
        warnings.simplefilter("ignore")
        try:
            booster.set_param({"device": device})
            booster.predict(
                xgb.DMatrix(np.zeros((1, n_features), dtype=np.float32)),
                validate_features=False,
            )
            used = json.loads(booster.save_config())["learner"]["generic_param"]["device"]
        except Exception:  # any failure to run on the GPU means: not usable
            logger.debug("CUDA device %s not usable", device, exc_info=True)
            return False
    return str(used).startswith("cuda")


def resolve_device(resolved: ResolvedModel, device: str) -> str:
    """Put ``resolved.booster`` on the device to use and return its name (``cpu`` or ``cuda``).

    ``"auto"`` uses a GPU when one is usable and the CPU otherwise; ``"cuda"`` (or
    ``"cuda:<ordinal>"``) insists on one.
    """
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise SpecValidationError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<n>', not {device!r}", field="device"
        )
    booster = resolved.booster
    if device != "cpu":
        xgb = import_xgboost()
        wanted = "cuda" if device == "auto" else device
        if _cuda_usable(xgb, booster, wanted, resolved.n_features):
            return "cuda"
        if device != "auto":
            raise ConfigurationError(
                f"device={device!r} was asked for, but XGBoost cannot use a CUDA GPU here "
                f"(xgboost built with CUDA: {bool(xgb.build_info().get('USE_CUDA', False))})"
            )
        logger.debug("no usable CUDA GPU; explaining on the CPU")
    booster.set_param({"device": "cpu"})
    return "cpu"

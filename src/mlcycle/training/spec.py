"""Training job specs: frozen, validated value objects with no backend inside.

A :class:`TrainingJobSpec` says what to train (XGBoost with its hyperparameters), on what
(:class:`TrainingInput` channels ``train`` and ``validation``, a label column and the features),
where the outputs go, with which :class:`Resources`, what to capture while training
(:class:`CaptureConfig`) and which rules to evaluate (:class:`~mlcycle.training.Rule`).
The same spec runs on every backend that has the ``training`` capability.

Input *data* is checked when the job is submitted (the facade reads it then); everything else is
checked when the spec is built.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from mlcycle._specs import check_fields
from mlcycle.backends.base import validate_key
from mlcycle.errors import SpecValidationError
from mlcycle.training.hyperparameters import validate_hyperparameters
from mlcycle.training.rules import RULE_COLLECTIONS, Rule

__all__ = [
    "COLLECTIONS",
    "IMPORTANCE_TYPES",
    "CaptureConfig",
    "Resources",
    "TrainingInput",
    "TrainingJobSpec",
]

#: The collections the capture can record, as SageMaker Debugger names them for XGBoost.
COLLECTIONS = (
    "metrics",
    "feature_importance",
    "average_shap",
    "full_shap",
    "hyperparameters",
    "predictions",
    "labels",
    "trees",
)
#: The importance types of ``xgboost.Booster.get_score``.
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
_DEFAULT_COLLECTIONS = ("metrics", "feature_importance", "average_shap", "full_shap",
                        "hyperparameters")
_FORMATS = ("parquet", "csv")


def _infer_format(path: str) -> str | None:
    lowered = path.lower()
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    if lowered.endswith((".csv", ".csv.gz")):
        return "csv"
    return None


@attrs.frozen(kw_only=True)
class TrainingInput:
    """Where one channel's data comes from.

    Exactly one of ``uri``, ``artifact`` or ``data`` is given. Build one with
    :meth:`TrainingInput.of`, which also takes the plain values a spec accepts.

    Parameters
    ----------
    uri : str, optional
        A Parquet or CSV file: a local path or a ``file://`` URI.
    artifact : str, optional
        The key of a Parquet or CSV file in the backend's artifact store (this works on every
        backend).
    format : str, optional
        ``"parquet"`` or ``"csv"``; inferred from the name's suffix when not given.
    data : object, optional
        In-memory data: a :class:`pandas.DataFrame`, a :class:`pyarrow.Table`, or any object
        with a ``to_pandas()``, ``to_dataframe()`` or ``to_arrow()`` method, such as a
        feature store's training set (built when the job is submitted).
        Two inputs with in-memory data compare equal whatever the data; the data is not part
        of the spec's serialized form (:meth:`to_dict` records its shape).
    summary : dict, optional
        The recorded shape (``rows``, ``columns``) of in-memory data, for an input read back
        from a job record; such an input holds no data and cannot be trained on again.
    """

    uri: str | None = None
    artifact: str | None = None
    format: str | None = None
    data: Any = attrs.field(default=None, eq=False, repr=False)
    summary: dict[str, Any] | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        given = [n for n in ("uri", "artifact", "data") if getattr(self, n) is not None]
        if len(given) > 1:
            raise SpecValidationError(f"give one of uri, artifact or data, not {given}",
                                      field="input")
        if not given and self.summary is None:
            raise SpecValidationError("an input needs a uri, an artifact key or data",
                                      field="input")
        if self.artifact is not None:
            validate_key(self.artifact)
        if self.uri is not None and not isinstance(self.uri, str):
            raise SpecValidationError(f"uri must be a string, not {self.uri!r}", field="input")
        if self.uri is not None and "://" in self.uri and not self.uri.startswith("file://"):
            raise SpecValidationError(
                f"cannot read {self.uri!r}: give a local path, a file:// URI, or the key of an "
                "artifact in the backend's artifact store",
                field="input",
            )
        location = self.uri or self.artifact
        fmt = self.format
        if fmt is None and location is not None:
            fmt = _infer_format(location)
            if fmt is None:
                raise SpecValidationError(
                    f"cannot tell the format of {location!r}; pass format='parquet' or 'csv'",
                    field="input",
                )
            object.__setattr__(self, "format", fmt)
        if fmt is not None and fmt not in _FORMATS:
            raise SpecValidationError(f"format must be parquet or csv, not {fmt!r}",
                                      field="input")

    @classmethod
    def of(cls, value: object) -> TrainingInput:
        """Turn what a spec accepts into a :class:`TrainingInput`.

        Parameters
        ----------
        value : TrainingInput, str, path-like, pandas.DataFrame, pyarrow.Table or object
            An input already; a path (``.parquet``, ``.pq``, ``.csv``, ``.csv.gz``) or
            ``file://`` URI; or in-memory data (a DataFrame, or anything with ``to_pandas()``,
            ``to_dataframe()`` or ``to_arrow()``).

        Returns
        -------
        TrainingInput

        Examples
        --------
        >>> TrainingInput.of("data/train.parquet")
        TrainingInput(uri='data/train.parquet', artifact=None, format='parquet', summary=None)
        """
        if isinstance(value, TrainingInput):
            return value
        if isinstance(value, str):
            return cls(uri=value)
        if isinstance(value, os.PathLike):
            return cls(uri=os.fspath(value))  # type: ignore[arg-type]
        if value is None:
            raise SpecValidationError("an input is required", field="input")
        if any(hasattr(value, m) for m in ("iloc", "to_pandas", "to_dataframe", "to_arrow")):
            return cls(data=value)
        raise SpecValidationError(
            f"cannot train on a {type(value).__name__}: give a DataFrame, a pyarrow Table, a "
            "Parquet or CSV path, or a TrainingInput",
            field="input",
        )

    @property
    def is_detached(self) -> bool:
        """Whether this input only records the shape of data it no longer holds."""
        return self.uri is None and self.artifact is None and self.data is None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (in-memory data as its shape only)."""
        if self.uri is not None:
            return {"uri": self.uri, "format": self.format}
        if self.artifact is not None:
            return {"artifact": self.artifact, "format": self.format}
        summary = self.summary
        if self.data is not None:
            frame = self.data
            names = getattr(frame, "column_names", None)
            if names is None:
                names = getattr(frame, "columns", [])
            columns = [str(c) for c in names]
            rows = getattr(frame, "num_rows", None)
            if rows is None:
                rows = len(frame) if hasattr(frame, "__len__") else None
            summary = {"rows": rows, "columns": columns}
        return {"data": dict(summary or {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingInput:
        """Build from :meth:`to_dict`'s form."""
        if "data" in data:
            return cls(summary=dict(data["data"]))
        return cls(uri=data.get("uri"), artifact=data.get("artifact"), format=data.get("format"))


def _input(value: object) -> TrainingInput:
    try:
        return TrainingInput.of(value)
    except SpecValidationError as exc:
        raise SpecValidationError(str(exc), field="train") from None


def _optional_input(value: object) -> TrainingInput | None:
    if value is None:
        return None
    try:
        return TrainingInput.of(value)
    except SpecValidationError as exc:
        raise SpecValidationError(str(exc), field="validation") from None


def _positive_int(name: str, *, minimum: int = 1) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SpecValidationError(f"{name} must be an integer >= {minimum}, not {value!r}",
                                      field=name)

    return check


@attrs.frozen(kw_only=True)
class Resources:
    """What a job runs on.

    The local backend runs every job in the submitting process and honours only
    ``max_runtime_s``; the others are for remote backends.

    Parameters
    ----------
    instance_type : str
        For example ``"ml.m5.xlarge"``.
    instance_count : int
        Number of instances.
    volume_size_gb : int
        Storage per instance.
    max_runtime_s : int
        After this many seconds of training the job is stopped (status ``Stopped``).
    """

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = attrs.field(default=1, validator=_positive_int("instance_count"))
    volume_size_gb: int = attrs.field(default=30, validator=_positive_int("volume_size_gb"))
    max_runtime_s: int = attrs.field(default=86_400, validator=_positive_int("max_runtime_s"))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return attrs.asdict(self)


def _collections(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    out = tuple(value)
    for name in out:
        if name not in COLLECTIONS:
            raise SpecValidationError(
                f"unknown collection {name!r}; known: {', '.join(COLLECTIONS)}",
                field="capture.collections",
            )
    return tuple(dict.fromkeys(out))


def _importance_types(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    out = tuple(value)
    for name in out:
        if name not in IMPORTANCE_TYPES:
            raise SpecValidationError(
                f"unknown importance type {name!r}; known: {', '.join(IMPORTANCE_TYPES)}",
                field="capture.importance_types",
            )
    if not out:
        raise SpecValidationError("give at least one importance type",
                                  field="capture.importance_types")
    return tuple(dict.fromkeys(out))


@attrs.frozen(kw_only=True)
class CaptureConfig:
    """What to record while training, in the manner of SageMaker Debugger's XGBoost hook.

    Every ``save_interval`` rounds (round 0 included) and at the last round, the job records
    the chosen collections into a tensor store in its output folder, which
    :class:`mlcycle.training.CaptureReader` reads back by step and name:

    ``metrics``
        ``train-<metric>`` and ``validation-<metric>`` (scalars).
    ``feature_importance``
        ``feature_importance/<type>/<feature>`` for each importance type (scalars; 0 for a
        feature no tree uses yet).
    ``average_shap``
        ``average_shap/<feature>``: the mean absolute SHAP value over the sample (scalars).
    ``full_shap``
        ``full_shap/<feature>``: the SHAP value of every sampled row (vectors).
    ``hyperparameters``
        ``hyperparameters/<name>``, at the first saved step only.
    ``predictions``, ``labels``
        ``predictions`` and ``labels`` of the sampled rows.
    ``trees``
        ``trees/depth``: the depth of every tree so far.

    SHAP values are computed by XGBoost's own TreeSHAP (``pred_contribs=True``) on a fixed
    random sample of ``shap_samples`` training rows.

    Parameters
    ----------
    save_interval : int
        Rounds between saved steps.
    collections : sequence of str
        Which collections to record (see :data:`mlcycle.training.spec.COLLECTIONS`).
    importance_types : sequence of str
        Which importance types of ``xgboost.Booster.get_score`` to record.
    shap_samples : int
        Rows in the sample for SHAP values, predictions and labels.
    seed : int
        Seed of the sample.
    """

    save_interval: int = attrs.field(default=10, validator=_positive_int("capture.save_interval"))
    collections: tuple[str, ...] = attrs.field(default=_DEFAULT_COLLECTIONS,
                                               converter=_collections)
    importance_types: tuple[str, ...] = attrs.field(default=IMPORTANCE_TYPES,
                                                    converter=_importance_types)
    shap_samples: int = attrs.field(default=500, validator=_positive_int("capture.shap_samples"))
    seed: int = attrs.field(default=0, validator=_positive_int("capture.seed", minimum=0))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "save_interval": self.save_interval,
            "collections": list(self.collections),
            "importance_types": list(self.importance_types),
            "shap_samples": self.shap_samples,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaptureConfig:
        """Build from :meth:`to_dict`'s form."""
        return cls(**dict(data))


def _rules(value: Iterable[Rule]) -> tuple[Rule, ...]:
    out = tuple(value)
    for rule in out:
        if not isinstance(rule, Rule):
            raise SpecValidationError(f"rules must be Rule objects, not {rule!r}",
                                      field="rules")
    names = [r.name for r in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecValidationError(f"rule names must be unique: {dupes}", field="rules")
    return out


def _features(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise SpecValidationError("features is a sequence of column names, not one string",
                                  field="features")
    out = tuple(value)
    if not out:
        raise SpecValidationError("features is empty", field="features")
    for name in out:
        if not isinstance(name, str) or not name:
            raise SpecValidationError(f"a feature name must be a string, not {name!r}",
                                      field="features")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise SpecValidationError(f"features {dupes} are given twice", field=dupes[0])
    return out


def _output(value: str | None) -> str | None:
    if value is None:
        return None
    return validate_key(value.strip("/"))


def _algorithm(value: str) -> str:
    if value != "xgboost":
        raise SpecValidationError(f"unknown algorithm {value!r}; mlcycle trains 'xgboost'",
                                  field="algorithm")
    return value


@attrs.frozen(kw_only=True)
class TrainingJobSpec:
    """What a training job trains, on what data, with what outputs, capture and rules.

    Parameters
    ----------
    hyperparameters : mapping
        XGBoost hyperparameters (see :mod:`mlcycle.training.hyperparameters`); ``num_round`` is
        required. Stored normalized: canonical names, typed values.
    train : TrainingInput, pandas.DataFrame, pyarrow.Table, path or object
        The training data (see :meth:`TrainingInput.of`).
    validation : TrainingInput, pandas.DataFrame, pyarrow.Table, path or object, optional
        Data evaluated every round (``validation-<metric>``) but never trained on.
    label : str
        The label column.
    features : sequence of str, optional
        The feature columns, in the order the model expects them; default: every column of
        the training data but the label.
    algorithm : str
        ``"xgboost"``.
    output : str, optional
        Artifact key prefix of the job's outputs (``model.tar.gz``, the capture, the report);
        default ``training/<job name>``.
    resources : Resources
        What the job runs on.
    capture : CaptureConfig, optional
        What to record while training; nothing by default.
    rules : sequence of mlcycle.training.Rule
        Rules evaluated on the captured stream while training.

    Raises
    ------
    SpecValidationError
        On any invalid field; ``field`` names it (``"hyperparameters.eta"``, ``"label"``, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 2.5, 4.5]})
    >>> spec = TrainingJobSpec(hyperparameters={"num_round": 5, "max_depth": 2},
    ...                        train=df, label="y")
    >>> spec.hyperparameters
    {'num_round': 5, 'max_depth': 2}
    >>> TrainingJobSpec(hyperparameters={"num_round": 5, "eta": 3}, train=df, label="y")
    Traceback (most recent call last):
    ...
    mlcycle.errors.SpecValidationError: eta=3.0 is out of range: float in [0, 1]
    """

    hyperparameters: dict[str, Any] = attrs.field(converter=validate_hyperparameters)
    train: TrainingInput = attrs.field(converter=_input)
    label: str
    validation: TrainingInput | None = attrs.field(default=None, converter=_optional_input)
    features: tuple[str, ...] | None = attrs.field(default=None, converter=_features)
    algorithm: str = attrs.field(default="xgboost", converter=_algorithm)
    output: str | None = attrs.field(default=None, converter=_output)
    resources: Resources = attrs.field(factory=Resources)
    capture: CaptureConfig | None = None
    rules: tuple[Rule, ...] = attrs.field(default=(), converter=_rules)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise SpecValidationError(f"label must be a column name, not {self.label!r}",
                                      field="label")
        if self.features is not None and self.label in self.features:
            raise SpecValidationError(f"the label {self.label!r} is also a feature",
                                      field="features")
        if not isinstance(self.resources, Resources):
            raise SpecValidationError("resources must be a Resources", field="resources")
        if self.capture is not None and not isinstance(self.capture, CaptureConfig):
            raise SpecValidationError("capture must be a CaptureConfig", field="capture")
        if "early_stopping_rounds" in self.hyperparameters and self.validation is None:
            raise SpecValidationError("early_stopping_rounds needs a validation input",
                                      field="validation")
        for rule in self.rules:
            needs_validation = rule.kind in {"Overfit"}
            if needs_validation and self.validation is None:
                raise SpecValidationError(f"rule {rule.name} compares training and validation "
                                          "losses; give a validation input",
                                          field=f"rules.{rule.name}")

    # -- derived -----------------------------------------------------------------------------
    @property
    def num_round(self) -> int:
        """The number of boosting rounds."""
        return int(self.hyperparameters["num_round"])

    @property
    def objective(self) -> str:
        """The objective (``reg:squarederror`` unless set)."""
        return str(self.hyperparameters.get("objective", "reg:squarederror"))

    def stream_collections(self) -> tuple[str, ...]:
        """The collections the job computes: those captured plus those its rules read."""
        wanted = list(self.capture.collections if self.capture else ())
        for rule in self.rules:
            wanted.extend(RULE_COLLECTIONS[rule.kind])
        return tuple(dict.fromkeys(wanted))

    # -- serialization -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (in-memory inputs as their shape only)."""
        return {
            "algorithm": self.algorithm,
            "hyperparameters": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in self.hyperparameters.items()},
            "train": self.train.to_dict(),
            "validation": self.validation.to_dict() if self.validation else None,
            "label": self.label,
            "features": list(self.features) if self.features is not None else None,
            "output": self.output,
            "resources": self.resources.to_dict(),
            "capture": self.capture.to_dict() if self.capture else None,
            "rules": [r.to_dict() for r in self.rules],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingJobSpec:
        """Build from :meth:`to_dict`'s form.

        Raises
        ------
        SpecValidationError
            On unknown or missing fields, or invalid values.
        """
        check_fields(cls, data, required=("hyperparameters", "train", "label"))
        values = dict(data)
        values["train"] = TrainingInput.from_dict(values["train"])
        if values.get("validation") is not None:
            values["validation"] = TrainingInput.from_dict(values["validation"])
        if values.get("resources") is not None:
            values["resources"] = Resources(**values["resources"])
        else:
            values.pop("resources", None)
        if values.get("capture") is not None:
            values["capture"] = CaptureConfig.from_dict(values["capture"])
        values["rules"] = [Rule.from_dict(r) for r in values.get("rules") or ()]
        return cls(**values)

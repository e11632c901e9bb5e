"""Reading a job's input channels and checking them before training starts.

Every check here runs when a job is submitted, so bad data is a
:class:`~mlcycle.errors.SpecValidationError` (``field`` naming the channel, the label or the
column at fault) and never a job that fails later.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

from mlcycle.errors import NotFoundError, SpecValidationError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlcycle.backends.base import ArtifactStore
    from mlcycle.training.spec import TrainingInput, TrainingJobSpec

__all__ = ["load_input", "validate_frames"]

_BAD_NAME_CHARS = ("[", "]", "<")


def _frame(value: Any, field: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value
    for method in ("to_pandas", "to_dataframe", "to_arrow"):
        if callable(getattr(value, method, None)):
            frame = getattr(value, method)()
            if method == "to_arrow" and callable(getattr(frame, "to_pandas", None)):
                frame = frame.to_pandas()
            if isinstance(frame, pd.DataFrame):
                return frame
    raise SpecValidationError(f"cannot read a {type(value).__name__} as a table", field=field)


def _read(source: Any, fmt: str, field: str, where: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if fmt == "parquet":
            return pd.read_parquet(source)
        return pd.read_csv(source)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no file {where!r}", kind="file", name=where) from exc
    except Exception as exc:  # pyarrow and pandas raise many types for an unreadable file
        raise SpecValidationError(f"cannot read {where!r} as {fmt}: {exc}", field=field) from exc


def load_input(inp: TrainingInput, artifacts: ArtifactStore, *, field: str) -> pd.DataFrame:
    """Read one input channel into a DataFrame.

    Parameters
    ----------
    inp : mlcycle.training.TrainingInput
        The channel.
    artifacts : mlcycle.backends.base.ArtifactStore
        The backend's artifact store (for inputs given by artifact key).
    field : str
        ``"train"`` or ``"validation"``, for errors.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    NotFoundError
        If the file or artifact does not exist.
    SpecValidationError
        If it cannot be read, or the input holds no data (one read back from a job record).
    """
    if inp.data is not None:
        return _frame(inp.data, field)
    if inp.uri is not None:
        path = inp.uri
        if path.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            path = unquote(urlsplit(path).path)
        return _read(os.path.expanduser(path), inp.format or "parquet", field, inp.uri)
    if inp.artifact is not None:
        data = artifacts.get_bytes(inp.artifact)
        return _read(io.BytesIO(data), inp.format or "parquet", field, inp.artifact)
    raise SpecValidationError(
        f"the {field} input only records the shape of data it no longer holds; give the data",
        field=field,
    )


def _check_numeric(frame: pd.DataFrame, columns: tuple[str, ...], channel: str) -> None:
    import numpy as np
    import pandas as pd

    for column in columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)
        ):
            raise SpecValidationError(
                f"feature {column!r} of the {channel} input is {dtype}, not numeric; encode it "
                "(one-hot or ordinal) first",
                field=column,
            )
        if pd.api.types.is_float_dtype(dtype):
            values = frame[column].to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(values).any():
                raise SpecValidationError(
                    f"feature {column!r} of the {channel} input holds infinite values",
                    field=column,
                )


def _check_label(frame: pd.DataFrame, label: str, channel: str) -> None:
    import numpy as np
    import pandas as pd

    if label not in frame.columns:
        raise SpecValidationError(f"the {channel} input has no label column {label!r}",
                                  field="label")
    dtype = frame[label].dtype
    if pd.api.types.is_bool_dtype(dtype):
        return
    if not pd.api.types.is_numeric_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        raise SpecValidationError(f"the label {label!r} is {dtype}, not numeric", field="label")
    values = frame[label].to_numpy(dtype=float, na_value=np.nan)
    missing = int(np.isnan(values).sum())
    if missing:
        raise SpecValidationError(
            f"the label {label!r} of the {channel} input is missing (NaN) in {missing} rows",
            field="label",
        )
    if np.isinf(values).any():
        raise SpecValidationError(f"the label {label!r} of the {channel} input is infinite",
                                  field="label")


def validate_frames(
    spec: TrainingJobSpec, train: pd.DataFrame, validation: pd.DataFrame | None
) -> tuple[str, ...]:
    """Check the training and validation data against the spec; return the features.

    Parameters
    ----------
    spec : mlcycle.training.TrainingJobSpec
        The job's spec.
    train : pandas.DataFrame
        The training data.
    validation : pandas.DataFrame, optional
        The validation data.

    Returns
    -------
    tuple of str
        The feature columns, in the order the model will expect them.

    Raises
    ------
    SpecValidationError
        For an empty input (``field`` ``"train"`` or ``"validation"``), a missing, non-numeric,
        NaN or infinite label (``"label"``), a non-numeric or infinite feature (the column's
        name), features missing from an input (``"features"`` or ``"validation"``), duplicate
        or non-string column names, or names XGBoost rejects (``[``, ``]``, ``<``).
    """
    frames = [("train", train)] + ([("validation", validation)] if validation is not None
                                   else [])
    for channel, frame in frames:
        if len(frame) == 0:
            raise SpecValidationError(f"the {channel} input has no rows", field=channel)
        names = list(frame.columns)
        dupes = sorted({str(n) for n in names if names.count(n) > 1})
        if dupes:
            raise SpecValidationError(f"the {channel} input repeats columns {dupes}",
                                      field=dupes[0])
    _check_label(train, spec.label, "train")
    if spec.features is not None:
        missing = [f for f in spec.features if f not in train.columns]
        if missing:
            raise SpecValidationError(f"the train input lacks features {missing}",
                                      field="features")
        features = spec.features
    else:
        features = tuple(c for c in train.columns if c != spec.label)
    if not features:
        raise SpecValidationError("the train input has no feature columns", field="features")
    for name in features:
        if not isinstance(name, str):
            raise SpecValidationError(f"column names must be strings, not {name!r}",
                                      field="features")
        if any(ch in name for ch in _BAD_NAME_CHARS):
            raise SpecValidationError(
                f"feature name {name!r} holds one of [ ] <, which XGBoost rejects", field=name
            )
    _check_numeric(train, features, "train")
    if validation is not None:
        _check_label(validation, spec.label, "validation")
        missing = [f for f in features if f not in validation.columns]
        if missing:
            raise SpecValidationError(f"the validation input lacks features {missing}",
                                      field="validation")
        _check_numeric(validation, features, "validation")
    return tuple(features)

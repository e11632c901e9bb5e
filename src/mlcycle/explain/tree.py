"""Exact TreeSHAP explanations of XGBoost models.

:func:`explain` computes the contributions with XGBoost's own TreeSHAP (``pred_contribs``: exact,
path-dependent, on a GPU when one is usable), in batches, and checks that they add up to the
model's raw margin. The result is an :class:`Explanation`: frozen arrays plus the methods that
aggregate them (:meth:`Explanation.global_importance`), pick one row
(:meth:`Explanation.row`) and write SageMaker Clarify's ``analysis.json``
(:meth:`Explanation.to_analysis_json`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle._atomic import atomic_write_bytes
from mlcycle._logging import logger
from mlcycle.errors import InvalidStateError, NotFoundError, SpecValidationError
from mlcycle.explain._deps import import_xgboost
from mlcycle.explain._model import ResolvedModel, resolve_device, resolve_model
from mlcycle.progress import ProgressCallback, report

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_BATCH_SIZE",
    "AdditivityError",
    "Explanation",
    "RowExplanation",
    "explain",
]

#: Rows per XGBoost call; each batch holds ``batch_size x (n_features + 1) x n_outputs`` floats.
DEFAULT_BATCH_SIZE = 50_000
#: The global aggregations of SageMaker Clarify's ``agg_method``: mean of absolute values,
#: median (of the signed values) and mean of squares.
AGGREGATIONS = ("mean_abs", "median", "mean_sq")
#: The ``explanations`` key that :meth:`Explanation.to_analysis_json` writes by default.
TREE_SHAP_KEY = "tree_shap"
_METHOD_KEYS = (TREE_SHAP_KEY, "kernel_shap")
_PROGRESS_STAGE = "explain"


class AdditivityError(InvalidStateError):
    """The contributions of a row do not add up to the model's raw prediction.

    ``sum(contributions) + base_value`` must equal the raw margin of every row within the
    tolerance; when it does not, the explanation does not describe the model and is not returned.

    Parameters
    ----------
    message : str
        What went wrong.
    row : int
        Position of the row with the largest error.
    error : float
        That row's absolute difference between the sum and the margin.
    tolerance : float
        The relative tolerance that was asked for.
    """

    def __init__(self, message: str, *, row: int, error: float, tolerance: float) -> None:
        super().__init__(message, state="non-additive")
        self.row = row
        self.error = error
        self.tolerance = tolerance


def _readonly(array: Any) -> Any:
    array.setflags(write=False)
    return array


@attrs.frozen(kw_only=True, eq=False)
class RowExplanation:
    """The explanation of one row for one model output.

    Attributes
    ----------
    position : int
        The row's position in the explained data.
    label : object
        The row's index label (its position when the data was a NumPy array).
    output : str
        The name of the explained output.
    base_value : float
        The model's expected raw output (the explanation's starting point).
    prediction : float
        The row's raw margin; ``base_value + contributions.sum()`` equals it.
    contributions : pandas.Series
        SHAP value per feature, largest magnitude first.
    values : pandas.Series
        The row's feature values, in the order of ``contributions``.
    """

    position: int
    label: Any
    output: str
    base_value: float
    prediction: float
    contributions: pd.Series
    values: pd.Series

    def to_frame(self) -> pd.DataFrame:
        """Return a table with one row per feature: its ``value`` and its ``contribution``.

        Returns
        -------
        pandas.DataFrame
            Indexed by feature name, largest contribution magnitude first.
        """
        import pandas as pd

        return pd.DataFrame({"value": self.values, "contribution": self.contributions})


@attrs.frozen(kw_only=True, eq=False)
class Explanation:
    """Exact TreeSHAP contributions of a model over a data set (built by :func:`explain`).

    Single-output models (regression, binary classification) have 2-D contributions; models with
    several outputs (``multi:softprob`` classes, multi-target regression) add an output axis in
    XGBoost's layout, and :meth:`for_output` selects one. All arrays are read-only.

    Attributes
    ----------
    contributions : numpy.ndarray
        float32, ``(n_rows, n_features)``, or ``(n_rows, n_outputs, n_features)``.
    base_value : float or numpy.ndarray
        The expected raw output (one per output when there are several): the SHAP base value.
    predictions : numpy.ndarray
        The raw margin per row, ``(n_rows,)`` or ``(n_rows, n_outputs)``: log-odds for
        ``binary:logistic``, untransformed class scores for ``multi:softprob``.
    feature_names : tuple of str
        The model's feature order (the last axis of ``contributions``).
    output_names : tuple of str
        One name per output (``label0``, ``label1``, ... unless given).
    data : pandas.DataFrame
        The explained feature values, columns in model order, with the input's index.
    device : str
        Where XGBoost computed the contributions: ``"cpu"`` or ``"cuda"``.
    objective : str
        The model's objective, e.g. ``"reg:squarederror"``.
    """

    contributions: np.ndarray = attrs.field(converter=_readonly)
    base_value: Any
    predictions: np.ndarray = attrs.field(converter=_readonly)
    feature_names: tuple[str, ...] = attrs.field(converter=tuple)
    output_names: tuple[str, ...] = attrs.field(converter=tuple)
    data: pd.DataFrame
    device: str
    objective: str

    @property
    def n_rows(self) -> int:
        """Number of explained rows."""
        return int(self.contributions.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.feature_names)

    @property
    def n_outputs(self) -> int:
        """Number of model outputs (1 for regression and binary classification)."""
        return len(self.output_names)

    def __repr__(self) -> str:
        return (
            f"Explanation(rows={self.n_rows}, features={self.n_features}, "
            f"outputs={list(self.output_names)}, device={self.device!r}, "
            f"objective={self.objective!r})"
        )

    def _output_index(self, output: int | str | None) -> int | None:
        """The output axis position to use, or None for a single-output explanation."""
        if output is None:
            if self.n_outputs == 1:
                return None
            raise SpecValidationError(
                f"the model has {self.n_outputs} outputs {list(self.output_names)}; "
                "say which with output=",
                field="output",
            )
        if isinstance(output, str):
            if output not in self.output_names:
                raise SpecValidationError(
                    f"no output {output!r}; outputs are {list(self.output_names)}", field="output"
                )
            index = self.output_names.index(output)
        elif isinstance(output, int) and not isinstance(output, bool):
            if not -self.n_outputs <= output < self.n_outputs:
                raise SpecValidationError(
                    f"output {output} out of range for {self.n_outputs} outputs", field="output"
                )
            index = output % self.n_outputs
        else:
            raise SpecValidationError(
                f"output must be a name or a position, not {type(output).__name__}",
                field="output",
            )
        return None if self.n_outputs == 1 else index

    def for_output(self, output: int | str) -> Explanation:
        """Return the single-output explanation of one output.

        Parameters
        ----------
        output : int or str
            The output's position or name.

        Returns
        -------
        mlcycle.explain.Explanation
            Two-dimensional contributions; shares the data of this one.
        """
        import numpy as np

        index = self._output_index(output)
        if index is None:
            return self
        return Explanation(
            contributions=np.ascontiguousarray(self.contributions[:, index, :]),
            base_value=float(self.base_value[index]),
            predictions=np.ascontiguousarray(self.predictions[:, index]),
            feature_names=self.feature_names,
            output_names=(self.output_names[index],),
            data=self.data,
            device=self.device,
            objective=self.objective,
        )

    def _single(self, output: int | str | None) -> Explanation:
        index = self._output_index(output)
        return self if index is None else self.for_output(index)

    def global_importance(
        self, method: str = "mean_abs", *, output: int | str | None = None
    ) -> pd.Series:
        """Aggregate the contributions over all rows, one value per feature.

        Parameters
        ----------
        method : {"mean_abs", "median", "mean_sq"}
            SageMaker Clarify's aggregations: the mean of the absolute values, the median of the
            (signed) values, the mean of the squares.
        output : int or str, optional
            Which output; required when the model has several.

        Returns
        -------
        pandas.Series
            Indexed by feature name and named after ``method``; largest magnitude first (ties
            keep the model's feature order).
        """
        import numpy as np
        import pandas as pd

        single = self._single(output)
        values = _aggregate(single.contributions, method)
        order = np.argsort(-np.abs(values), kind="stable")
        index = pd.Index([self.feature_names[i] for i in order], name="feature")
        return pd.Series(values[order], index=index, name=method)

    def to_frame(self, *, output: int | str | None = None) -> pd.DataFrame:
        """Return the contributions as a table: one row per data row, one column per feature.

        Parameters
        ----------
        output : int or str, optional
            Which output; required when the model has several.

        Returns
        -------
        pandas.DataFrame
            With the data's index and the model's feature order.
        """
        import pandas as pd

        single = self._single(output)
        return pd.DataFrame(
            single.contributions, index=self.data.index, columns=list(self.feature_names)
        )

    def _position(self, key: Any, label: Any) -> int:
        """The row position that ``row(key)`` or ``row(label=...)`` names."""
        import numpy as np
        import pandas as pd

        if (key is None) == (label is None):
            raise SpecValidationError(
                "give either a row (a position, a boolean mask or an index label) or label=",
                field="key",
            )
        n = self.n_rows
        if key is not None and isinstance(key, int | np.integer) and not isinstance(key, bool):
            if not -n <= int(key) < n:
                raise NotFoundError(f"row {int(key)} out of range for {n} rows", kind="row",
                                    name=str(int(key)))
            return int(key) % n
        if key is not None and _is_mask(key):
            if isinstance(key, pd.Series) and not key.index.equals(self.data.index):
                raise SpecValidationError(
                    "the boolean mask's index differs from the explained data's index",
                    field="key",
                )
            if hasattr(key, "to_numpy"):  # pandas, where a nullable mask's NA selects nothing
                mask = key.to_numpy(dtype=bool, na_value=False)
            else:
                mask = np.asarray(key, dtype=bool)
            if mask.shape != (n,):
                raise SpecValidationError(
                    f"a boolean mask needs {n} values, not shape {mask.shape}", field="key"
                )
            hits = np.flatnonzero(mask)
            if len(hits) == 0:
                raise NotFoundError("the boolean mask selects no row", kind="row", name="mask")
            if len(hits) > 1:
                raise SpecValidationError(
                    f"the boolean mask selects {len(hits)} rows (positions "
                    f"{hits[:5].tolist()}...); it must select exactly one",
                    field="key",
                )
            return int(hits[0])
        wanted = label if label is not None else key
        try:
            found = self.data.index.get_indexer_for([wanted])
        except TypeError as exc:  # an unhashable key
            raise SpecValidationError(f"cannot look up row {wanted!r}", field="key") from exc
        hits = found[found >= 0]
        if len(hits) == 0:
            raise NotFoundError(f"no row with index label {wanted!r}", kind="row",
                                name=str(wanted))
        if len(hits) > 1:
            raise SpecValidationError(
                f"index label {wanted!r} names {len(hits)} rows; pick one by position",
                field="label",
            )
        return int(hits[0])

    def row(
        self,
        key: int | Hashable | Sequence[bool] | None = None,
        *,
        label: Hashable | None = None,
        output: int | str | None = None,
    ) -> RowExplanation:
        """Explain one row: its contributions sorted by magnitude, base value and prediction.

        Parameters
        ----------
        key : int, sequence of bool or object, optional
            An integer is a *position* (negative counts from the end, as in ``iloc``); a boolean
            array or Series must select exactly one row; anything else is an index label.
        label : object, optional
            An index label (use this for integer labels, which ``key`` reads as positions).
        output : int or str, optional
            Which output; required when the model has several.

        Returns
        -------
        mlcycle.explain.RowExplanation
            The row's explanation.

        Raises
        ------
        mlcycle.errors.NotFoundError
            No such position or label, or a mask that selects nothing.
        mlcycle.errors.SpecValidationError
            Both or neither of ``key`` and ``label``, or a key that selects several rows.
        """
        import numpy as np
        import pandas as pd

        single = self._single(output)
        position = self._position(key, label)
        contributions = single.contributions[position].astype(np.float64)
        order = np.argsort(-np.abs(contributions), kind="stable")
        names = pd.Index([self.feature_names[i] for i in order], name="feature")
        values = self.data.iloc[position]
        return RowExplanation(
            position=position,
            label=self.data.index[position],
            output=single.output_names[0],
            base_value=float(single.base_value),
            prediction=float(single.predictions[position]),
            contributions=pd.Series(contributions[order], index=names, name="contribution"),
            values=pd.Series(values.iloc[order].to_numpy(), index=names, name="value"),
        )

    def to_analysis_json(
        self, *, method: str = "mean_abs", method_key: str = TREE_SHAP_KEY
    ) -> dict[str, Any]:
        """Return the explanation in the layout of SageMaker Clarify's ``analysis.json``.

        ``{"version": "1.0", "explanations": {method_key: {label: {"global_shap_values":
        {feature: value}, "expected_value": base}}}}``, one ``label`` entry per output (named by
        ``output_names``; Clarify's ``label0`` when unnamed). ``global_shap_values`` lists the
        features in model order.

        Parameters
        ----------
        method : {"mean_abs", "median", "mean_sq"}
            Clarify's ``agg_method`` for the global values.
        method_key : {"tree_shap", "kernel_shap"}
            The key under ``explanations``. Clarify writes ``kernel_shap``: Kernel SHAP estimates
            against a baseline data set. These values are exact path-dependent TreeSHAP, whose
            baseline is the model's expected output over its training data, so the default says
            ``tree_shap``; pass ``"kernel_shap"`` for a reader that knows only Clarify's key.

        Returns
        -------
        dict
            JSON-serializable. The values are in raw-margin units (Clarify's ``use_logit=True``
            for a binary classifier).
        """
        import numpy as np

        if method_key not in _METHOD_KEYS:
            raise SpecValidationError(
                f"method_key must be one of {list(_METHOD_KEYS)}, not {method_key!r}",
                field="method_key",
            )
        labels: dict[str, Any] = {}
        base = np.atleast_1d(np.asarray(self.base_value, dtype=np.float64))
        for k, name in enumerate(self.output_names):
            single = self.for_output(k) if self.n_outputs > 1 else self
            values = _aggregate(single.contributions, method)
            labels[name] = {
                "global_shap_values": {
                    feature: float(v) for feature, v in zip(self.feature_names, values, strict=True)
                },
                "expected_value": float(base[k]),
            }
        return {"version": "1.0", "explanations": {method_key: labels}}

    def save_analysis(
        self,
        path: str | os.PathLike[str],
        *,
        method: str = "mean_abs",
        method_key: str = TREE_SHAP_KEY,
    ) -> Path:
        """Write :meth:`to_analysis_json` to ``path`` (atomically) and return the path.

        Parameters
        ----------
        path : path-like
            Where to write, conventionally ``.../analysis.json``.
        method : {"mean_abs", "median", "mean_sq"}
            The aggregation.
        method_key : {"tree_shap", "kernel_shap"}
            The key under ``explanations``.

        Returns
        -------
        pathlib.Path
            The written file.
        """
        path = Path(path)
        document = self.to_analysis_json(method=method, method_key=method_key)
        atomic_write_bytes(path, (json.dumps(document, indent=2) + "\n").encode())
        return path


def _is_mask(key: Any) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(key, str | bytes):
        return False
    dtype = getattr(key, "dtype", None)
    if dtype is not None:
        return getattr(key, "ndim", 0) >= 1 and pd.api.types.is_bool_dtype(dtype)
    if isinstance(key, list | tuple) and key:
        return all(isinstance(v, bool | np.bool_) for v in key)
    return False


def _aggregate(contributions: Any, method: str) -> Any:
    """Clarify's global aggregation over the rows of 2-D ``contributions`` (float64)."""
    import numpy as np

    if method == "mean_abs":
        return np.abs(contributions).mean(axis=0, dtype=np.float64)
    if method == "median":
        return np.median(contributions.astype(np.float64), axis=0)
    if method == "mean_sq":
        return np.square(contributions.astype(np.float64)).mean(axis=0)
    raise SpecValidationError(
        f"method must be one of {list(AGGREGATIONS)}, not {method!r}", field="method"
    )


def _feature_names(resolved: ResolvedModel, data: Any, feature_names: Any) -> tuple[str, ...]:
    """The model's feature order, checked against ``feature_names`` if both exist."""
    model_names = resolved.feature_names
    if feature_names is not None:
        given = tuple(str(n) for n in feature_names)
        if len(given) != resolved.n_features:
            raise SpecValidationError(
                f"feature_names has {len(given)} names; the model has {resolved.n_features} "
                "features",
                field="feature_names",
            )
        if len(set(given)) != len(given):
            raise SpecValidationError("feature_names has duplicates", field="feature_names")
        if model_names is not None and given != model_names:
            raise SpecValidationError(
                f"feature_names differ from the model's own {list(model_names)}",
                field="feature_names",
            )
        return given
    if model_names is not None:
        return model_names
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if len(data.columns) != resolved.n_features:
            raise SpecValidationError(
                f"data has {len(data.columns)} columns; the model has {resolved.n_features} "
                "features",
                field="data",
            )
        return tuple(str(c) for c in data.columns)
    raise SpecValidationError(
        "the model has no feature names; pass feature_names= (or a DataFrame)",
        field="feature_names",
    )


def _prepare_frame(data: Any, names: tuple[str, ...], resolved: ResolvedModel) -> pd.DataFrame:
    """The explained data as a DataFrame in model order, validated column by column."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        columns = [str(c) for c in data.columns]
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise SpecValidationError(
                f"data has duplicate columns {duplicated}", field=duplicated[0]
            )
        present = set(columns)
        missing = [n for n in names if n not in present]
        extra = [c for c in columns if c not in set(names)]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"not in the model {extra}")
            raise SpecValidationError(
                "data columns do not match the model's features: " + "; ".join(parts),
                field=(missing or extra)[0],
            )
        frame = data.set_axis(columns, axis=1)[list(names)]
        types = resolved.booster.feature_types or [None] * len(names)
        for name, ftype in zip(names, types, strict=True):
            dtype = frame[name].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                if ftype != "c":
                    raise SpecValidationError(
                        f"column {name!r} is categorical, but the model treats it as numeric",
                        field=name,
                    )
            elif not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                raise SpecValidationError(
                    f"column {name!r} has dtype {dtype}; features must be numeric, boolean or "
                    "categorical",
                    field=name,
                )
        return frame
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise SpecValidationError(
            f"data must be a DataFrame or a 2-D array, not {type(data).__name__}", field="data"
        ) from exc
    if array.ndim != 2:
        raise SpecValidationError(
            f"data must be 2-D (rows x features), not shape {array.shape}", field="data"
        )
    if array.shape[1] != len(names):
        raise SpecValidationError(
            f"data has {array.shape[1]} columns; the model has {len(names)} features",
            field="data",
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise SpecValidationError(f"data has dtype {array.dtype}; it must be numeric",
                                  field="data")
    return pd.DataFrame(array, columns=list(names))


def _batch_matrix(xgb: Any, frame: pd.DataFrame, start: int, stop: int, categorical: bool) -> Any:
    import numpy as np

    part = frame.iloc[start:stop]
    if categorical:
        return xgb.DMatrix(part, enable_categorical=True)
    values = part.to_numpy(dtype=np.float32, na_value=np.nan)
    return xgb.DMatrix(np.ascontiguousarray(values))


def _check_additivity(
    contributions: Any, base: Any, margin: Any, *, offset: int, tolerance: float
) -> None:
    """Raise AdditivityError unless ``contributions.sum(-1) + base == margin`` per row."""
    import numpy as np

    total = contributions.sum(axis=-1, dtype=np.float64) + base
    error = np.abs(total - margin)
    allowed = tolerance * np.maximum(1.0, np.abs(margin))
    bad = error > allowed
    if bad.any():
        worst = np.unravel_index(int(np.argmax(np.where(bad, error, -1.0))), error.shape)
        row = offset + int(worst[0])
        raise AdditivityError(
            f"the contributions of {int(bad.any(axis=-1).sum())} rows (in the batch from row "
            f"{offset}) do not add up to the raw prediction; worst row {row}: base + sum "
            f"{float(total[worst]):.6g} vs margin "
            f"{float(margin[worst]):.6g} (tolerance {tolerance:g} relative)",
            row=row,
            error=float(error[worst]),
            tolerance=tolerance,
        )


def explain(
    model: Any,
    data: Any,
    *,
    feature_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "auto",
    check_additivity: bool = True,
    additivity_tolerance: float = 1e-3,
    progress: ProgressCallback | None = None,
) -> Explanation:
    """Explain a tree model's raw predictions with exact TreeSHAP.

    The contributions come from XGBoost's own TreeSHAP (``Booster.predict(pred_contribs=True)``,
    what ``shap.TreeExplainer`` also calls for XGBoost models), batch by batch. The caller's
    model object is never changed: the work runs on a private copy of its booster.

    Parameters
    ----------
    model : ``xgboost.Booster``, ``xgboost.XGBModel`` or path-like
        The model, or a path to a SageMaker ``model.tar.gz`` holding ``xgboost-model`` (XGBoost
        JSON or UBJSON; a pickle is refused, never loaded). A scikit-learn model stopped early
        is explained at its best iteration, as its ``predict`` does.
    data : pandas.DataFrame or numpy.ndarray
        The rows to explain. DataFrame columns are matched to the model's features by name
        (their order does not matter); a 2-D array is taken in the model's feature order.
    feature_names : sequence of str, optional
        Feature names, required for an array when the model has none.
    output_names : sequence of str, optional
        One name per model output (e.g. class names); default ``label0``, ``label1``, ...
    batch_size : int
        Rows per XGBoost call.
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` uses a CUDA GPU when XGBoost can (tried with a one-row prediction) and the
        CPU otherwise; ``"cuda"`` (or ``"cuda:<n>"``) insists on one. The device used is
        :attr:`Explanation.device`; the results have the same layout on both.
    check_additivity : bool
        Check for every row that the contributions plus the base value equal the raw margin.
    additivity_tolerance : float
        The check's tolerance, relative to ``max(1, |margin|)``.
    progress : callable, optional
        ``progress("explain", rows_done, rows_total)``, called before the first and after every
        batch.

    Returns
    -------
    mlcycle.explain.Explanation
        The contributions, base value(s), raw predictions and data.

    Raises
    ------
    mlcycle.errors.SpecValidationError
        A bad argument; ``field`` names it, or names the data column at fault (a missing or
        extra column, a non-numeric one).
    mlcycle.errors.ConfigurationError
        ``device="cuda"`` where XGBoost cannot use a GPU.
    mlcycle.errors.InvalidStateError
        An unfitted scikit-learn model.
    mlcycle.explain.AdditivityError
        The contributions of some row do not add up to its prediction.
    mlcycle.errors.MissingDependencyError
        xgboost is not installed.

    Examples
    --------
    >>> import numpy as np, xgboost
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=2 * X[:, 0] - X[:, 1]),
    ...                         num_boost_round=10)
    >>> from mlcycle.explain import explain
    >>> exp = explain(booster, X, feature_names=["a", "b", "c"], device="cpu")
    >>> exp.contributions.shape
    (200, 3)
    >>> list(exp.global_importance().index[:2])
    ['a', 'b']
    >>> top = exp.row(int(np.argmax(exp.predictions)))
    >>> bool(abs(top.base_value + top.contributions.sum() - top.prediction) < 1e-4)
    True
    """
    import numpy as np

    xgb = import_xgboost()
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise SpecValidationError(
            f"batch_size must be a positive integer, not {batch_size!r}", field="batch_size"
        )
    if not additivity_tolerance > 0:
        raise SpecValidationError(
            f"additivity_tolerance must be positive, not {additivity_tolerance!r}",
            field="additivity_tolerance",
        )
    resolved = resolve_model(model)
    names = _feature_names(resolved, data, feature_names)
    frame = _prepare_frame(data, names, resolved)
    n_rows, n_features, n_outputs = len(frame), len(names), resolved.n_outputs
    if n_rows == 0:
        raise SpecValidationError("data has no rows", field="data")
    if output_names is None:
        outputs = tuple(f"label{k}" for k in range(n_outputs))
    else:
        outputs = tuple(str(n) for n in output_names)
        if len(outputs) != n_outputs or len(set(outputs)) != n_outputs:
            raise SpecValidationError(
                f"output_names needs {n_outputs} distinct names, got {list(outputs)}",
                field="output_names",
            )
    used_device = resolve_device(resolved, device)
    booster = resolved.booster
    logger.info(
        "explaining %d rows x %d features (%d outputs) on %s in batches of %d",
        n_rows, n_features, n_outputs, used_device, batch_size,
    )

    contributions = np.empty((n_rows, n_outputs, n_features), dtype=np.float32)
    margins = np.empty((n_rows, n_outputs), dtype=np.float32)
    base: Any = None
    report(progress, _PROGRESS_STAGE, 0, n_rows)
    for start in range(0, n_rows, batch_size):
        stop = min(start + batch_size, n_rows)
        matrix = _batch_matrix(xgb, frame, start, stop, resolved.categorical)
        predict = {"iteration_range": resolved.iteration_range, "strict_shape": True,
                   "validate_features": False}
        try:
            phi = booster.predict(matrix, pred_contribs=True, **predict)
            margin = booster.predict(matrix, output_margin=True, **predict)
        except xgb.core.XGBoostError as exc:
            raise SpecValidationError(
                f"XGBoost could not compute contributions for this model: {exc}", field="model"
            ) from exc
        phi = phi.reshape(stop - start, n_outputs, n_features + 1)
        margin = margin.reshape(stop - start, n_outputs)
        if base is None:  # the bias column: the same expected value on every row
            base = phi[0, :, -1].astype(np.float64)
        if check_additivity:
            _check_additivity(phi[:, :, :-1], base, margin, offset=start,
                              tolerance=additivity_tolerance)
        contributions[start:stop] = phi[:, :, :-1]
        margins[start:stop] = margin
        report(progress, _PROGRESS_STAGE, stop, n_rows)

    if n_outputs == 1:
        return Explanation(
            contributions=contributions[:, 0, :],
            base_value=float(base[0]),
            predictions=margins[:, 0],
            feature_names=names,
            output_names=outputs,
            data=frame,
            device=used_device,
            objective=resolved.objective,
        )
    base_values = base.copy()
    base_values.setflags(write=False)
    return Explanation(
        contributions=contributions,
        base_value=base_values,
        predictions=margins,
        feature_names=names,
        output_names=outputs,
        data=frame,
        device=used_device,
        objective=resolved.objective,
    )

"""Train the music example's rating model, validating on later ratings than it trains on.

The reference trained XGBoost with ``max_depth=4, eta=0.2, objective=reg:squarederror,
num_round=100`` and reported a validation RMSE of 0.7387, but on a random row split of features
that had leaked each row's own rating. Here the training table is point in time (a rating sees
only preferences computed from earlier ratings) and the split is by time: the latest ratings
validate. :func:`train_music_model` reports the model's RMSE beside the reference's and beside
predicting the mean, the baseline a model must beat.

As the reference did with SageMaker Debugger, the job captures metrics, feature importance and
full and average SHAP values every 2 rounds, with a loss-not-decreasing rule over 4 steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from mlcycle.errors import SpecValidationError
from mlcycle.training import CaptureConfig, Rule, TrainingJob, TrainingJobInfo, TrainingJobSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlcycle.backends.base import Backend
    from mlcycle.progress import ProgressCallback

__all__ = [
    "LABEL",
    "NON_FEATURES",
    "REFERENCE_HYPERPARAMETERS",
    "REFERENCE_VALIDATION_RMSE",
    "MusicTrainingResult",
    "train_music_model",
]

#: The label column.
LABEL = "Rating"
#: The reference's hyperparameters.
REFERENCE_HYPERPARAMETERS = {"max_depth": 4, "eta": 0.2, "objective": "reg:squarederror",
                             "num_round": 100}
#: The reference's validation RMSE (with target leakage and a random split).
REFERENCE_VALIDATION_RMSE = 0.7387
#: Columns of the training table that are never features (keys, times, store bookkeeping).
NON_FEATURES = ("ratingEventId", "trackId", "userId", "sessionId", "itemInSession", "ts",
                "EventTime", "write_time", "api_invocation_time", "is_deleted")
_TIME_COLUMNS = ("EventTime", "ts")


@attrs.frozen(kw_only=True)
class MusicTrainingResult:
    """The trained job and its RMSEs.

    Parameters
    ----------
    job : mlcycle.training.TrainingJob
        The training job.
    info : mlcycle.training.TrainingJobInfo
        Its final state.
    split_time : float
        Ratings at or after this time (epoch seconds) validate; earlier ones train.
    train_rows, validation_rows : int
        Rows on each side of the split.
    features : tuple of str
        The model's features.
    rmse : float
        The model's RMSE on the validation ratings (its ``validation-rmse``).
    rmse_clipped : float
        The same with predictions clipped to the 1..5 scale.
    mean_rmse : float
        RMSE of predicting the training ratings' mean for every validation rating.
    reference_rmse : float
        The reference's 0.7387.
    """

    job: TrainingJob
    info: TrainingJobInfo
    split_time: float
    train_rows: int
    validation_rows: int
    features: tuple[str, ...]
    rmse: float
    rmse_clipped: float
    mean_rmse: float
    reference_rmse: float = REFERENCE_VALIDATION_RMSE

    def summary(self) -> str:
        """The RMSEs side by side, for people."""
        return (f"validation RMSE {self.rmse:.4f} (clipped to 1..5: {self.rmse_clipped:.4f}) | "
                f"predicting the mean {self.mean_rmse:.4f} | reference {self.reference_rmse} "
                f"(with leakage) | {self.train_rows:,} ratings train, "
                f"{self.validation_rows:,} later ones validate")


def _time_column(table: pd.DataFrame) -> str:
    for column in _TIME_COLUMNS:
        if column in table.columns:
            return column
    raise SpecValidationError(f"the training table needs a time column: one of {_TIME_COLUMNS}",
                              field="training_table")


def _features(table: pd.DataFrame) -> tuple[str, ...]:
    import pandas as pd

    return tuple(
        c for c in table.columns
        if c != LABEL and c not in NON_FEATURES
        and (pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c]))
    )


def train_music_model(
    training_table: pd.DataFrame,
    *,
    backend: Backend,
    split_time: float | None = None,
    progress: ProgressCallback | None = None,
    validation_fraction: float = 0.2,
    name: str | None = None,
    nthread: int | None = None,
    features: Sequence[str] | None = None,
    timeout: float | None = None,
) -> MusicTrainingResult:
    """Train the rating model on the point-in-time training table and compare RMSEs.

    Parameters
    ----------
    training_table : pandas.DataFrame
        One row per rating: the label ``Rating``, a time column (``EventTime`` or ``ts``, epoch
        seconds), and the track and user-preference features; key columns
        (:data:`NON_FEATURES`) and non-numeric columns are not used as features.
    backend : mlcycle.Backend
        Where to train.
    split_time : float, optional
        Ratings at or after this time validate. Default: the time that leaves the latest
        ``validation_fraction`` of the ratings for validation.
    progress : callable, optional
        ``progress("train", round, 100)``.
    validation_fraction : float
        The share of the latest ratings that validate when ``split_time`` is not given.
    name : str, optional
        The job's name.
    nthread : int, optional
        XGBoost's threads (default: all cores).
    features : sequence of str, optional
        The features (default: every numeric column but the label and the keys).
    timeout : float, optional
        Seconds to wait for the job.

    Returns
    -------
    MusicTrainingResult

    Raises
    ------
    SpecValidationError
        If the table lacks the label or a time column, or a side of the split is empty
        (``field="split_time"``).
    JobFailedError
        If training fails.
    """
    import numpy as np
    import xgboost

    if LABEL not in training_table.columns:
        raise SpecValidationError(f"the training table has no {LABEL!r} column", field="label")
    time_column = _time_column(training_table)
    times = training_table[time_column].to_numpy(dtype=float)
    if split_time is None:
        if not 0 < validation_fraction < 1:
            raise SpecValidationError("validation_fraction must be in (0, 1)",
                                      field="validation_fraction")
        split_time = float(np.quantile(times, 1 - validation_fraction))
    later = times >= split_time
    train, validation = training_table[~later], training_table[later]
    if len(train) == 0 or len(validation) == 0:
        raise SpecValidationError(
            f"splitting at {split_time} leaves {len(train)} training and {len(validation)} "
            "validation ratings", field="split_time")
    chosen = tuple(features) if features is not None else _features(training_table)
    hyperparameters: dict[str, object] = dict(REFERENCE_HYPERPARAMETERS)
    if nthread is not None:
        hyperparameters["nthread"] = nthread
    spec = TrainingJobSpec(
        hyperparameters=hyperparameters,
        train=train,
        validation=validation,
        label=LABEL,
        features=chosen,
        capture=CaptureConfig(save_interval=2),
        rules=[Rule(kind="LossNotDecreasing", parameters={"num_steps": 4})],
    )
    job = TrainingJob.submit(backend, spec, name=name, progress=progress)
    info = job.wait(timeout=timeout)
    booster = job.model()
    truth = validation[LABEL].to_numpy(dtype=float)
    predicted = booster.predict(xgboost.DMatrix(validation[list(chosen)]))
    mean = float(train[LABEL].mean())
    return MusicTrainingResult(
        job=job,
        info=info,
        split_time=float(split_time),
        train_rows=len(train),
        validation_rows=len(validation),
        features=chosen,
        rmse=float(np.sqrt(np.mean((predicted - truth) ** 2))),
        rmse_clipped=float(np.sqrt(np.mean((np.clip(predicted, 1, 5) - truth) ** 2))),
        mean_rmse=float(np.sqrt(np.mean((mean - truth) ** 2))),
    )

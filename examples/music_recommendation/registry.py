"""Register the music model, approve it through a metric gate, and trace it back to the CSVs.

The registry's promotion hook refuses to approve a model whose validation RMSE is not better
than predicting the training mean, so a broken model can never become the ``champion``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcycle.lineage import AssociationType, LineageTracker, attach_arn, carried_arn, digest_frame
from mlcycle.registry import RegistryClient, metric_threshold

if TYPE_CHECKING:  # pragma: no cover
    from examples.music_recommendation.train import MusicTrainingResult
    from mlcycle.backends.base import Backend
    from mlcycle.lineage import LineageGraph
    from mlcycle.registry import ModelVersion

__all__ = ["GROUP", "link_derived_table", "register_music_model", "trace_to_csvs"]

#: The model package group of the music recommender.
GROUP = "music-recommender"


def link_derived_table(backend: Backend, table: Any, *, name: str, parents: list[Any]) -> Any:
    """Record a table computed by user code as ``DerivedFrom`` the tables it was built from.

    Returns the table carrying its new lineage entity, so the feature store's ingest of it
    continues the chain (without this, lineage would stop at the computed table).
    """
    tracker = LineageTracker(backend)
    digest = digest_frame(table)
    entity = tracker.artifact(f"mem://music/{name}/{digest[7:39]}", type="DataSet", name=name,
                              digest=digest)
    for parent in parents:
        arn = carried_arn(parent)
        if arn is not None:
            tracker.associate(arn, entity, AssociationType.DERIVED_FROM)
    return attach_arn(table, entity.arn)


def register_music_model(backend: Backend, result: MusicTrainingResult) -> ModelVersion:
    """Register the trained model with its metrics; approve it and make it ``champion``.

    The job's final metrics (``train-rmse``, ``validation-rmse``) are attached by the
    registry; the clipped RMSE and the predict-the-mean baseline are added. Approval goes
    through a hook that refuses a model no better than the baseline.

    Returns
    -------
    mlcycle.registry.ModelVersion
        The registered (and, if it passed the gate, approved) version.
    """
    gate = metric_threshold("validation-rmse", max=result.mean_rmse, name="beats-the-mean")
    client = RegistryClient(backend, promotion_hooks=[gate])
    version = client.register(
        GROUP, result.job,
        metrics={"validation-rmse-clipped": result.rmse_clipped,
                 "baseline-mean-rmse": result.mean_rmse},
        description="XGBoost rating model on point-in-time user 5-star preferences",
        tags={"example": "music_recommendation"}, create_group=True)
    if not version.is_approved:
        version = client.approve(GROUP, version.version,
                                 reason=f"validation RMSE {result.rmse:.4f} < mean "
                                        f"{result.mean_rmse:.4f}")
    return client.set_alias(GROUP, "champion", version.version,
                            reason="the newest approved model")


def trace_to_csvs(backend: Backend, version: ModelVersion) -> LineageGraph:
    """Return the version's lineage, back to the CSV files it came from."""
    return RegistryClient(backend).lineage(version.group, version.version, max_depth=20)

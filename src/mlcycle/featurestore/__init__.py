"""Feature store: feature groups with offline and online stores, and point-in-time training sets.

The public names are :class:`FeatureGroupSpec` (what a group is), :class:`FeatureStore` (the
facade over a backend), :class:`FeatureGroup` (a handle that does I/O) and
:class:`TrainingSet` (a point-in-time join being built, described by a
:class:`TrainingSetSpec`).
"""

from mlcycle.featurestore.backend import FeatureGroupInfo, FeatureStoreBackend, IngestResult
from mlcycle.featurestore.spec import FeatureDefinition, FeatureGroupSpec, FeatureType
from mlcycle.featurestore.store import FeatureGroup, FeatureStore, TrainingSet
from mlcycle.featurestore.training import FeatureJoin, TrainingSetSpec

__all__ = [
    "FeatureDefinition",
    "FeatureGroup",
    "FeatureGroupInfo",
    "FeatureGroupSpec",
    "FeatureJoin",
    "FeatureStore",
    "FeatureStoreBackend",
    "FeatureType",
    "IngestResult",
    "TrainingSet",
    "TrainingSetSpec",
]

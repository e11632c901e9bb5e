"""Feature store: feature groups with offline and online stores, and point-in-time training sets.

The public names are :class:`FeatureGroupSpec` (what a group is), :class:`FeatureStore` (the
facade over a backend) and :class:`FeatureGroup` (a handle that does I/O).
"""

from mlcycle.featurestore.backend import FeatureGroupInfo, FeatureStoreBackend, IngestResult
from mlcycle.featurestore.spec import FeatureDefinition, FeatureGroupSpec, FeatureType

__all__ = [
    "FeatureDefinition",
    "FeatureGroupInfo",
    "FeatureGroupSpec",
    "FeatureStoreBackend",
    "FeatureType",
    "IngestResult",
]

"""Feature group specs: frozen, validated value objects with SageMaker Feature Store's rules.

A feature group holds records; a record is identified by (record identifier, event time). The
rules here are SageMaker's, enforced for every backend so a group that works locally also works
on AWS: names match ``[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}``, feature types are Integral,
Fractional and String, the event time is Fractional (epoch seconds) or String (ISO-8601), and
``write_time``, ``api_invocation_time`` and ``is_deleted`` are reserved.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle._specs import check_fields
from mlcycle.errors import SpecValidationError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "RESERVED_NAMES",
    "FeatureDefinition",
    "FeatureGroupSpec",
    "FeatureType",
    "validate_name",
]

#: Column names the offline store adds; no feature may use them.
RESERVED_NAMES = frozenset({"write_time", "api_invocation_time", "is_deleted"})
_NAME_RE = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
_MAX_FEATURES = 2500
_TAG_KEY_RE = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")


class FeatureType(enum.StrEnum):
    """SageMaker Feature Store's feature types."""

    INTEGRAL = "Integral"
    FRACTIONAL = "Fractional"
    STRING = "String"


def validate_name(name: object, *, field: str = "name", what: str = "feature group") -> str:
    """Check a feature group or feature name against SageMaker's pattern.

    Parameters
    ----------
    name : str
        The name.
    field : str
        The field to name in the error.
    what : str
        What is being named, for the message.

    Returns
    -------
    str
        The name, unchanged.

    Raises
    ------
    SpecValidationError
        If the name breaks the rules.

    Examples
    --------
    >>> validate_name("tracks-v2")
    'tracks-v2'
    >>> validate_name("bad name")
    Traceback (most recent call last):
    ...
    mlcycle.errors.SpecValidationError: invalid feature group name 'bad name': ...
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecValidationError(
            f"invalid {what} name {name!r}: 1 to 64 letters, digits, '-' and '_', starting and "
            "ending with a letter or digit",
            field=field,
        )
    return name


def _feature_type(value: object) -> FeatureType:
    try:
        return FeatureType(value)
    except ValueError:
        raise SpecValidationError(
            f"unknown feature type {value!r}; use Integral, Fractional or String",
            field="type",
        ) from None


@attrs.frozen(kw_only=True)
class FeatureDefinition:
    """One feature: a name and a type.

    Parameters
    ----------
    name : str
        The feature's name.
    type : FeatureType or str
        ``"Integral"``, ``"Fractional"`` or ``"String"``.
    """

    name: str
    type: FeatureType = attrs.field(converter=_feature_type)

    def __attrs_post_init__(self) -> None:
        validate_name(self.name, field=str(self.name), what="feature")
        if self.name.lower() in RESERVED_NAMES:
            raise SpecValidationError(
                f"{self.name!r} is reserved by the offline store", field=self.name
            )


def _features(value: Iterable[Any]) -> tuple[FeatureDefinition, ...]:
    out = []
    for item in value:
        if isinstance(item, FeatureDefinition):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(
                FeatureDefinition(
                    name=item.get("name", item.get("FeatureName")),
                    type=item.get("type", item.get("FeatureType")),
                )
            )
        else:
            name, type_ = item
            out.append(FeatureDefinition(name=name, type=type_))
    return tuple(out)


def _ttl(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SpecValidationError(f"ttl must be a positive number of seconds, not {value!r}",
                                  field="ttl")
    return float(value)


@attrs.frozen(kw_only=True)
class FeatureGroupSpec:
    """What a feature group is: its name, keys, features and stores.

    Parameters
    ----------
    name : str
        The group's name (SageMaker's rules).
    record_identifier : str
        The feature that identifies a record (Integral or String).
    event_time : str
        The feature holding each record's event time: Fractional (epoch seconds) or String
        (ISO-8601, UTC).
    features : sequence of FeatureDefinition
        Every feature, the record identifier and event time included. ``(name, type)`` pairs and
        ``{"FeatureName": ..., "FeatureType": ...}`` mappings are accepted too.
    description : str
        Free text.
    tags : dict
        String keys and values.
    online : bool
        Keep an online store (the latest record per record identifier, for low-latency reads).
    offline : bool
        Keep an offline store (every record ever written, append-only, with its write time).
    ttl : float, optional
        Seconds after its event time that a record expires; reads never return expired records.

    Examples
    --------
    >>> spec = FeatureGroupSpec(
    ...     name="tracks", record_identifier="trackId", event_time="EventTime",
    ...     features=[("trackId", "String"), ("EventTime", "Fractional"), ("tempo", "Fractional")],
    ... )
    >>> spec.feature_names
    ('trackId', 'EventTime', 'tempo')
    >>> FeatureGroupSpec.from_dict(spec.to_dict()) == spec
    True
    """

    name: str = attrs.field(validator=lambda _, __, v: validate_name(v))
    record_identifier: str
    event_time: str
    features: tuple[FeatureDefinition, ...] = attrs.field(converter=_features)
    description: str = ""
    tags: dict[str, str] = attrs.field(factory=dict, converter=dict)
    online: bool = True
    offline: bool = True
    ttl: float | None = attrs.field(default=None, converter=_ttl)

    def __attrs_post_init__(self) -> None:
        names = [f.name for f in self.features]
        if not names:
            raise SpecValidationError("a feature group needs features", field="features")
        if len(names) > _MAX_FEATURES:
            raise SpecValidationError(
                f"at most {_MAX_FEATURES} features, not {len(names)}", field="features"
            )
        lowered = [n.lower() for n in names]
        dupes = sorted({n for n in names if lowered.count(n.lower()) > 1})
        if dupes:
            raise SpecValidationError(f"features {dupes} are defined twice", field=dupes[0])
        types = {f.name: f.type for f in self.features}
        if self.record_identifier not in types:
            raise SpecValidationError(
                f"record identifier {self.record_identifier!r} is not a feature",
                field="record_identifier",
            )
        if types[self.record_identifier] == FeatureType.FRACTIONAL:
            raise SpecValidationError(
                "the record identifier must be Integral or String", field="record_identifier"
            )
        if self.event_time not in types:
            raise SpecValidationError(
                f"event time {self.event_time!r} is not a feature", field="event_time"
            )
        if types[self.event_time] == FeatureType.INTEGRAL:
            raise SpecValidationError(
                "the event time must be Fractional (epoch seconds) or String (ISO-8601)",
                field="event_time",
            )
        if self.record_identifier == self.event_time:
            raise SpecValidationError(
                "record identifier and event time must differ", field="event_time"
            )
        if not (self.online or self.offline):
            raise SpecValidationError("enable the online store, the offline store or both",
                                      field="online")
        for key, value in self.tags.items():
            if not isinstance(key, str) or not _TAG_KEY_RE.match(key) or not isinstance(value,
                                                                                        str):
                raise SpecValidationError(f"bad tag {key!r}: {value!r}", field="tags")

    # -- derived -----------------------------------------------------------------------------
    @property
    def feature_names(self) -> tuple[str, ...]:
        """Every feature's name, in order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> FeatureDefinition:
        """Return the feature called ``name``.

        Raises
        ------
        SpecValidationError
            If there is none (``field`` is the name).
        """
        for f in self.features:
            if f.name == name:
                return f
        raise SpecValidationError(f"feature group {self.name!r} has no feature {name!r}",
                                  field=name)

    # -- construction and serialization -------------------------------------------------------
    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        *,
        name: str,
        record_identifier: str,
        event_time: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        online: bool = True,
        offline: bool = True,
        ttl: float | None = None,
    ) -> FeatureGroupSpec:
        """Infer the features from a DataFrame's columns and dtypes.

        Integers and booleans become Integral, floats Fractional, everything else String.

        Parameters
        ----------
        df : pandas.DataFrame
            The data (only its schema is read).
        name, record_identifier, event_time, description, tags, online, offline, ttl
            As for the class.

        Returns
        -------
        FeatureGroupSpec
        """
        import pandas as pd

        features = []
        for column, dtype in df.dtypes.items():
            if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
                type_ = FeatureType.INTEGRAL
            elif pd.api.types.is_float_dtype(dtype):
                type_ = FeatureType.FRACTIONAL
            else:
                type_ = FeatureType.STRING
            features.append(FeatureDefinition(name=str(column), type=type_))
        return cls(
            name=name,
            record_identifier=record_identifier,
            event_time=event_time,
            features=features,
            description=description,
            tags=dict(tags or {}),
            online=online,
            offline=offline,
            ttl=ttl,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "name": self.name,
            "record_identifier": self.record_identifier,
            "event_time": self.event_time,
            "features": [{"name": f.name, "type": f.type.value} for f in self.features],
            "description": self.description,
            "tags": dict(self.tags),
            "online": self.online,
            "offline": self.offline,
            "ttl": self.ttl,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureGroupSpec:
        """Build from :meth:`to_dict`'s form.

        Raises
        ------
        SpecValidationError
            On unknown or missing fields, or invalid values.
        """
        check_fields(cls, data, required=("name", "record_identifier", "event_time", "features"))
        return cls(**dict(data))

"""Shared checks for building frozen specs from their ``to_dict`` form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from mlcycle.errors import SpecValidationError

__all__ = ["check_fields"]


def check_fields(cls: type, data: Mapping[str, Any], *, required: Iterable[str]) -> None:
    """Raise unless ``data`` holds only fields of the attrs class ``cls`` and all ``required``.

    Raises
    ------
    SpecValidationError
        Naming the first unknown or missing field in ``.field``.
    """
    unknown = set(data) - {f.name for f in attrs.fields(cls)}
    if unknown:
        raise SpecValidationError(f"unknown field(s) {sorted(unknown)}", field=min(unknown))
    missing = set(required) - set(data)
    if missing:
        raise SpecValidationError(f"missing field(s) {sorted(missing)}", field=min(missing))

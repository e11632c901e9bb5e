"""Safe building blocks for the SQL that mlcycle generates.

Everything mlcycle writes into a SQL statement that did not come from mlcycle itself (a column
name from a user's data frame, a value from a spec) goes through one of these two functions:

* :func:`quote_ident` turns any name into one double-quoted identifier;
* :func:`sql_literal` turns a Python scalar into a literal that DuckDB reads back exactly.

Neither ever lets its input end the token it is placed in, so the result can be embedded in a
statement without opening a way to inject SQL.
"""

from __future__ import annotations

import math
import numbers

from mlcycle.errors import SpecValidationError

__all__ = ["quote_ident", "sql_literal"]


def _check_text(text: str, *, what: str, field: str) -> None:
    """Reject text that cannot travel inside a SQL statement.

    Parameters
    ----------
    text : str
        The text to check.
    what : str
        What the text is, for the message (``"identifier"``, ``"string literal"``).
    field : str
        The ``field`` of the error raised.

    Raises
    ------
    SpecValidationError
        If the text holds a NUL character or a lone surrogate (not encodable as UTF-8).
    """
    shown = text if len(text) <= 60 else text[:57] + "..."
    position = text.find("\x00")
    if position >= 0:
        raise SpecValidationError(
            f"the {what} {shown!r} contains a NUL character at position {position}", field=field
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecValidationError(
            f"the {what} {shown!r} is not valid Unicode (lone surrogate at position {exc.start})",
            field=field,
        ) from None


def quote_ident(name: str) -> str:
    """Quote a SQL identifier (a column, table or view name) for DuckDB.

    The name is wrapped in double quotes and every double quote inside it is doubled, so the
    result is always exactly one identifier whatever the name holds (spaces, keywords such as
    ``select``, quotes, semicolons, comment markers).

    Note that DuckDB matches identifiers case-insensitively even when they are quoted.

    Parameters
    ----------
    name : str
        The identifier, as it is spelled in the data.

    Returns
    -------
    str
        The quoted identifier, for example ``"my col"`` or ``"a""b"`` for ``a"b``.

    Raises
    ------
    SpecValidationError
        With ``field="name"``, if the name is not a string, is empty, or holds a NUL character
        or a lone surrogate.

    Examples
    --------
    >>> quote_ident("select")
    '"select"'
    >>> quote_ident('a"; DROP TABLE t; --')
    '"a""; DROP TABLE t; --"'
    """
    if not isinstance(name, str):
        raise SpecValidationError(
            f"an identifier must be a string, got {type(name).__name__}", field="name"
        )
    if not name:
        raise SpecValidationError("an identifier must not be empty", field="name")
    _check_text(name, what="identifier", field="name")
    return '"' + name.replace('"', '""') + '"'


def _float_literal(value: float) -> str:
    """Write a float as a DuckDB ``DOUBLE`` literal that reads back bit for bit."""
    if math.isnan(value):
        return "'nan'::DOUBLE"
    if math.isinf(value):
        return "'inf'::DOUBLE" if value > 0 else "'-inf'::DOUBLE"
    text = repr(value)  # the shortest text that round-trips
    if "e" not in text:
        # DuckDB reads 0.1 as a DECIMAL; an exponent makes it a DOUBLE, like Python's float.
        text += "e0"
    return f"({text})" if text.startswith("-") else text


def sql_literal(value: object) -> str:
    """Write a Python scalar as a DuckDB SQL literal.

    Parameters
    ----------
    value : None, bool, int, float or str
        The value. NumPy integer, floating and boolean scalars are accepted as well.

    Returns
    -------
    str
        The literal:

        * ``None`` -> ``NULL``;
        * ``True``/``False`` -> ``TRUE``/``FALSE``;
        * an int -> its decimal digits (DuckDB types it ``INTEGER``, ``BIGINT``, ``HUGEINT``
          ... by size);
        * a float -> its shortest round-trip ``repr`` with an exponent, so DuckDB reads it
          as a ``DOUBLE`` (not a ``DECIMAL``) with exactly the same value (``0.1`` ->
          ``0.1e0``); NaN and the infinities as ``'nan'::DOUBLE``, ``'inf'::DOUBLE`` and
          ``'-inf'::DOUBLE``;
        * a str -> single-quoted, with single quotes doubled (``it's`` -> ``'it''s'``).

        A negative number is wrapped in parentheses (``(-1)``), so the literal never forms a
        ``--`` comment with a minus sign written before it.

    Raises
    ------
    SpecValidationError
        With ``field="value"``, if the value has another type, or is a string holding a NUL
        character or a lone surrogate.

    Examples
    --------
    >>> sql_literal("it's")
    "'it''s'"
    >>> sql_literal(0.1), sql_literal(-2), sql_literal(float("nan"))
    ('0.1e0', '(-2)', "'nan'::DOUBLE")
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool) or _is_numpy_bool(value):
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        number = int(value)
        return f"({number})" if number < 0 else str(number)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Rational):
        return _float_literal(float(value))
    if isinstance(value, str):
        _check_text(value, what="string literal", field="value")
        return "'" + value.replace("'", "''") + "'"
    raise SpecValidationError(
        f"cannot write a value of type {type(value).__name__} as a SQL literal "
        "(expected None, bool, int, float or str)",
        field="value",
    )


def _is_numpy_bool(value: object) -> bool:
    """Whether ``value`` is a NumPy boolean scalar (without importing NumPy)."""
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("bool_", "bool")

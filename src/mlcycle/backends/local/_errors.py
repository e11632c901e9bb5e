"""The one place where the local backend turns ``sqlite3`` and OS errors into mlcycle errors."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Iterator

from mlcycle.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BackendError,
    MlcycleError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)

__all__ = ["translate", "translated", "translated_sql"]

BACKEND = "local"


def translate(exc: BaseException, *, kind: str = "resource", name: str = "") -> MlcycleError:
    """Return the mlcycle error that stands for ``exc``.

    Parameters
    ----------
    exc : BaseException
        A ``sqlite3.Error`` or ``OSError``.
    kind, name : str
        The resource being worked on, for errors that name one.

    Returns
    -------
    MlcycleError
    """
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc).upper():
        return AlreadyExistsError(f"{kind} {name!r} exists already", kind=kind, name=name)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return TransientBackendError(f"database busy: {exc}", backend=BACKEND, code="busy")
        if "readonly" in text or "permission" in text:
            return AccessDeniedError(f"database not writable: {exc}", backend=BACKEND)
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"no {kind} {name!r}", kind=kind, name=name)
    if isinstance(exc, PermissionError):
        return AccessDeniedError(f"permission denied: {exc.filename}", backend=BACKEND)
    return BackendError(f"local backend error: {exc}", backend=BACKEND, code=type(exc).__name__)


@contextlib.contextmanager
def translated(*, kind: str = "resource", name: str = "") -> Iterator[None]:
    """Translate ``sqlite3.Error`` and ``OSError`` raised inside the block.

    Parameters
    ----------
    kind, name : str
        The resource being worked on.
    """
    try:
        yield
    except MlcycleError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise translate(exc, kind=kind, name=name) from exc


@contextlib.contextmanager
def translated_sql(query: str = "") -> Iterator[None]:
    """Translate DuckDB (and SQLite/OS) errors raised while running an offline query.

    A query that DuckDB cannot parse or bind (a syntax error, an unknown table or column, a
    type mismatch) is the caller's: :class:`~mlcycle.errors.SpecValidationError` with
    ``field="sql"``. Other DuckDB errors are :class:`~mlcycle.errors.BackendError`.

    Parameters
    ----------
    query : str
        The query, for the log.
    """
    try:
        yield
    except MlcycleError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise translate(exc, kind="feature-group") from exc
    except Exception as exc:
        duckdb = sys.modules.get("duckdb")
        if duckdb is None or not isinstance(exc, duckdb.Error):
            raise
        user = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.ConversionException)
        if isinstance(exc, user):
            raise SpecValidationError(f"bad SQL: {exc}", field="sql") from exc
        raise BackendError(f"query failed: {exc}", backend=BACKEND,
                           code=type(exc).__name__) from exc

"""Backend bundles, chosen by URI.

Built-in schemes map to dotted import strings and are imported on first use; third parties add
schemes with :func:`register_backend` or through the ``mlcycle.backends`` entry-point group.

- ``local``: ``local://./path``, ``local:///abs/path`` or a bare path; a workspace folder
  (:class:`~mlcycle.backends.local.LocalBackend`).
- ``sagemaker``: ``sagemaker://REGION?bucket=B&prefix=P&role=ARN``; AWS through boto3
  (:class:`~mlcycle.backends.sagemaker.SageMakerBackend`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import attrs

from mlcycle.backends.base import Backend
from mlcycle.errors import ConfigurationError, UnknownBackendError

__all__ = ["BackendURI", "connect", "known_schemes", "parse_uri", "register_backend"]

ENTRY_POINT_GROUP = "mlcycle.backends"

_BUILTIN: dict[str, str] = {
    "local": "mlcycle.backends.local:LocalBackend",
    "sagemaker": "mlcycle.backends.sagemaker:SageMakerBackend",
}
# schemes added at run time; the only mutable module state, written by register_backend alone
_REGISTERED: dict[str, str | Callable[[BackendURI], Backend]] = {}

_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.\-]*$")


@attrs.frozen(kw_only=True)
class BackendURI:
    """A parsed backend URI.

    Parameters
    ----------
    scheme : str
        ``local``, ``sagemaker``, or a registered scheme.
    location : str
        The path (``local``) or the host part, such as an AWS region (``sagemaker``).
    params : dict
        The query parameters, each given once.
    text : str
        The URI as written.
    """

    scheme: str
    location: str
    params: dict[str, str] = attrs.field(factory=dict)
    text: str = ""


def parse_uri(uri: str) -> BackendURI:
    """Split a backend URI into scheme, location and query parameters.

    Parameters
    ----------
    uri : str
        A URI such as ``local://./ws`` or ``sagemaker://us-east-1?bucket=b``; a string without
        ``://`` is a local path.

    Returns
    -------
    BackendURI

    Raises
    ------
    ConfigurationError
        If the URI is empty, its scheme malformed, or a query parameter repeated.

    Examples
    --------
    >>> parse_uri("sagemaker://eu-west-1?bucket=b&prefix=p").params
    {'bucket': 'b', 'prefix': 'p'}
    >>> parse_uri("./ws").scheme
    'local'
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigurationError(f"a backend URI must be a non-empty string, not {uri!r}")
    if "://" not in uri:
        return BackendURI(scheme="local", location=uri, text=uri)
    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    if not _SCHEME_RE.match(scheme):
        raise ConfigurationError(f"malformed scheme {scheme!r} in backend URI")
    if scheme == "local":  # a path: keep it as written, '?' and '#' included
        return BackendURI(scheme="local", location=rest or ".", text=uri)
    parts = urlsplit(f"{scheme}://{rest}")
    raw = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    params: dict[str, str] = {}
    for key, values in raw.items():
        if len(values) != 1:
            raise ConfigurationError(f"query parameter {key!r} is given more than once in {uri!r}")
        params[key] = values[0]
    location = parts.netloc + parts.path
    return BackendURI(scheme=scheme, location=location, params=params, text=uri)


def register_backend(
    scheme: str, target: str | Callable[[BackendURI], Backend], *, replace: bool = False
) -> None:
    """Register a backend for a URI scheme.

    Parameters
    ----------
    scheme : str
        Lower-case scheme, such as ``"mystore"``.
    target : str or callable
        A dotted import string ``"package.module:Class"`` (imported on first use) or a callable
        taking a :class:`~mlcycle.backends.BackendURI` and returning a
        :class:`mlcycle.Backend`.
        A class target is built with its ``from_uri`` class method.
    replace : bool
        Allow replacing an existing registration (built-in schemes can never be replaced).

    Raises
    ------
    ConfigurationError
        If the scheme is malformed, built in, or registered already without ``replace``.
    """
    if not isinstance(scheme, str) or not _SCHEME_RE.match(scheme):
        raise ConfigurationError(f"malformed backend scheme {scheme!r}")
    if scheme in _BUILTIN:
        raise ConfigurationError(f"the built-in scheme {scheme!r} cannot be replaced")
    if scheme in _REGISTERED and not replace:
        raise ConfigurationError(f"scheme {scheme!r} is registered already (pass replace=True)")
    if not (isinstance(target, str) or callable(target)):
        raise ConfigurationError("target must be a dotted import string or a callable")
    _REGISTERED[scheme] = target


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_schemes() -> tuple[str, ...]:
    """Return the schemes that :func:`connect` knows: built in, registered, and entry points."""
    return tuple(sorted({*_BUILTIN, *_REGISTERED, *_entry_points()}))


def _import_target(target: str) -> object:
    module, _, attr = target.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _factory(scheme: str) -> Callable[[BackendURI], Backend]:
    target: object
    if scheme in _BUILTIN:
        target = _import_target(_BUILTIN[scheme])
    elif scheme in _REGISTERED:
        target = _REGISTERED[scheme]
        if isinstance(target, str):
            target = _import_target(target)
    elif scheme in (eps := _entry_points()):
        target = eps[scheme].load()
    else:
        known = known_schemes()
        raise UnknownBackendError(
            f"no backend for scheme {scheme!r}; known schemes: {', '.join(known)}",
            scheme=scheme,
            known=known,
        )
    if isinstance(target, type) and issubclass(target, Backend):
        return target.from_uri  # type: ignore[attr-defined,no-any-return]
    if callable(target):
        return target  # type: ignore[return-value]
    raise ConfigurationError(f"the backend registered for {scheme!r} is not callable")


def connect(uri: str | None = None, *, settings: object | None = None) -> Backend:
    """Return the backend bundle that ``uri`` names.

    Parameters
    ----------
    uri : str, optional
        ``local://PATH`` (or a bare path), ``sagemaker://REGION?bucket=...&prefix=...&role=...``,
        or a registered scheme. Without it: ``settings.backend``, then the ``MLCYCLE_BACKEND``
        environment variable, then a local workspace in ``./.mlcycle``.
    settings : mlcycle.Settings, optional
        Settings to take the URI from when ``uri`` is not given.

    Returns
    -------
    mlcycle.Backend
        Nothing is read or written until the backend is used.

    Raises
    ------
    UnknownBackendError
        If no backend is registered for the scheme (the error lists the known ones).
    ConfigurationError
        If the URI is malformed or lacks a required parameter.

    Examples
    --------
    >>> import mlcycle
    >>> b = mlcycle.connect("local://./my-workspace")
    >>> b.scheme, b.uri.endswith("my-workspace")
    ('local', True)
    """
    from mlcycle.settings import Settings

    resolved = (settings if isinstance(settings, Settings) else Settings()).resolve_backend_uri(uri)
    parsed = parse_uri(resolved)
    backend = _factory(parsed.scheme)(parsed)
    if not isinstance(backend, Backend):
        raise ConfigurationError(
            f"the backend for {parsed.scheme!r} returned {type(backend).__name__}, not a Backend"
        )
    return backend

"""Settings that choose and configure a backend, resolved when connecting, never at import.

Precedence: explicit argument > :class:`Settings` object > environment > documented default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs

__all__ = ["DEFAULT_BACKEND_URI", "ENV_BACKEND", "Settings"]

#: The environment variable that names the backend URI.
ENV_BACKEND = "MLCYCLE_BACKEND"
#: The embedded default: a local workspace in ``./.mlcycle``.
DEFAULT_BACKEND_URI = "local://./.mlcycle"


@attrs.frozen(kw_only=True)
class Settings:
    """Configuration for :func:`mlcycle.connect`.

    Parameters
    ----------
    backend : str, optional
        The backend URI (``local://PATH``, a bare path, or ``sagemaker://REGION?bucket=...``).

    Examples
    --------
    >>> from mlcycle import Settings
    >>> Settings(backend="local://./ws").resolve_backend_uri(environ={})
    'local://./ws'
    >>> Settings().resolve_backend_uri(environ={"MLCYCLE_BACKEND": "local:///tmp/x"})
    'local:///tmp/x'
    >>> Settings().resolve_backend_uri(environ={})
    'local://./.mlcycle'
    """

    backend: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )

    def resolve_backend_uri(
        self, uri: str | None = None, *, environ: Mapping[str, str] | None = None
    ) -> str:
        """Return the backend URI that applies, by precedence.

        Parameters
        ----------
        uri : str, optional
            An explicit URI; wins over everything else.
        environ : mapping, optional
            The environment to read (default: ``os.environ``).

        Returns
        -------
        str
            The URI to connect to.
        """
        if uri is not None:
            return uri
        if self.backend:
            return self.backend
        env = os.environ if environ is None else environ
        return env.get(ENV_BACKEND) or DEFAULT_BACKEND_URI

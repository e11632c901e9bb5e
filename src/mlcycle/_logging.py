"""The ``mlcycle`` logger; the library never configures handlers of its own."""

from __future__ import annotations

import logging

logger = logging.getLogger("mlcycle")
logger.addHandler(logging.NullHandler())

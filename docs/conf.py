"""Sphinx configuration; built with ``-n -W`` (every reference must resolve, no warnings)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "mlcycle"
author = "mlcycle developers"
copyright = "2026, mlcycle developers"
from mlcycle import __version__ as release  # noqa: E402

version = release
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]
# The docs build offline: no inventories are fetched, so external types are not linked.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpy docstrings carry the types
napoleon_preprocess_types = True
autodoc_default_options = {"members": True, "show-inheritance": True}
html_theme = "alabaster"
exclude_patterns = ["_build"]
# Names of other libraries' types that appear in signatures and cannot be linked offline.
nitpick_ignore_regex = [
    (r"py:.*", r"(pd|pa|duckdb|pandas|pyarrow|numpy|np|boto3|botocore|sqlite3|os)\..*"),
    (r"py:.*", r"(Path|PathLike|TextIO|Iterator|Iterable|Mapping|Sequence|Callable|Any)"),
    (r"py:.*", r"(abc|ast|collections\.abc|typing|pathlib|enum)\..*"),
    (r"py:.*", r"(datetime|dt|zoneinfo)(\..*)?"),
    (r"py:.*", r"(file-like|path-like|optional|callable|mapping|path|sequence|sequences|tuple|dict|"
               r"bytes|str|int|float|bool|type|list|object|None|default|or|of|to|iterable|"
               r"BaseException|Exception|ValueError|ImportError|LookupError|TimeoutError|"
               r"PermissionError|NotImplementedError)"),
]

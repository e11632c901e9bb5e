import json
import subprocess
import sys

import pytest

import mlcycle
from mlcycle import errors

HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "boto3",
    "botocore",
    "xgboost",
    "shap",
    "moto",
    "sagemaker",
)


def test_bare_import_loads_only_stdlib_and_attrs():
    code = (
        "import json, sys, time; t = time.perf_counter(); import mlcycle; "
        "d = time.perf_counter() - t; "
        "print(json.dumps({'mods': sorted(sys.modules), 'seconds': d}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    loaded = {m.split(".")[0] for m in result["mods"]}
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert result["seconds"] < 0.2


def test_public_names_resolve_lazily():
    for name in mlcycle.__all__:
        assert getattr(mlcycle, name) is not None
    assert "Flow" in dir(mlcycle)
    with pytest.raises(AttributeError):
        mlcycle.NoSuchThing  # noqa: B018


def test_error_tree_matches_the_documented_hierarchy():
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.UnknownBackendError, errors.ConfigurationError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.SpecValidationError, ValueError)
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.UnsupportedOperationError, NotImplementedError)
    assert issubclass(errors.JobFailedError, errors.JobError)
    assert issubclass(errors.JobTimeoutError, TimeoutError)
    assert issubclass(errors.AccessDeniedError, PermissionError)
    assert issubclass(errors.TransientBackendError, errors.BackendError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.MlcycleError)


def test_structured_fields_are_keyword_only():
    exc = errors.SpecValidationError("bad", field="x", step="s")
    assert (exc.field, exc.step) == ("x", "s")
    with pytest.raises(TypeError):
        errors.NotFoundError("gone", "artifact", "k")  # type: ignore[misc]
    nf = errors.NotFoundError("gone", kind="artifact", name="k")
    assert str(nf) == "gone"


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "mlcycle", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == mlcycle.__version__

import importlib.metadata

import pytest

import mlcycle
from mlcycle.backends import _REGISTERED, connect, known_schemes, parse_uri, register_backend
from mlcycle.backends.base import ArtifactStore, Backend, Capability
from mlcycle.backends.local import LocalBackend
from mlcycle.backends.sagemaker import SageMakerBackend
from mlcycle.errors import ConfigurationError, UnknownBackendError


@pytest.fixture
def clean_registry():
    saved = dict(_REGISTERED)
    yield
    _REGISTERED.clear()
    _REGISTERED.update(saved)


def test_default_is_a_local_workspace_in_dot_mlcycle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backend = connect()
    assert isinstance(backend, LocalBackend)
    assert backend.root == tmp_path / ".mlcycle"
    assert not (tmp_path / ".mlcycle").exists(), "connect must not write anything"


def test_environment_overrides_default_and_argument_overrides_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCYCLE_BACKEND", f"local://{tmp_path}/from-env")
    assert connect().root == tmp_path / "from-env"
    assert connect(f"local://{tmp_path}/explicit").root == tmp_path / "explicit"
    settings = mlcycle.Settings(backend=f"local://{tmp_path}/from-settings")
    assert connect(settings=settings).root == tmp_path / "from-settings"
    assert connect(f"{tmp_path}/arg", settings=settings).root == tmp_path / "arg"


def test_bare_path_and_local_uri_are_equivalent(tmp_path):
    assert connect(str(tmp_path / "w")).uri == connect(f"local://{tmp_path}/w").uri


def test_sagemaker_uri_parameters():
    b = connect(
        "sagemaker://eu-west-1?bucket=my-bucket&prefix=team/ml"
        "&role=arn:aws:iam::123456789012:role/Exec"
    )
    assert isinstance(b, SageMakerBackend)
    assert (b.region, b.bucket, b.prefix) == ("eu-west-1", "my-bucket", "team/ml")
    assert b.role == "arn:aws:iam::123456789012:role/Exec"
    assert connect(b.uri).uri == b.uri
    assert b._clients == {}, "no client may be created before first use"


@pytest.mark.parametrize(
    "uri",
    [
        "sagemaker://us-east-1",  # no bucket
        "sagemaker://nowhere?bucket=b1b",
        "sagemaker://us-east-1?bucket=UPPER",
        "sagemaker://us-east-1?bucket=bkt&role=not-an-arn",
        "sagemaker://us-east-1?bucket=bkt&colour=red",
        "sagemaker://us-east-1?bucket=bkt&bucket=other",
        "",
        "9bad://x",
    ],
)
def test_bad_uris_raise_configuration_error(uri):
    with pytest.raises(ConfigurationError):
        connect(uri)


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(UnknownBackendError) as info:
        connect("nosuch://x")
    assert info.value.scheme == "nosuch"
    assert {"local", "sagemaker"} <= set(info.value.known)


class _MemoryBackend(Backend):
    scheme = "memory"
    capabilities = frozenset({Capability.ARTIFACTS})

    def __init__(self, location):
        self.location = location

    @classmethod
    def from_uri(cls, uri):
        return cls(uri.location)

    @property
    def uri(self):
        return f"memory://{self.location}"

    @property
    def artifacts(self):
        raise NotImplementedError


def test_register_backend_with_class_callable_and_dotted_string(clean_registry):
    register_backend("memory", _MemoryBackend)
    assert "memory" in known_schemes()
    assert connect("memory://abc").location == "abc"
    register_backend("memory", lambda uri: _MemoryBackend("from-callable"), replace=True)
    assert connect("memory://x").location == "from-callable"
    register_backend("memdotted", "tests.test_backends:_MemoryBackend")
    dotted = connect("memdotted://y")
    assert type(dotted).__name__ == "_MemoryBackend" and dotted.location == "y"


def test_register_backend_refuses_builtins_duplicates_and_junk(clean_registry):
    with pytest.raises(ConfigurationError):
        register_backend("local", _MemoryBackend)
    register_backend("memory", _MemoryBackend)
    with pytest.raises(ConfigurationError):
        register_backend("memory", _MemoryBackend)
    with pytest.raises(ConfigurationError):
        register_backend("Bad Scheme", _MemoryBackend)
    register_backend("notabackend", lambda uri: object())
    with pytest.raises(ConfigurationError):
        connect("notabackend://x")


def test_entry_point_group_adds_schemes(monkeypatch):
    ep = importlib.metadata.EntryPoint(
        name="viaep", value="tests.test_backends:_MemoryBackend", group="mlcycle.backends"
    )
    real = importlib.metadata.entry_points

    def fake(**kw):
        if kw.get("group") == "mlcycle.backends":
            return importlib.metadata.EntryPoints([ep])
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    assert "viaep" in known_schemes()
    viaep = connect("viaep://z")
    assert type(viaep).__name__ == "_MemoryBackend" and viaep.location == "z"


def test_incomplete_subclasses_cannot_be_instantiated():
    class HalfBackend(Backend):
        scheme = "half"
        capabilities = frozenset()

        @property
        def uri(self):
            return "half://"

    class HalfStore(ArtifactStore):
        def put_bytes(self, key, data):
            return ""

    with pytest.raises(TypeError):
        HalfBackend()
    with pytest.raises(TypeError):
        HalfStore()


def test_parse_uri_keeps_local_paths_verbatim():
    assert parse_uri("local://./a b/c?d").location == "./a b/c?d"
    assert parse_uri("local:///abs").location == "/abs"
    parsed = parse_uri("x://h/p?a=1")
    assert (parsed.scheme, parsed.location, parsed.params) == ("x", "h/p", {"a": "1"})

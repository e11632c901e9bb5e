"""The captured tensor stream: written while training, read back by step and name.

A job with a :class:`~mlcycle.training.CaptureConfig` records, at every saved step, the tensors
of the chosen collections (see :class:`~mlcycle.training.CaptureConfig` for their names). They
live in the job's output folder of the backend's artifact store, so they read back the same on
every backend::

    <output>/debug-output/index.json        steps, collections, tensor names, metadata
    <output>/debug-output/steps/<step>.npz  one NumPy ``.npz`` per saved step (no pickles)

:class:`TensorStream` is the interface the rules read; :class:`MemoryTensorStream` holds a stream
in memory (what a running job evaluates its rules on, and what tests craft), and
:class:`CaptureReader` reads a job's stored stream.

Examples
--------
>>> stream = MemoryTensorStream()
>>> stream.add(0, "metrics", {"train-rmse": 1.5})
>>> stream.add(2, "metrics", {"train-rmse": 1.2})
>>> stream.steps(), stream.collection("metrics")
([0, 2], ('train-rmse',))
>>> stream.scalar_series("train-rmse")
[(0, 1.5), (2, 1.2)]
"""

from __future__ import annotations

import abc
import io
import queue
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlcycle.errors import NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from mlcycle.backends.base import ArtifactStore
    from mlcycle.training.job import TrainingJob

__all__ = [
    "CAPTURE_FORMAT",
    "CaptureReader",
    "MemoryTensorStream",
    "TensorStream",
    "TensorWriter",
    "pack_step",
    "unpack_step",
]

#: The ``format`` of a capture's ``index.json``.
CAPTURE_FORMAT = "mlcycle-capture/1"


def _step_key(prefix: str, step: int) -> str:
    return f"{prefix}/steps/{step:09d}.npz"


class TensorStream(abc.ABC):
    """Tensors by step and name, grouped in collections.

    Subclasses implement :meth:`steps`, :meth:`collection_names`, :meth:`collection`,
    :meth:`names_at` and :meth:`tensor`; the rest is derived.
    """

    @abc.abstractmethod
    def steps(self) -> list[int]:
        """The saved steps, ascending."""

    @abc.abstractmethod
    def collection_names(self) -> tuple[str, ...]:
        """The collections that hold tensors."""

    @abc.abstractmethod
    def collection(self, name: str) -> tuple[str, ...]:
        """The names of the tensors in collection ``name`` (empty if there is none), sorted."""

    @abc.abstractmethod
    def names_at(self, step: int) -> tuple[str, ...]:
        """The tensors saved at ``step`` (empty if the step was not saved)."""

    @abc.abstractmethod
    def tensor(self, name: str, step: int) -> np.ndarray:
        """The value of tensor ``name`` at ``step``.

        Raises
        ------
        NotFoundError
            If the tensor was not saved at that step (``kind="tensor"``).
        """

    def tensor_names(self, *, collection: str | None = None) -> tuple[str, ...]:
        """Every tensor's name (of one collection, if given), sorted."""
        if collection is not None:
            return self.collection(collection)
        names: set[str] = set()
        for c in self.collection_names():
            names.update(self.collection(c))
        return tuple(sorted(names))

    def has(self, name: str, step: int) -> bool:
        """Whether tensor ``name`` was saved at ``step``."""
        return name in self.names_at(step)

    def series(self, name: str) -> list[tuple[int, np.ndarray]]:
        """``(step, value)`` of tensor ``name`` at every step where it was saved."""
        return [(s, self.tensor(name, s)) for s in self.steps() if self.has(name, s)]

    def scalar_series(self, name: str) -> list[tuple[int, float]]:
        """``(step, value)`` of a scalar tensor at every step where it was saved."""
        return [(s, float(v)) for s, v in self.series(name)]

    def values(self, collection: str, step: int) -> dict[str, np.ndarray]:
        """Every tensor of ``collection`` saved at ``step``, by name."""
        return {n: self.tensor(n, step) for n in self.collection(collection)
                if self.has(n, step)}


class MemoryTensorStream(TensorStream):
    """A stream held in memory.

    Examples
    --------
    >>> s = MemoryTensorStream.from_series("metrics", {"validation-rmse": [0.9, 0.8]},
    ...                                    steps=[0, 5])
    >>> s.tensor("validation-rmse", 5)
    array(0.8)
    """

    def __init__(self) -> None:
        self._steps: dict[int, dict[str, Any]] = {}
        self._collections: dict[str, dict[str, None]] = {}

    @classmethod
    def from_series(
        cls,
        collection: str,
        series: Mapping[str, Sequence[Any]],
        *,
        steps: Sequence[int] | None = None,
    ) -> MemoryTensorStream:
        """Build a stream of one collection from a list of values per tensor.

        Parameters
        ----------
        collection : str
            The collection's name.
        series : mapping
            Tensor name to its values, one per step.
        steps : sequence of int, optional
            The steps of the values (default ``0, 1, 2, ...``).
        """
        stream = cls()
        stream.extend(collection, series, steps=steps)
        return stream

    def extend(
        self,
        collection: str,
        series: Mapping[str, Sequence[Any]],
        *,
        steps: Sequence[int] | None = None,
    ) -> None:
        """Add a list of values per tensor to ``collection`` (see :meth:`from_series`)."""
        for name, values in series.items():
            at = list(steps) if steps is not None else list(range(len(values)))
            if len(at) != len(values):
                raise ValueError(f"{name}: {len(values)} values for {len(at)} steps")
            for step, value in zip(at, values, strict=True):
                self.add(step, collection, {name: value})

    def add(self, step: int, collection: str, tensors: Mapping[str, Any]) -> None:
        """Record ``tensors`` (name to array-like) of ``collection`` at ``step``."""
        import numpy as np

        at = self._steps.setdefault(int(step), {})
        names = self._collections.setdefault(collection, {})
        for name, value in tensors.items():
            at[name] = np.asarray(value)
            names[name] = None

    def steps(self) -> list[int]:
        """The saved steps, ascending."""
        return sorted(self._steps)

    def collection_names(self) -> tuple[str, ...]:
        """The collections that hold tensors."""
        return tuple(self._collections)

    def collection(self, name: str) -> tuple[str, ...]:
        """The names of the tensors in collection ``name``, sorted."""
        return tuple(sorted(self._collections.get(name, ())))

    def names_at(self, step: int) -> tuple[str, ...]:
        """The tensors saved at ``step``."""
        return tuple(self._steps.get(int(step), ()))

    def has(self, name: str, step: int) -> bool:
        """Whether tensor ``name`` was saved at ``step``."""
        return name in self._steps.get(int(step), ())

    def tensor(self, name: str, step: int) -> np.ndarray:
        """The value of tensor ``name`` at ``step``."""
        try:
            return self._steps[int(step)][name]  # type: ignore[no-any-return]
        except KeyError:
            raise NotFoundError(f"no tensor {name!r} at step {step}", kind="tensor",
                                name=name) from None


def pack_step(collections: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Serialize one step's tensors as ``.npz`` bytes.

    Tensors of one collection with the same shape and dtype are stacked into one array ``g<i>``
    with their names in ``g<i>.names``, so a step with hundreds of scalars is a few arrays.
    Only numeric and string arrays are written; nothing needs pickle to read back.
    """
    import numpy as np

    groups: dict[tuple[str, tuple[int, ...], str], list[tuple[str, Any]]] = {}
    for collection, tensors in collections.items():
        for name, value in tensors.items():
            array = np.asarray(value)
            groups.setdefault((collection, array.shape, array.dtype.str), []).append(
                (name, array))
    arrays: dict[str, Any] = {}
    for i, members in enumerate(groups.values()):
        arrays[f"g{i}"] = np.stack([a for _, a in members])
        arrays[f"g{i}.names"] = np.array([n for n, _ in members])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def unpack_step(data: bytes) -> dict[str, Any]:
    """Read :func:`pack_step`'s bytes back into a mapping of tensor name to array."""
    import numpy as np

    out: dict[str, Any] = {}
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        for key in npz.files:
            if key.endswith(".names"):
                continue
            values = npz[key]
            for i, name in enumerate(npz[f"{key}.names"].tolist()):
                out[str(name)] = np.asarray(values[i])
    return out


class TensorWriter:
    """Write a stream into an artifact store, one ``.npz`` per step plus an index.

    Each step's file is written atomically, so a reader (or a job killed mid-write) sees a step
    whole or not at all. The index (metadata and tensor names) is written when the names change
    and, with the list of steps, at :meth:`close`; readers also find the steps by listing. With
    ``background=True`` the serializing and writing happen in a thread of their own, so the
    training loop never waits for the disk; :meth:`close` waits for the last write and raises
    the first error a write met.

    Parameters
    ----------
    store : mlcycle.backends.base.ArtifactStore
        Where to write.
    prefix : str
        Key prefix of the capture (``<output>/debug-output``).
    metadata : mapping
        Extra entries for the index (feature names, the sample's rows, ...).
    background : bool
        Write in a background thread.
    """

    def __init__(self, store: ArtifactStore, prefix: str, *,
                 metadata: Mapping[str, Any] | None = None, background: bool = False) -> None:
        self._store = store
        self._prefix = prefix.rstrip("/")
        self._index: dict[str, Any] = {"format": CAPTURE_FORMAT, **dict(metadata or {}),
                                       "steps": [], "collections": {}}
        self._background = background
        self._queue: queue.Queue[tuple[int, Mapping[str, Mapping[str, Any]]] | None] | None
        self._queue = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def prefix(self) -> str:
        """Key prefix of the capture."""
        return self._prefix

    def write(self, step: int, collections: Mapping[str, Mapping[str, Any]]) -> None:
        """Store the tensors of one step (the arrays must not change afterwards).

        Parameters
        ----------
        step : int
            The step (round).
        collections : mapping
            Collection name to a mapping of tensor name to array-like.
        """
        if not self._background:
            self._write(step, collections)
            return
        if self._error is not None:
            raise self._error
        if self._queue is None:
            self._queue = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._drain, name="mlcycle-capture-writer",
                                            daemon=True)
            self._thread.start()
        self._queue.put((step, collections))

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # surfaced by write() or close()
                    self._error = exc

    def _write(self, step: int, collections: Mapping[str, Mapping[str, Any]]) -> None:
        known = self._index["collections"]
        changed = not self._index["steps"]
        for collection, tensors in collections.items():
            names = known.setdefault(collection, [])
            seen = set(names)
            for name in tensors:
                if name not in seen:
                    names.append(name)
                    seen.add(name)
                    changed = True
        self._store.put_bytes(_step_key(self._prefix, step), pack_step(collections))
        if step not in self._index["steps"]:
            self._index["steps"].append(int(step))
        if changed:  # readers find the steps themselves; the index changes with the names
            self._write_index()

    def _write_index(self) -> None:
        self._store.put_json(f"{self._prefix}/index.json", self._index)

    def close(self) -> None:
        """Wait for the writes in flight, write the final index; raise a write's error."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._index["steps"]:
            self._write_index()


class CaptureReader(TensorStream):
    """Read a job's captured stream back by step and name.

    Parameters
    ----------
    source : mlcycle.training.TrainingJob or mlcycle.backends.base.ArtifactStore
        A job (its capture is found from its record) or an artifact store.
    prefix : str, optional
        The capture's key prefix, when ``source`` is an artifact store.

    Raises
    ------
    NotFoundError
        When first used, if the job captured nothing (``kind="capture"``).

    Examples
    --------
    ``reader = CaptureReader(job)``; ``reader.steps()``; ``reader.tensor("train-rmse", 10)``;
    ``reader.collection("average_shap")``; ``reader.values("feature_importance", 10)``.
    """

    def __init__(self, source: TrainingJob | ArtifactStore, prefix: str | None = None) -> None:
        self._source = source
        self._prefix = prefix
        self._index: dict[str, Any] | None = None
        self._steps: list[int] | None = None
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()

    # -- loading -----------------------------------------------------------------------------
    def _store_and_prefix(self) -> tuple[ArtifactStore, str]:
        from mlcycle.backends.base import ArtifactStore

        if isinstance(self._source, ArtifactStore):
            if self._prefix is None:
                raise ValueError("give the capture's prefix with an artifact store")
            return self._source, self._prefix.rstrip("/")
        info = self._source.describe()
        if info.capture_prefix is None:
            raise NotFoundError(f"training job {info.name!r} captured nothing", kind="capture",
                                name=info.name)
        return self._source.backend.artifacts, info.capture_prefix

    @property
    def index(self) -> dict[str, Any]:
        """The capture's index (read on first use; :meth:`refresh` reads it again)."""
        if self._index is None:
            store, prefix = self._store_and_prefix()
            key = f"{prefix}/index.json"
            if not store.exists(key):
                self._index = {"format": CAPTURE_FORMAT, "steps": [], "collections": {}}
            else:
                self._index = store.get_json(key)
        return self._index

    def refresh(self) -> None:
        """Forget what was read, to see the steps a running job has written since."""
        self._index = None
        self._steps = None
        self._cache.clear()

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's features, in order."""
        return tuple(self.index.get("feature_names", ()))

    @property
    def sample_rows(self) -> tuple[int, ...]:
        """Positions, in the training input, of the rows sampled for SHAP values."""
        return tuple(self.index.get("sample_rows", ()))

    def _step(self, step: int) -> dict[str, Any]:
        step = int(step)
        if step in self._cache:
            self._cache.move_to_end(step)
            return self._cache[step]
        if step not in self.steps():
            raise NotFoundError(f"step {step} was not saved", kind="step", name=str(step))
        store, prefix = self._store_and_prefix()
        arrays = unpack_step(store.get_bytes(_step_key(prefix, step)))
        self._cache[step] = arrays
        while len(self._cache) > 64:
            self._cache.popitem(last=False)
        return arrays

    # -- TensorStream ------------------------------------------------------------------------
    def steps(self) -> list[int]:
        """The saved steps, ascending (those a running job has written so far included)."""
        if self._steps is None:
            store, prefix = self._store_and_prefix()
            found = {int(s) for s in self.index["steps"]}
            for key in store.list_keys(f"{prefix}/steps/"):
                name = key.rsplit("/", 1)[-1]
                if name.endswith(".npz") and name[:-4].isdigit():
                    found.add(int(name[:-4]))
            self._steps = sorted(found)
        return list(self._steps)

    def collection_names(self) -> tuple[str, ...]:
        """The collections that hold tensors."""
        return tuple(self.index["collections"])

    def collection(self, name: str) -> tuple[str, ...]:
        """The names of the tensors in collection ``name``, sorted."""
        return tuple(sorted(self.index["collections"].get(name, ())))

    def names_at(self, step: int) -> tuple[str, ...]:
        """The tensors saved at ``step``."""
        if int(step) not in self.steps():
            return ()
        return tuple(self._step(step))

    def tensor(self, name: str, step: int) -> np.ndarray:
        """The value of tensor ``name`` at ``step``."""
        arrays = self._step(step)
        if name not in arrays:
            raise NotFoundError(f"no tensor {name!r} at step {step}", kind="tensor", name=name)
        return arrays[name]  # type: ignore[no-any-return]

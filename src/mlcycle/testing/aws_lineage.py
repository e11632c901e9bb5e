"""An in-process fake of SageMaker's ML Lineage Tracking API, for tests only.

moto 5.2.5 implements none of the lineage calls. :class:`SageMakerLineageFake` answers them
behind botocore's event system, on ``before-call.sagemaker.<Operation>``: botocore has already
validated the request against the real API model (types, required members, minimum lengths)
and serialized it; the fake reads the JSON body that would have gone on the wire, checks what
botocore leaves to the service (maximum lengths, patterns, enums: a ``ValidationException`` in
AWS's words), answers, checks its own answer against the operation's output shape (a fake that
answers what SageMaker could not fails the test), and hands botocore a JSON body to parse, so
callers get exactly what a client gets from AWS (timestamps parsed by botocore, errors raised
as ``ClientError`` with AWS's codes).

Operations: Create/Describe/List/Update Artifact, Action and Context, DeleteArtifact,
AddAssociation, DeleteAssociation, ListAssociations and QueryLineage. The state of each
account and region lives beside moto's own SageMaker state (and is reset with it), so every
client inside one ``moto.mock_aws()`` sees the same lineage, as with AWS.

What the fake does, as SageMaker documents it:

* ARNs ``arn:aws:sagemaker:<region>:<account>:artifact/<32 hex>``, ``.../action/<name>`` and
  ``.../context/<name>`` (names lowercased in the ARN, unique case-insensitively, as for
  SageMaker's experiment entities);
* a missing entity is ``ResourceNotFound``; a second action or context of a name is a
  ``ValidationException`` that says it already exists;
* lists sort by ``CreationTime`` (or ``Name``), ``Descending`` unless asked, ``MaxResults``
  10 unless asked, ``CreatedAfter`` and ``CreatedBefore`` inclusive ("on or after");
* ``Update*`` with ``Properties`` overwrites the property list ("Overwrites the current
  property list"), then removes ``PropertiesToRemove``;
* one association per ordered pair: adding the pair again with its type answers as a first
  add did; with another type a ``ValidationException`` that says it already exists
  (unverified against AWS; mlcycle lists the pair first and never relies on it);
* ``QueryLineage``: one start ARN (a missing one is ``ResourceNotFound``); ``Direction``
  ``Ascendants`` walks against the associations, ``Descendants`` along them, ``Both`` is the
  union of the two walks (it does not turn round, so a model's siblings are not its lineage);
  ``MaxDepth`` (default 10, at most 10) associations away. ``Filters`` select the vertices
  returned (types, lineage types, created and modified times, exact properties); the walk
  passes through the others. Without ``IncludeEdges`` only the matching vertices come back;
  with it also the vertices on the walked paths from the start to them and the walked edges
  between returned vertices. The start comes first when returned, then the rest nearest first.
  ``MaxResults`` (default 10, at most 50) pages the vertices; each edge comes once, on the
  page of its later end.

Nothing here reaches AWS: the fake is installed by
:func:`mlcycle.testing.aws.mock_sagemaker_backend` (and
:func:`mlcycle.testing.aws_featurestore.mock_feature_store_backend`) inside ``moto.mock_aws()``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs

__all__ = [
    "LINEAGE_OPERATIONS",
    "LineageStore",
    "SageMakerLineageFake",
    "lineage_store",
]

_ACCOUNT = "123456789012"
#: The operations the fake answers.
LINEAGE_OPERATIONS = (
    "CreateArtifact", "DescribeArtifact", "ListArtifacts", "UpdateArtifact", "DeleteArtifact",
    "CreateAction", "DescribeAction", "ListActions", "UpdateAction",
    "CreateContext", "DescribeContext", "ListContexts", "UpdateContext",
    "AddAssociation", "DeleteAssociation", "ListAssociations", "QueryLineage",
)
_KINDS = ("Artifact", "Action", "Context")
_LINEAGE_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:(artifact|action|context)/(.+)$")
_SUMMARY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")


class _Failure(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _now() -> float:
    """Epoch seconds, to the millisecond as SageMaker keeps them."""
    return int(time.time() * 1000) / 1000


# -- the model's constraints ---------------------------------------------------------------------
def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def violations(shape: Any, value: Any, path: str = "") -> list[str]:
    """Return what in ``value`` breaks the constraints of a botocore ``shape``, in AWS's words.

    botocore checks types, required members and minimum lengths before a request leaves;
    maximum lengths, patterns (matched whole) and enums are the service's to check.

    Parameters
    ----------
    shape : botocore.model.Shape
        An input or output shape.
    value : object
        The JSON value (timestamps as epoch seconds).
    path : str
        Where ``value`` is (for the messages).

    Returns
    -------
    list of str
    """
    out: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    where = path or shape.name

    def limit(size: int, what: str) -> None:
        if "min" in meta and size < meta["min"]:
            out.append(f"Value {_shown(value)!r} at {where!r} failed to satisfy constraint: "
                       f"Member must have {what} greater than or equal to {meta['min']}")
        if "max" in meta and size > meta["max"]:
            out.append(f"Value {_shown(value)!r} at {where!r} failed to satisfy constraint: "
                       f"Member must have {what} less than or equal to {meta['max']}")

    if kind == "structure":
        if not isinstance(value, dict):
            return [f"Value at {where!r} must be a structure"]
        for member in shape.required_members:
            if member not in value:
                out.append(f"Value null at '{_join(path, member)}' failed to satisfy "
                           "constraint: Member must not be null")
        for member, item in value.items():
            if member not in shape.members:
                out.append(f"Unknown member {member!r} at {where!r}")
                continue
            out += violations(shape.members[member], item, _join(path, member))
    elif kind == "list":
        if not isinstance(value, list):
            return [f"Value at {where!r} must be a list"]
        limit(len(value), "length")
        for i, item in enumerate(value, 1):
            out += violations(shape.member, item, f"{where}.{i}.member")
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"Value at {where!r} must be a map"]
        limit(len(value), "length")
        for key, item in value.items():
            out += violations(shape.key, key, f"{where}.key")
            out += violations(shape.value, item, f"{where}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"Value at {where!r} must be a string"]
        limit(len(value), "length")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            out.append(f"Value {_shown(value)!r} at {where!r} failed to satisfy constraint: "
                       f"Member must satisfy regular expression pattern: {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            out.append(f"Value {_shown(value)!r} at {where!r} failed to satisfy constraint: "
                       f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"Value at {where!r} must be an integer"]
        if "min" in meta and value < meta["min"]:
            out.append(f"Value {value!r} at {where!r} failed to satisfy constraint: "
                       f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.append(f"Value {value!r} at {where!r} failed to satisfy constraint: "
                       f"Member must have value less than or equal to {meta['max']}")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"Value at {where!r} must be a timestamp (epoch seconds)"]
    elif kind == "boolean" and not isinstance(value, bool):
        return [f"Value at {where!r} must be a boolean"]
    return out


def _join(path: str, member: str) -> str:
    return f"{path}.{_camel(member)}" if path else _camel(member)


# -- state ---------------------------------------------------------------------------------------
@attrs.define
class _Entity:
    arn: str
    lineage_type: str
    name: str | None
    type: str
    source: dict[str, Any]
    properties: dict[str, str]
    created: float
    modified: float
    status: str | None = None
    description: str | None = None

    def matches_source(self, uri: str | None) -> bool:
        return uri is None or self.source.get("SourceUri") == uri


@attrs.define
class _Edge:
    source: str
    destination: str
    type: str | None
    created: float


class LineageStore:
    """SageMaker's lineage entities and associations of one account and region.

    Parameters
    ----------
    region, account_id : str
        Whose they are.

    Attributes
    ----------
    entities : dict of str to object
        The artifacts, actions and contexts by ARN.
    edges : dict
        The associations by (source ARN, destination ARN).
    lock : object
        A re-entrant lock (``threading.RLock``), held while an operation runs.
    """

    def __init__(self, *, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.entities: dict[str, _Entity] = {}
        self.names: dict[tuple[str, str], str] = {}
        self.edges: dict[tuple[str, str], _Edge] = {}
        self.lock = threading.RLock()
        self._last = 0.0

    def stamp(self, now: float) -> float:
        """A creation or modification time: ``now``, but always a millisecond after the last.

        Times never go back or repeat within a store, so the order of creation is the order
        of the times (SageMaker's may tie within a millisecond; mlcycle breaks ties by ARN).
        """
        self._last = max(round(now, 3), round(self._last + 0.001, 3))
        return self._last

    def arn(self, kind: str, tail: str) -> str:
        """The ARN of an entity of ``kind`` whose resource part is ``tail``."""
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{kind.lower()}/{tail}"

    def lookup(self, kind: str, name_or_arn: str) -> _Entity:
        """The entity of ``kind`` with this name or ARN, or ResourceNotFound."""
        arn = (name_or_arn if name_or_arn.startswith("arn:")
               else self.names.get((kind, name_or_arn.lower()), ""))
        found = self.entities.get(arn)
        if found is None or found.lineage_type != kind:
            raise _Failure("ResourceNotFound",
                           f"Resource Not Found: {kind} {name_or_arn} does not exist.")
        return found


def lineage_store(*, region: str = "us-east-1", account_id: str = _ACCOUNT) -> LineageStore:
    """Return the fake's lineage state of an account and region.

    It lives beside moto's SageMaker state of the same account and region, so it is shared by
    every client inside one ``moto.mock_aws()`` and reset with moto's.
    """
    from moto.backends import get_backend

    moto_backend = get_backend("sagemaker")[account_id][region]
    state = vars(moto_backend)
    store = state.get("_mlcycle_lineage")
    if store is None:
        store = state.setdefault("_mlcycle_lineage",
                                 LineageStore(region=region, account_id=account_id))
    return store


# -- the fake ------------------------------------------------------------------------------------
class SageMakerLineageFake:
    """SageMaker's lineage operations, answered in-process behind botocore's events.

    Parameters
    ----------
    account_id : str
        The account of the ARNs (moto's).
    clock : callable
        Epoch seconds now (to the millisecond by default, as SageMaker keeps times).

    Attributes
    ----------
    calls : list of tuple
        Every operation the fake answered, with its request body, in order.
    """

    def __init__(self, *, account_id: str = _ACCOUNT,
                 clock: Callable[[], float] = _now) -> None:
        self.account_id = account_id
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._clock = clock

    def install(self, session: Any) -> None:
        """Register the handlers on a boto3 session; clients created from it afterwards use them."""
        for operation in LINEAGE_OPERATIONS:
            session.events.register(f"before-call.sagemaker.{operation}", self._answer)

    # -- wire ------------------------------------------------------------------------------------
    def _answer(self, model: Any, params: dict[str, Any], context: dict[str, Any],
                **_: Any) -> Any:
        body = params.get("body") or b"{}"
        request = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        self.calls.append((model.name, request))
        problems = violations(model.input_shape, request) if model.input_shape else []
        if problems:
            count = len(problems)
            return _wire(model, 400, {
                "__type": "ValidationException",
                "message": f"{count} validation error{'s' if count > 1 else ''} detected: "
                           + "; ".join(problems)})
        store = lineage_store(region=context.get("client_region") or "us-east-1",
                              account_id=self.account_id)
        handler = getattr(self, f"_op_{model.name}")
        try:
            with store.lock:
                answer = handler(store, request)
        except _Failure as failure:
            return _wire(model, failure.status,
                         {"__type": failure.code, "message": failure.message})
        wrong = violations(model.output_shape, answer)
        if wrong:  # pragma: no cover - a bug in the fake
            raise AssertionError(f"the lineage fake answered {model.name} with what SageMaker "
                                 f"could not: {wrong}")
        return _wire(model, 200, answer)

    # -- entities ----------------------------------------------------------------------------
    def _create(self, store: LineageStore, kind: str, request: dict[str, Any]) -> _Entity:
        now = store.stamp(self._clock())
        name = request.get(f"{kind}Name")
        if kind == "Artifact":
            arn = store.arn(kind, uuid.uuid4().hex)
        else:
            if (kind, name.lower()) in store.names:
                raise _Failure("ValidationException",
                               f"{kind} with name {name} already exists.")
            arn = store.arn(kind, name.lower())
            store.names[(kind, name.lower())] = arn
        entity = _Entity(arn=arn, lineage_type=kind, name=name, type=request[f"{kind}Type"],
                         source=dict(request["Source"]),
                         properties=dict(request.get("Properties") or {}), created=now,
                         modified=now, status=request.get("Status"),
                         description=request.get("Description"))
        store.entities[arn] = entity
        return entity

    @staticmethod
    def _described(entity: _Entity) -> dict[str, Any]:
        kind = entity.lineage_type
        out: dict[str, Any] = {f"{kind}Arn": entity.arn, "Source": entity.source,
                               f"{kind}Type": entity.type, "Properties": entity.properties,
                               "CreationTime": entity.created,
                               "LastModifiedTime": entity.modified}
        if entity.name is not None:
            out[f"{kind}Name"] = entity.name
        if entity.status is not None:
            out["Status"] = entity.status
        if entity.description is not None:
            out["Description"] = entity.description
        return out

    @staticmethod
    def _summary(entity: _Entity) -> dict[str, Any]:
        kind = entity.lineage_type
        out: dict[str, Any] = {f"{kind}Arn": entity.arn, "Source": entity.source,
                               f"{kind}Type": entity.type, "CreationTime": entity.created,
                               "LastModifiedTime": entity.modified}
        if entity.name is not None:
            out[f"{kind}Name"] = entity.name
        if entity.status is not None:
            out["Status"] = entity.status
        return out

    def _list(self, store: LineageStore, kind: str, request: dict[str, Any]) -> dict[str, Any]:
        found = [e for e in store.entities.values()
                 if e.lineage_type == kind and e.matches_source(request.get("SourceUri"))
                 and request.get(f"{kind}Type") in (None, e.type)
                 and ("CreatedAfter" not in request or e.created >= request["CreatedAfter"])
                 and ("CreatedBefore" not in request or e.created <= request["CreatedBefore"])]
        if request.get("SortBy") == "Name":
            found.sort(key=lambda e: ((e.name or "").lower(), e.arn))
        else:
            found.sort(key=lambda e: (e.created, e.arn))
        if request.get("SortOrder", "Descending") == "Descending":
            found.reverse()
        page, token = _page(found, request, default=10)
        answer: dict[str, Any] = {f"{kind}Summaries": [self._summary(e) for e in page]}
        if token:
            answer["NextToken"] = token
        return answer

    def _update(self, store: LineageStore, kind: str, request: dict[str, Any]) -> _Entity:
        key = "ArtifactArn" if kind == "Artifact" else f"{kind}Name"
        entity = store.lookup(kind, request[key])
        if "Properties" in request:
            entity.properties = dict(request["Properties"])
        for gone in request.get("PropertiesToRemove") or ():
            entity.properties.pop(gone, None)
        if "Status" in request:
            entity.status = request["Status"]
        if "Description" in request:
            entity.description = request["Description"]
        if kind == "Artifact" and "ArtifactName" in request:
            entity.name = request["ArtifactName"]
        if len(entity.properties) > 30:
            raise _Failure("ValidationException",
                           f"{kind} {entity.arn} cannot have more than 30 properties.")
        entity.modified = store.stamp(self._clock())
        return entity

    def _op_CreateArtifact(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return {"ArtifactArn": self._create(store, "Artifact", request).arn}

    def _op_CreateAction(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return {"ActionArn": self._create(store, "Action", request).arn}

    def _op_CreateContext(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return {"ContextArn": self._create(store, "Context", request).arn}

    def _op_DescribeArtifact(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return self._described(store.lookup("Artifact", request["ArtifactArn"]))

    def _op_DescribeAction(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return self._described(store.lookup("Action", request["ActionName"]))

    def _op_DescribeContext(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return self._described(store.lookup("Context", request["ContextName"]))

    def _op_ListArtifacts(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return self._list(store, "Artifact", request)

    def _op_ListActions(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return self._list(store, "Action", request)

    def _op_ListContexts(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return self._list(store, "Context", request)

    def _op_UpdateArtifact(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return {"ArtifactArn": self._update(store, "Artifact", request).arn}

    def _op_UpdateAction(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return {"ActionArn": self._update(store, "Action", request).arn}

    def _op_UpdateContext(self, store: LineageStore, request: dict[str, Any]) -> Any:
        return {"ContextArn": self._update(store, "Context", request).arn}

    def _op_DeleteArtifact(self, store: LineageStore, request: dict[str, Any]) -> Any:
        if "ArtifactArn" in request:
            entity = store.lookup("Artifact", request["ArtifactArn"])
        elif "Source" in request:
            uri = request["Source"]["SourceUri"]
            matching = [e for e in store.entities.values()
                        if e.lineage_type == "Artifact" and e.source.get("SourceUri") == uri]
            if not matching:
                raise _Failure("ResourceNotFound", f"Artifact with source {uri} not found.")
            entity = min(matching, key=lambda e: (e.created, e.arn))
        else:
            raise _Failure("ValidationException", "Either ArtifactArn or Source must be "
                                                  "specified.")
        del store.entities[entity.arn]
        for pair in [p for p in store.edges if entity.arn in p]:
            del store.edges[pair]
        return {"ArtifactArn": entity.arn}

    # -- associations ------------------------------------------------------------------------
    def _entity(self, store: LineageStore, arn: str) -> _Entity:
        entity = store.entities.get(arn)
        if entity is None:
            raise _Failure("ResourceNotFound", f"Resource Not Found: {arn} does not exist.")
        return entity

    def _op_AddAssociation(self, store: LineageStore, request: dict[str, Any]) -> Any:
        source = self._entity(store, request["SourceArn"])
        destination = self._entity(store, request["DestinationArn"])
        kind = request.get("AssociationType")
        pair = (source.arn, destination.arn)
        existing = store.edges.get(pair)
        if existing is not None and existing.type != kind:
            raise _Failure("ValidationException",
                           f"Association between {source.arn} and {destination.arn} already "
                           f"exists with type {existing.type}.")
        if existing is None:
            store.edges[pair] = _Edge(source=source.arn, destination=destination.arn,
                                      type=kind, created=store.stamp(self._clock()))
        return {"SourceArn": source.arn, "DestinationArn": destination.arn}

    def _op_DeleteAssociation(self, store: LineageStore, request: dict[str, Any]) -> Any:
        pair = (request["SourceArn"], request["DestinationArn"])
        if pair not in store.edges:
            raise _Failure("ResourceNotFound",
                           f"Association between {pair[0]} and {pair[1]} does not exist.")
        del store.edges[pair]
        return {"SourceArn": pair[0], "DestinationArn": pair[1]}

    def _op_ListAssociations(self, store: LineageStore, request: dict[str, Any]) -> Any:
        def wanted(edge: _Edge) -> bool:
            src, dst = store.entities[edge.source], store.entities[edge.destination]
            return (request.get("SourceArn") in (None, edge.source)
                    and request.get("DestinationArn") in (None, edge.destination)
                    and request.get("SourceType") in (None, src.type)
                    and request.get("DestinationType") in (None, dst.type)
                    and request.get("AssociationType") in (None, edge.type)
                    and ("CreatedAfter" not in request or edge.created >= request["CreatedAfter"])
                    and ("CreatedBefore" not in request
                         or edge.created <= request["CreatedBefore"]))

        found = [e for e in store.edges.values() if wanted(e)]
        by = request.get("SortBy", "CreationTime")
        keys: dict[str, Callable[[_Edge], Any]] = {
            "SourceArn": lambda e: (e.source, e.destination),
            "DestinationArn": lambda e: (e.destination, e.source),
            "SourceType": lambda e: (store.entities[e.source].type, e.created),
            "DestinationType": lambda e: (store.entities[e.destination].type, e.created),
            "CreationTime": lambda e: (e.created, e.source, e.destination),
        }
        found.sort(key=keys[by])
        if request.get("SortOrder", "Descending") == "Descending":
            found.reverse()
        page, token = _page(found, request, default=10)
        summaries = []
        for edge in page:
            src, dst = store.entities[edge.source], store.entities[edge.destination]
            item: dict[str, Any] = {"SourceArn": edge.source, "DestinationArn": edge.destination,
                                    "SourceType": src.type, "DestinationType": dst.type,
                                    "CreationTime": edge.created}
            if edge.type is not None:
                item["AssociationType"] = edge.type
            for key, entity in (("SourceName", src), ("DestinationName", dst)):
                if entity.name and _SUMMARY_NAME.fullmatch(entity.name):
                    item[key] = entity.name
            summaries.append(item)
        answer: dict[str, Any] = {"AssociationSummaries": summaries}
        if token:
            answer["NextToken"] = token
        return answer

    # -- QueryLineage ------------------------------------------------------------------------
    def _op_QueryLineage(self, store: LineageStore, request: dict[str, Any]) -> Any:
        starts = request.get("StartArns") or []
        if not starts:
            raise _Failure("ValidationException", "StartArns must contain one ARN.")
        start = self._entity(store, starts[0])
        direction = request.get("Direction", "Both")
        max_depth = request.get("MaxDepth", 10)
        include_edges = request.get("IncludeEdges", False)
        ways = {"Ascendants": (True,), "Descendants": (False,), "Both": (True, False)}[direction]
        depths: dict[str, int] = {start.arn: 0}
        walked: dict[tuple[str, str], _Edge] = {}
        # per way, which vertices each vertex leads to (away from the start)
        onward: dict[str, set[str]] = {}
        for up in ways:
            seen = {start.arn}
            frontier = [start.arn]
            for depth in range(1, max_depth + 1):
                following: list[str] = []
                for arn in frontier:
                    for edge in store.edges.values():
                        near, far = ((edge.destination, edge.source) if up
                                     else (edge.source, edge.destination))
                        if near != arn:
                            continue
                        walked[(edge.source, edge.destination)] = edge
                        onward.setdefault(near, set()).add(far)
                        if far not in seen:
                            seen.add(far)
                            following.append(far)
                            depths[far] = min(depths.get(far, depth), depth)
                if not following:
                    break
                frontier = following
        filters = request.get("Filters") or {}
        matched = {arn for arn in depths if _passes(store.entities[arn], filters)}
        kept = set(matched)
        if include_edges:  # and the vertices on the walked paths from the start to them
            changed = True
            while changed:
                changed = False
                for arn, nexts in onward.items():
                    if arn not in kept and nexts & kept:
                        kept.add(arn)
                        changed = True
        order = sorted(kept, key=lambda a: (a != start.arn, depths[a],
                                            store.entities[a].created, a))
        edges = ([e for e in walked.values() if e.source in kept and e.destination in kept]
                 if include_edges else [])
        page, token = _page(order, request, default=10)
        position = {arn: i for i, arn in enumerate(order)}
        on_page = set(page)
        answer: dict[str, Any] = {
            "Vertices": [{"Arn": a, "Type": store.entities[a].type[:40],
                          "LineageType": store.entities[a].lineage_type} for a in page],
            "Edges": [_edge(e) for e in edges
                      if max((e.source, e.destination), key=position.__getitem__) in on_page],
        }
        if token:
            answer["NextToken"] = token
        return answer


def _passes(entity: _Entity, filters: dict[str, Any]) -> bool:
    props = filters.get("Properties") or {}
    return (("Types" not in filters or entity.type in filters["Types"])
            and ("LineageTypes" not in filters or entity.lineage_type in filters["LineageTypes"])
            and ("CreatedBefore" not in filters or entity.created < filters["CreatedBefore"])
            and ("CreatedAfter" not in filters or entity.created > filters["CreatedAfter"])
            and ("ModifiedBefore" not in filters or entity.modified < filters["ModifiedBefore"])
            and ("ModifiedAfter" not in filters or entity.modified > filters["ModifiedAfter"])
            and all(entity.properties.get(k) == v for k, v in props.items()))


def _edge(edge: _Edge) -> dict[str, Any]:
    out: dict[str, Any] = {"SourceArn": edge.source, "DestinationArn": edge.destination}
    if edge.type is not None:
        out["AssociationType"] = edge.type
    return out


def _page(items: list[Any], request: dict[str, Any], *, default: int) -> tuple[list[Any], str]:
    """One page of ``items`` and the token of the next ('' at the end).

    A token is bound to the request that made it (less its paging members): another
    request's token is a ``ValidationException``, as AWS's opaque tokens are.
    """
    query = {k: v for k, v in request.items() if k not in ("NextToken", "MaxResults")}
    fingerprint = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
    offset = 0
    if request.get("NextToken"):
        try:
            data = json.loads(base64.urlsafe_b64decode(request["NextToken"].encode()))
            offset, bound = int(data["o"]), data["q"]
        except (ValueError, KeyError, TypeError):
            raise _Failure("ValidationException", "Invalid NextToken.") from None
        if bound != fingerprint:
            raise _Failure("ValidationException", "Invalid NextToken.")
    size = request.get("MaxResults", default)
    page = items[offset:offset + size]
    if offset + size >= len(items):
        return page, ""
    token = base64.urlsafe_b64encode(
        json.dumps({"o": offset + size, "q": fingerprint}).encode()).decode()
    return page, token


def _wire(model: Any, status: int, body: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """What botocore makes of an HTTP response with this JSON body."""
    from botocore.awsrequest import AWSResponse
    from botocore.parsers import create_parser

    raw = json.dumps(body).encode("utf-8")
    headers = {"x-amzn-requestid": str(uuid.uuid4()), "content-type": "application/x-amz-json-1.1",
               "content-length": str(len(raw)), "date": dt.datetime.now(dt.UTC).strftime(
                   "%a, %d %b %Y %H:%M:%S GMT")}
    parser = create_parser(model.metadata.get("protocol", "json"))
    parsed = parser.parse({"status_code": status, "headers": headers, "body": raw},
                          model.output_shape)
    return AWSResponse("https://sagemaker.fake.invalid/", status, headers, None), parsed

"""In-process fakes for what moto 5.2.5 lacks of SageMaker Feature Store, for tests only.

moto implements ``CreateFeatureGroup`` and ``DescribeFeatureGroup`` (with S3, Glue, STS and an
Athena that answers every query with no rows). It lacks the whole feature-store runtime
(``PutRecord``, ``GetRecord``, ``BatchGetRecord``, ``DeleteRecord``), ``ListFeatureGroups``,
``DeleteFeatureGroup`` and ``ListTags`` on a feature group; its ``DescribeFeatureGroup`` drops
``OnlineStoreConfig`` and ``Description``, raises a raw ``KeyError`` for a missing group, and a
group without an offline store makes ``CreateFeatureGroup`` raise ``TypeError``.

:class:`FeatureStoreFake` fills those gaps behind botocore's event system: handlers on
``before-call.<service>.<Operation>`` answer the missing operations with parsed responses, so
botocore still serializes and validates every request against the real API model before a
fake sees it. Groups stay in moto's own store; the fake emulates what SageMaker does and moto
does not (the Glue table of an offline store, the documented ``ResolvedOutputS3Uri``), and the
runtime's documented semantics: the latest event time wins on ``PutRecord`` (a tie replaces),
a soft delete hides a record, a hard delete removes it, and one older than the stored record is
refused; TTL is not applied.

:class:`AthenaOnDuckDB` answers Athena's query calls by running the query in DuckDB over the
Parquet objects under each Glue table's location in moto's S3, so tests see real results and
the Athena SQL mlcycle generates is checked for its meaning. DuckDB gets four macros for the
Trino functions mlcycle uses (``from_unixtime``, ``from_iso8601_timestamp``, ``to_unixtime``,
``nan``/``infinity``) and, like Athena, result column names are lowercased.

Nothing here can reach AWS: :func:`mock_feature_store_backend` runs inside ``moto.mock_aws()``
with fake credentials.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import itertools
import math
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import attrs

from mlcycle.backends.sagemaker import SageMakerBackend

__all__ = [
    "AthenaOnDuckDB",
    "FeatureStoreFake",
    "FeatureStoreOnMoto",
    "mock_feature_store_backend",
]

_ACCOUNT = "123456789012"
_RUNTIME = "sagemaker-featurestore-runtime"


def _response(parsed: dict[str, Any], status: int = 200) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse

    body = dict(parsed)
    body.setdefault(
        "ResponseMetadata",
        {"RequestId": uuid.uuid4().hex, "HTTPStatusCode": status, "HTTPHeaders": {}},
    )
    return AWSResponse("https://fake.invalid/", status, {}, None), body


def _error(code: str, message: str, status: int = 400) -> tuple[Any, dict[str, Any]]:
    return _response({"Error": {"Code": code, "Message": message}}, status)


def _epoch(text: str, feature_type: str) -> float:
    if feature_type == "Fractional":
        return float(text)
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


@attrs.define
class _Stored:
    values: dict[str, str]
    event: float
    deleted: bool = False


class FeatureStoreFake:
    """SageMaker's feature-store operations that moto lacks, answered in-process.

    Parameters
    ----------
    region : str
        The region of the clients it serves.
    account_id : str
        moto's account.

    Attributes
    ----------
    calls : list of tuple
        Every operation the fake answered or completed, with its parameters, in order.
    """

    def __init__(self, *, region: str = "us-east-1", account_id: str = _ACCOUNT) -> None:
        self.region = region
        self.account_id = account_id
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._records: dict[str, dict[str, _Stored]] = {}
        self._extra: dict[str, dict[str, Any]] = {}
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=self.region)
        return self._clients[service]

    def close(self) -> None:
        """Close the clients the fake made for itself."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- wiring --------------------------------------------------------------------------------
    def install(self, session: Any) -> None:
        """Register the handlers on a boto3 session; clients created from it afterwards use them."""
        self._session = session
        events = session.events
        events.register("before-parameter-build.sagemaker.*", self._stash)
        events.register(f"before-parameter-build.{_RUNTIME}.*", self._stash)
        events.register("before-call.sagemaker.*", self._sagemaker)
        events.register("after-call.sagemaker.CreateFeatureGroup", self._created)
        events.register("after-call.sagemaker.DescribeFeatureGroup", self._described)
        events.register(f"before-call.{_RUNTIME}.*", self._runtime)

    @staticmethod
    def _stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["mlcycle_fake_params"] = copy.deepcopy(params)

    def _moto(self) -> Any:
        from moto.backends import get_backend

        return get_backend("sagemaker")[self.account_id][self.region]

    def _group(self, name_or_arn: str) -> Any:
        name = name_or_arn.rsplit("/", 1)[-1].lower()
        for group in self._moto().feature_groups.values():
            if group.feature_group_name.lower() == name:
                return group
        return None

    # -- control plane -------------------------------------------------------------------------
    def _sagemaker(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        params = context.get("mlcycle_fake_params", {})
        handler = getattr(self, f"_sm_{model.name}", None)
        if handler is None:
            return None
        with self._lock:
            return handler(params, context)

    def _sm_CreateFeatureGroup(self, params: dict[str, Any], context: dict[str, Any]) -> Any:
        context["mlcycle_fake_create"] = params
        if "OfflineStoreConfig" in params:
            return None  # moto creates it; _created completes it
        # moto raises TypeError for a group without an offline store: create it in its store.
        if self._group(params["FeatureGroupName"]) is not None:
            return _error(
                "ResourceInUse", f"FeatureGroup {params['FeatureGroupName']} already exists"
            )
        arn = self._moto().create_feature_group(
            feature_group_name=params["FeatureGroupName"],
            record_identifier_feature_name=params["RecordIdentifierFeatureName"],
            event_time_feature_name=params["EventTimeFeatureName"],
            feature_definitions=params["FeatureDefinitions"],
            offline_store_config={"S3StorageConfig": {"S3Uri": "s3://unused"}},
            role_arn=params.get("RoleArn"),
            tags=params.get("Tags", []),
        )
        self._group(params["FeatureGroupName"]).offline_store_config = None
        self._remember(params)
        return _response({"FeatureGroupArn": arn})

    def _remember(self, params: dict[str, Any]) -> None:
        self._extra[params["FeatureGroupName"].lower()] = {
            key: params[key] for key in ("OnlineStoreConfig", "Description") if key in params
        }
        self._records.setdefault(params["FeatureGroupName"].lower(), {})
        self.calls.append(("CreateFeatureGroup", params))

    def _created(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("mlcycle_fake_create")
        if params is None or http_response.status_code >= 300 or "OfflineStoreConfig" not in params:
            return
        with self._lock:
            group = self._group(params["FeatureGroupName"])
            self._remember(params)
            # What SageMaker reports and creates, which moto does not: the documented layout of
            # ResolvedOutputS3Uri, and the Glue table of the offline store.
            epoch = int(group.creation_time.timestamp())
            name = group.feature_group_name
            offline = group.offline_store_config
            s3_uri = offline["S3StorageConfig"]["S3Uri"].rstrip("/")
            data = (
                f"{s3_uri}/{self.account_id}/sagemaker/{self.region}/offline-store/"
                f"{name}-{epoch}/data"
            )
            offline["S3StorageConfig"]["ResolvedOutputS3Uri"] = data
            table = f"{name.replace('-', '_').lower()}_{epoch}"
            offline["DataCatalogConfig"] = {
                "TableName": table,
                "Catalog": "AwsDataCatalog",
                "Database": "sagemaker_featurestore",
            }
            if params["OfflineStoreConfig"].get("DisableGlueTableCreation"):
                return
            self._create_glue_table(params, table, data)

    def _create_glue_table(self, params: dict[str, Any], table: str, location: str) -> None:
        glue = self._client("glue")
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(DatabaseInput={"Name": "sagemaker_featurestore"})
        types = {"Integral": "bigint", "Fractional": "double", "String": "string"}
        columns = [
            {"Name": f["FeatureName"].lower(), "Type": types[f["FeatureType"]]}
            for f in params["FeatureDefinitions"]
        ]
        columns += [
            {"Name": "write_time", "Type": "timestamp"},
            {"Name": "api_invocation_time", "Type": "timestamp"},
            {"Name": "is_deleted", "Type": "boolean"},
        ]
        glue.create_table(
            DatabaseName="sagemaker_featurestore",
            TableInput={
                "Name": table,
                "TableType": "EXTERNAL_TABLE",
                "StorageDescriptor": {
                    "Columns": columns,
                    "Location": location,
                    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "OutputFormat": (
                        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
                    ),
                    "SerdeInfo": {
                        "SerializationLibrary": (
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                        )
                    },
                },
            },
        )

    def _sm_DescribeFeatureGroup(self, params: dict[str, Any], context: dict[str, Any]) -> Any:
        if self._group(params["FeatureGroupName"]) is None:  # moto: raw KeyError
            return _error(
                "ResourceNotFound",
                f"Resource Not Found: FeatureGroup {params['FeatureGroupName']} not found",
            )
        return None

    def _described(self, parsed: dict[str, Any], **_: Any) -> None:
        name = str(parsed.get("FeatureGroupName", "")).lower()
        with self._lock:
            for key, value in self._extra.get(name, {}).items():
                parsed.setdefault(key, copy.deepcopy(value))

    def _sm_ListFeatureGroups(self, params: dict[str, Any], context: dict[str, Any]) -> Any:
        self.calls.append(("ListFeatureGroups", params))
        groups = list(self._moto().feature_groups.values())
        if "NameContains" in params:
            groups = [g for g in groups if params["NameContains"] in g.feature_group_name]
        key = params.get("SortBy", "CreationTime")
        order = {
            "Name": lambda g: g.feature_group_name,
            "CreationTime": lambda g: g.creation_time,
        }.get(key, lambda g: g.creation_time)
        groups.sort(key=order, reverse=params.get("SortOrder", "Descending") == "Descending")
        start = int(params.get("NextToken", "0"))
        size = int(params.get("MaxResults", 10))
        page = groups[start : start + size]
        answer: dict[str, Any] = {
            "FeatureGroupSummaries": [
                {
                    "FeatureGroupName": g.feature_group_name,
                    "FeatureGroupArn": g.arn,
                    "CreationTime": g.creation_time,
                    "FeatureGroupStatus": "Created",
                }
                for g in page
            ]
        }
        if start + size < len(groups):
            answer["NextToken"] = str(start + size)
        return _response(answer)

    def _sm_DeleteFeatureGroup(self, params: dict[str, Any], context: dict[str, Any]) -> Any:
        group = self._group(params["FeatureGroupName"])
        if group is None:
            return _error(
                "ResourceNotFound", f"FeatureGroup {params['FeatureGroupName']} not found"
            )
        self.calls.append(("DeleteFeatureGroup", params))
        # As SageMaker: the online store goes; offline objects and the Glue table stay.
        del self._moto().feature_groups[group.arn]
        self._records.pop(group.feature_group_name.lower(), None)
        self._extra.pop(group.feature_group_name.lower(), None)
        return _response({})

    def _sm_ListTags(self, params: dict[str, Any], context: dict[str, Any]) -> Any:
        if ":feature-group/" not in params["ResourceArn"]:
            return None
        group = self._group(params["ResourceArn"])
        if group is None:
            return _error("ValidationException", "Could not find feature group")
        tags = list(group.tags or [])
        start = int(params.get("NextToken", "0"))
        size = int(params.get("MaxResults", 50))
        answer: dict[str, Any] = {"Tags": tags[start : start + size]}
        if start + size < len(tags):
            answer["NextToken"] = str(start + size)
        return _response(answer)

    # -- runtime -------------------------------------------------------------------------------
    def _runtime(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        params = context.get("mlcycle_fake_params", {})
        handler = getattr(self, f"_rt_{model.name}", None)
        if handler is None:  # pragma: no cover - every runtime operation is handled
            return _error("InternalFailure", f"the fake has no {model.name}", 500)
        with self._lock:
            self.calls.append((model.name, params))
            return handler(params)

    def _online(self, name_or_arn: str) -> tuple[Any, Any]:
        """The moto group and an error response (one of the two is None)."""
        group = self._group(name_or_arn)
        if group is None:
            return None, _error("ResourceNotFound", f"Feature group {name_or_arn} not found")
        online = self._extra.get(group.feature_group_name.lower(), {}).get("OnlineStoreConfig")
        if not (online or {}).get("EnableOnlineStore"):
            return None, _error(
                "ValidationError", f"Feature group {name_or_arn} has no online store enabled"
            )
        return group, None

    @staticmethod
    def _types(group: Any) -> dict[str, str]:
        return {f["FeatureName"]: f["FeatureType"] for f in group.feature_definitions}

    def _rt_PutRecord(self, params: dict[str, Any]) -> Any:
        group, problem = self._online(params["FeatureGroupName"])
        if problem is not None:
            return problem
        types = self._types(group)
        values = {}
        for item in params["Record"]:
            name = item["FeatureName"]
            if name not in types:
                return _error("ValidationError", f"Feature {name} is not in the feature group")
            if "ValueAsString" not in item:
                continue
            text = item["ValueAsString"]
            try:
                if types[name] == "Integral":
                    int(text)
                elif types[name] == "Fractional":
                    float(text)
            except ValueError:
                return _error("ValidationError", f"Value {text!r} is not {types[name]}")
            values[name] = text
        rid, event_name = group.record_identifier_feature_name, group.event_time_feature_name
        if rid not in values or event_name not in values:
            return _error(
                "ValidationError", "The record identifier and the event time are required"
            )
        event = _epoch(values[event_name], types[event_name])
        stores = set(params.get("TargetStores", ["OnlineStore", "OfflineStore"]))
        if "OnlineStore" in stores:
            records = self._records.setdefault(group.feature_group_name.lower(), {})
            stored = records.get(values[rid])
            if stored is None or event >= stored.event:  # the latest event time wins
                records[values[rid]] = _Stored(values=values, event=event)
        return _response({})

    def _read(self, group: Any, key: str, names: list[str] | None) -> list[dict[str, str]] | None:
        stored = self._records.get(group.feature_group_name.lower(), {}).get(key)
        if stored is None or stored.deleted:
            return None
        return [
            {"FeatureName": name, "ValueAsString": text}
            for name, text in stored.values.items()
            if names is None or name in names
        ]

    def _rt_GetRecord(self, params: dict[str, Any]) -> Any:
        group, problem = self._online(params["FeatureGroupName"])
        if problem is not None:
            return problem
        record = self._read(
            group, params["RecordIdentifierValueAsString"], params.get("FeatureNames")
        )
        return _response({} if record is None else {"Record": record})

    def _rt_BatchGetRecord(self, params: dict[str, Any]) -> Any:
        records, errors = [], []
        for identifier in params["Identifiers"]:
            if len(identifier["RecordIdentifiersValueAsString"]) > 100:
                return _error("ValidationError", "At most 100 record identifiers per group")
            group, problem = self._online(identifier["FeatureGroupName"])
            for key in identifier["RecordIdentifiersValueAsString"]:
                if problem is not None:
                    errors.append(
                        {
                            "FeatureGroupName": identifier["FeatureGroupName"],
                            "RecordIdentifierValueAsString": key,
                            "ErrorCode": problem[1]["Error"]["Code"],
                            "ErrorMessage": problem[1]["Error"]["Message"],
                        }
                    )
                    continue
                record = self._read(group, key, identifier.get("FeatureNames"))
                if record is not None:
                    records.append(
                        {
                            "FeatureGroupName": group.feature_group_name,
                            "RecordIdentifierValueAsString": key,
                            "Record": record,
                        }
                    )
        return _response({"Records": records, "Errors": errors, "UnprocessedIdentifiers": []})

    def _rt_DeleteRecord(self, params: dict[str, Any]) -> Any:
        group, problem = self._online(params["FeatureGroupName"])
        if problem is not None:
            return problem
        types = self._types(group)
        event = _epoch(params["EventTime"], types[group.event_time_feature_name])
        records = self._records.setdefault(group.feature_group_name.lower(), {})
        key = params["RecordIdentifierValueAsString"]
        stored = records.get(key)
        hard = params.get("DeletionMode", "SoftDelete") == "HardDelete"
        if stored is None:
            return _response({})
        if event < stored.event:
            if hard:
                return _error(
                    "ValidationError",
                    "The EventTime of the record to delete is earlier than the EventTime of the "
                    "record in the OnlineStore",
                )
            return _response({})  # soft: the record stays
        if hard:
            del records[key]
        else:
            records[key] = _Stored(values={}, event=event, deleted=True)
        return _response({})


# -- Athena ------------------------------------------------------------------------------------
_DUCK_TYPES = {
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "int": "INTEGER",
    "float": "FLOAT",
    "date": "DATE",
}


def _athena_type(duck: Any) -> tuple[str, dict[str, int]]:
    text = str(duck).upper()
    if text.startswith("DECIMAL"):
        precision, scale = (int(x) for x in text[8:-1].split(","))
        return "decimal", {"Precision": precision, "Scale": scale}
    return {
        "BIGINT": "bigint",
        "INTEGER": "integer",
        "SMALLINT": "smallint",
        "TINYINT": "tinyint",
        "HUGEINT": "bigint",
        "DOUBLE": "double",
        "FLOAT": "real",
        "BOOLEAN": "boolean",
        "VARCHAR": "varchar",
        "DATE": "date",
        "TIMESTAMP": "timestamp",
        "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    }.get(text, "varchar"), {}


def _athena_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d} UTC"
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return str(value)


def _athena_failure(exc: Exception) -> tuple[str, int]:
    """Athena's reason and error category for a DuckDB error (1 system, 2 user)."""
    kinds = {
        "ParserException": "SYNTAX_ERROR",
        "BinderException": "COLUMN_NOT_FOUND",
        "CatalogException": "TABLE_NOT_FOUND",
        "ConversionException": "INVALID_CAST_ARGUMENT",
    }
    name = type(exc).__name__
    if name in kinds:
        return f"{kinds[name]}: {exc}", 2
    return f"GENERIC_INTERNAL_ERROR: {name}: {exc}", 1


@attrs.define
class _Execution:
    query: str
    state: str
    reason: str | None = None
    columns: list[dict[str, Any]] = attrs.Factory(list)
    rows: list[list[str | None]] = attrs.Factory(list)
    polls_left: int = 0
    final: str = "SUCCEEDED"
    category: int | None = None


class AthenaOnDuckDB:
    """Athena's query operations answered by DuckDB over the Parquet objects in moto's S3.

    Parameters
    ----------
    region : str
        The region of the clients it serves.
    polls : int
        How many ``GetQueryExecution`` calls answer ``RUNNING`` before the final state, so
        polling is exercised.

    Attributes
    ----------
    queries : list of str
        Every query string received, in order.
    """

    def __init__(self, *, region: str = "us-east-1", polls: int = 1) -> None:
        self.region = region
        self.polls = polls
        self.queries: list[str] = []
        self._executions: dict[str, _Execution] = {}
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.RLock()

    _client = FeatureStoreFake._client
    close = FeatureStoreFake.close

    def install(self, session: Any) -> None:
        """Register the handlers on a boto3 session; clients created from it afterwards use them."""
        self._session = session
        session.events.register("before-parameter-build.athena.*", FeatureStoreFake._stash)
        session.events.register("before-call.athena.*", self._athena)

    def _athena(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        handler = getattr(self, f"_op_{model.name}", None)
        if handler is None:
            return None
        with self._lock:
            return handler(context.get("mlcycle_fake_params", {}))

    def _op_StartQueryExecution(self, params: dict[str, Any]) -> Any:
        query = params["QueryString"]
        self.queries.append(query)
        qid = str(uuid.uuid4())
        execution = _Execution(query=query, state="RUNNING", polls_left=self.polls)
        try:
            execution.columns, execution.rows = self._run(query)
        except Exception as exc:  # DuckDB's error becomes Athena's FAILED reason and category
            execution.final = "FAILED"
            execution.reason, execution.category = _athena_failure(exc)
        if self.polls == 0:
            execution.state = execution.final
        self._executions[qid] = execution
        return _response({"QueryExecutionId": qid})

    def _op_GetQueryExecution(self, params: dict[str, Any]) -> Any:
        qid = params["QueryExecutionId"]
        execution = self._executions.get(qid)
        if execution is None:
            return _error("InvalidRequestException", f"QueryExecution {qid} was not found")
        if execution.state == "RUNNING":
            if execution.polls_left > 0:
                execution.polls_left -= 1
            else:
                execution.state = execution.final
        status: dict[str, Any] = {"State": execution.state}
        if execution.reason and execution.state != "RUNNING":
            status["StateChangeReason"] = execution.reason
        if execution.category is not None and execution.state == "FAILED":
            status["AthenaError"] = {"ErrorCategory": execution.category, "Retryable": False}
        return _response(
            {
                "QueryExecution": {
                    "QueryExecutionId": qid,
                    "Query": execution.query,
                    "StatementType": "DML",
                    "Status": status,
                }
            }
        )

    def _op_StopQueryExecution(self, params: dict[str, Any]) -> Any:
        execution = self._executions.get(params["QueryExecutionId"])
        if execution is not None and execution.state == "RUNNING":
            execution.state = "CANCELLED"
            execution.reason = "Query was cancelled by the user"
        return _response({})

    def _op_GetQueryResults(self, params: dict[str, Any]) -> Any:
        qid = params["QueryExecutionId"]
        execution = self._executions.get(qid)
        if execution is None or execution.state != "SUCCEEDED":
            return _error("InvalidRequestException", f"Query {qid} has not succeeded")
        header = [{"Data": [{"VarCharValue": c["Name"]} for c in execution.columns]}]
        rows = header + [
            {"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
            for row in execution.rows
        ]
        start = int(params.get("NextToken", "0"))
        size = int(params.get("MaxResults", 1000))
        answer: dict[str, Any] = {
            "ResultSet": {
                "Rows": rows[start : start + size],
                "ResultSetMetadata": {"ColumnInfo": execution.columns},
            },
            "UpdateCount": 0,
        }
        if start + size < len(rows):
            answer["NextToken"] = str(start + size)
        return _response(answer)

    # -- DuckDB --------------------------------------------------------------------------------
    def _run(self, query: str) -> tuple[list[dict[str, Any]], list[list[str | None]]]:
        import duckdb

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("CREATE MACRO from_unixtime(x) AS to_timestamp(x)")
            con.execute("CREATE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)")
            con.execute("CREATE MACRO to_unixtime(t) AS epoch(t)")
            con.execute("CREATE MACRO nan() AS 'nan'::DOUBLE")
            con.execute("CREATE MACRO infinity() AS 'inf'::DOUBLE")
            self._load_glue_tables(con)
            result = con.execute(query)
            described = result.description or []
            fetched = result.fetchall()
        finally:
            con.close()
        columns = []
        for item in described:
            kind, extra = _athena_type(item[1])
            columns.append({"Name": str(item[0]).lower(), "Type": kind, **extra})
        rows = [[None if v is None else _athena_text(v) for v in row] for row in fetched]
        return columns, rows

    def _load_glue_tables(self, con: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        glue = self._client("glue")
        s3 = self._client("s3")
        for database in glue.get_databases().get("DatabaseList", []):
            db = database["Name"]
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{db}"')
            for table in glue.get_tables(DatabaseName=db).get("TableList", []):
                storage = table["StorageDescriptor"]
                columns = [(c["Name"], c["Type"]) for c in storage["Columns"]]
                location = storage["Location"]
                bucket, _, prefix = location[len("s3://") :].partition("/")
                parts = []
                pages = s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
                )
                for item in itertools.chain.from_iterable(
                    page.get("Contents", []) for page in pages
                ):
                    if item["Key"].endswith(".parquet"):
                        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                        parts.append(pq.read_table(io.BytesIO(body)))
                casts = ", ".join(
                    f'CAST("{name}" AS {_DUCK_TYPES.get(kind, "VARCHAR")}) AS "{name}"'
                    for name, kind in columns
                )
                target = f'"{db}"."{table["Name"]}"'
                if parts:
                    data = pa.concat_tables(parts, promote_options="default")
                    con.register("__parts", data)
                    con.execute(f"CREATE TABLE {target} AS SELECT {casts} FROM __parts")
                    con.unregister("__parts")
                else:
                    ddl = ", ".join(
                        f'"{name}" {_DUCK_TYPES.get(kind, "VARCHAR")}' for name, kind in columns
                    )
                    con.execute(f"CREATE TABLE {target} ({ddl})")


# -- everything together -------------------------------------------------------------------------
@attrs.frozen
class FeatureStoreOnMoto:
    """What :func:`mock_feature_store_backend` yields.

    Attributes
    ----------
    backend : mlcycle.backends.sagemaker.SageMakerBackend
        The backend; its clients talk to moto and the fakes.
    runtime : FeatureStoreFake
        The fake of the operations moto lacks.
    athena : AthenaOnDuckDB or None
        The fake Athena, unless it was turned off (then moto's empty Athena answers).
    """

    backend: SageMakerBackend
    runtime: FeatureStoreFake
    athena: AthenaOnDuckDB | None


@contextlib.contextmanager
def mock_feature_store_backend(
    *,
    region: str = "us-east-1",
    bucket: str = "mlcycle-test",
    prefix: str = "test",
    athena_on_duckdb: bool = True,
    athena_polls: int = 1,
) -> Iterator[FeatureStoreOnMoto]:
    """Yield a sagemaker backend on moto with the feature-store fakes installed.

    Parameters
    ----------
    region, bucket, prefix : str
        Where the backend lives.
    athena_on_duckdb : bool
        Answer Athena queries with DuckDB over the offline store's objects (else moto answers,
        with no rows).
    athena_polls : int
        ``RUNNING`` answers before a query's final state.

    Yields
    ------
    FeatureStoreOnMoto
    """
    import boto3

    from mlcycle.testing.aws import FAKE_ROLE, mock_sagemaker_backend
    from mlcycle.testing.aws_lineage import SageMakerLineageFake

    with (
        mock_sagemaker_backend(region=region, bucket=bucket, prefix=prefix),
        mock.patch.dict(os.environ, {"AWS_MAX_ATTEMPTS": "1"}),
    ):
        session = boto3.session.Session(region_name=region)
        runtime = FeatureStoreFake(region=region)
        runtime.install(session)
        SageMakerLineageFake().install(session)
        athena = None
        if athena_on_duckdb:
            athena = AthenaOnDuckDB(region=region, polls=athena_polls)
            athena.install(session)
        backend = SageMakerBackend(
            region, bucket=bucket, prefix=prefix, role=FAKE_ROLE, boto3_session=session
        )
        try:
            yield FeatureStoreOnMoto(backend=backend, runtime=runtime, athena=athena)
        finally:
            backend.close()
            runtime.close()
            if athena is not None:
                athena.close()

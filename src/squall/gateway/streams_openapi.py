"""The OpenAPI fragment of the streams API (``gateway.streams_api``).

Registered at import. GETs need the ``read`` scope, putting records ``publish``, creating and
deleting streams ``admin``.
"""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    PathItem,
    json_body,
    nullable,
    ok,
    operation,
    path_param,
    query,
    ref,
)
from squall.model.streams import (
    DEFAULT_RETENTION_S,
    MAX_KEY_CHARS,
    MAX_PUT_RECORDS,
    MAX_RETENTION_S,
    MAX_SHARDS,
    MIN_RETENTION_S,
)

TAG = "streams"
NAME_PATTERN = "^[a-zA-Z][a-zA-Z0-9_.-]{0,127}$"
_SEQ: JSONSchema = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_EPOCH: JSONSchema = {"type": "number", "minimum": 0, "description": "Epoch seconds"}
_DATA: JSONSchema = {"description": "The record's data: any JSON value"}


def _object(required: list[str], properties: dict[str, JSONSchema]) -> JSONSchema:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    shard: JSONSchema = {"type": "integer", "minimum": 0, "maximum": MAX_SHARDS - 1}
    put: dict[str, JSONSchema] = {
        "data": _DATA,
        "partition_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_CHARS,
            "description": "Picks the shard: MD5 of the key, mod the shard count",
        },
    }
    record: dict[str, JSONSchema] = {
        "shard": shard,
        "sequence": {**_SEQ, "minimum": 1},
        "partition_key": put["partition_key"],
        "data": _DATA,
        "arrival_time": _EPOCH,
    }
    details: dict[str, JSONSchema] = {
        "shard": shard,
        "records": {"type": "integer", "minimum": 0, "description": "Records kept now"},
        "first_sequence": nullable({**_SEQ, "minimum": 1}),
        "last_sequence": nullable({**_SEQ, "minimum": 1}),
        "head": {**_SEQ, "description": "The last sequence the shard gave out (0: none)"},
    }
    consumer: dict[str, JSONSchema] = {
        "function": {"type": "string"},
        "shard": shard,
        "checkpoint": {**_SEQ, "description": "The last sequence it processed"},
        "behind": {"type": "integer", "minimum": 0, "description": "Records after it"},
        "oldest_unprocessed_age_s": {
            **nullable({"type": "number"}),
            "description": "Age of the first record after the checkpoint (null: caught up)",
        },
    }
    stream: dict[str, JSONSchema] = {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "shards": {"type": "integer", "minimum": 1, "maximum": MAX_SHARDS},
        "retention_s": {"type": "integer", "minimum": MIN_RETENTION_S, "maximum": MAX_RETENTION_S},
        "declared_by": {
            "type": "string",
            "enum": ["app", "api"],
            "description": "`app`: declared in the app's code, read-only here",
        },
        "shard_details": {"type": "array", "items": ref("StreamShard")},
        "consumers": {"type": "array", "items": ref("StreamConsumer")},
    }
    return {
        "StreamRecordPut": _object(["data", "partition_key"], put),
        "StreamRecordsPut": _object(
            ["records"],
            {
                "records": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_PUT_RECORDS,
                    "items": ref("StreamRecordPut"),
                }
            },
        ),
        "StreamPutResult": _object(
            ["stream", "records"],
            {
                "stream": {"type": "string"},
                "records": {
                    "type": "array",
                    "items": _object(
                        ["shard", "sequence"], {"shard": shard, "sequence": record["sequence"]}
                    ),
                },
            },
        ),
        "StreamRecord": _object(list(record), record),
        "StreamRecordPage": _object(
            ["stream", "shard", "records", "next_after", "head"],
            {
                "stream": {"type": "string"},
                "shard": shard,
                "records": {"type": "array", "items": ref("StreamRecord")},
                "next_after": {**_SEQ, "description": "`after` for the next page"},
                "head": details["head"],
            },
        ),
        "StreamShard": _object(list(details), details),
        "StreamConsumer": _object(list(consumer), consumer),
        "Stream": _object(list(stream), stream),
        "StreamList": _object(["streams"], {"streams": {"type": "array", "items": ref("Stream")}}),
        "StreamCreate": _object(
            ["name"],
            {
                "name": stream["name"],
                "shards": {**stream["shards"], "default": 1},
                "retention_s": {**stream["retention_s"], "default": DEFAULT_RETENTION_S},
            },
        ),
        "StreamDeleted": _object(["deleted"], {"deleted": stream["name"]}),
    }


def streams_fragment() -> Fragment:
    name = {**path_param("name", "Stream name"), "schema": {"type": "string"}}
    shard = {
        **path_param("shard", "Shard number (0 to shards - 1)"),
        "schema": {"type": "string", "pattern": "^[0-9]{1,4}$"},
    }
    p = API_PREFIX
    paths: dict[str, PathItem] = {
        f"{p}/streams": {
            "get": operation(
                "listStreams", "The app's streams, their shards and consumer lag", tag=TAG,
                responses=ok(ref("StreamList")),
            ),
            "post": operation(
                "createStream",
                "Create a stream of a fixed number of shards (admin)",
                tag=TAG,
                description=(
                    "A name already taken (by the app or through the API) is 409. Stream"
                    " triggers are declared in the app, on the app's streams."
                ),
                body=json_body(ref("StreamCreate"), required=True),
                responses=ok(ref("Stream"), "Created", status=201),
                errors=(400, 409, 413, 415),
            ),
        },
        f"{p}/streams/{{name}}": {
            "get": operation(
                "getStream",
                "One stream: its shards' first and last sequences and each consumer's lag",
                tag=TAG, parameters=[name], responses=ok(ref("Stream")), errors=(404,),
            ),
            "delete": operation(
                "deleteStream",
                "Delete a stream made through the API, with its records and checkpoints (admin)",
                tag=TAG, parameters=[name], responses=ok(ref("StreamDeleted")),
                errors=(404, 409),
            ),
        },
        f"{p}/streams/{{name}}/shards/{{shard}}/records": {
            "get": operation(
                "readStreamRecords",
                "Read a shard's records after a sequence, in order",
                tag=TAG,
                parameters=[
                    name,
                    shard,
                    query("after", _SEQ, "Only records with a higher sequence (default 0)"),
                    query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 10_000},
                        "Page size (default 100)",
                    ),
                ],
                responses=ok(ref("StreamRecordPage")),
                errors=(400, 404),
            ),
        },
        f"{p}/streams/{{name}}/records": {
            "post": operation(
                "putStreamRecords",
                "Append one record, or up to 500 at once (all or none)",
                tag=TAG,
                description=(
                    "Each record goes to the shard its partition key hashes to and gets that"
                    " shard's next sequence number. A record over 1 MiB (data as JSON plus the"
                    " key) is 413 with `size` and `limit`; a body over 6 MiB is 413 before"
                    " it is read; an empty key or one over 256 characters is 400 naming"
                    " `partition_key` (`records[i].partition_key` in a batch)."
                ),
                parameters=[name],
                body=json_body(
                    {"oneOf": [ref("StreamRecordPut"), ref("StreamRecordsPut")]}, required=True
                ),
                responses=ok(ref("StreamPutResult")),
                errors=(400, 404, 413, 415),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Partitioned, ordered logs of records"}],
    )


FRAGMENT = openapi.register(streams_fragment())

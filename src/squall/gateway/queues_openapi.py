"""The OpenAPI fragment of the queues API (``gateway.queues_api``), registered at import.

GETs need the ``read`` scope, sends ``publish``; every other operation ``admin``.
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
    ref,
)
from squall.model.queues import (
    MAX_BATCH,
    MAX_DELAY_S,
    MAX_RECEIVE_MESSAGES,
    MAX_VISIBILITY_S,
    MAX_WAIT_S,
    QUEUE_RANGES,
)

TAG = "queues"
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"
_ID: JSONSchema = {"type": "string", "minLength": 1, "maxLength": 128}
_EPOCH: JSONSchema = {"type": "number", "description": "Epoch seconds"}


def _object(required: list[str], properties: dict[str, JSONSchema], **extra: object) -> JSONSchema:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
        **extra,
    }


def _range(field: str, **extra: object) -> JSONSchema:
    low, high = QUEUE_RANGES[field]
    return {"type": "integer", "minimum": low, "maximum": high, **extra}


def _schemas() -> dict[str, JSONSchema]:
    config: dict[str, JSONSchema] = {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "fifo": {"type": "boolean"},
        "visibility_timeout_s": _range("visibility_timeout_s"),
        "retention_s": _range("retention_s"),
        "delay_s": _range("delay_s"),
        "max_receive": nullable(_range("max_receive")),
        "dead_letter": nullable({"type": "string", "pattern": NAME_PATTERN}),
        "content_based_dedup": {"type": "boolean"},
    }
    queue = {
        **config,
        "origin": {"type": "string", "enum": ["app", "api"]},
        "created_at": _EPOCH,
        "visible": {"type": "integer", "minimum": 0, "description": "Ready to be received"},
        "in_flight": {"type": "integer", "minimum": 0, "description": "Received, not deleted"},
        "delayed": {"type": "integer", "minimum": 0},
        "oldest_age_s": {
            **nullable({"type": "number", "minimum": 0}),
            "description": "Age of the oldest message the queue holds",
        },
    }
    message: dict[str, JSONSchema] = {
        "id": {"type": "string"},
        "body": {"description": "The JSON value sent"},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "receive_count": {"type": "integer", "minimum": 1},
        "sent_at": _EPOCH,
        "first_received_at": nullable(_EPOCH),
        "group_id": nullable({"type": "string"}),
        "dedup_id": nullable({"type": "string"}),
        "receipt": {"type": "string", "description": "Deletes or changes this receive only"},
    }
    return {
        "Queue": _object(list(queue), queue),
        "QueueCreate": _object(
            ["name"],
            config,
            description=(
                "dead_letter names an existing queue of the same kind and needs max_receive;"
                " content_based_dedup applies to FIFO queues only"
            ),
        ),
        "QueueList": _object(["queues"], {"queues": {"type": "array", "items": ref("Queue")}}),
        "QueueDeleted": _object(["deleted"], {"deleted": {"type": "string"}}),
        "QueuePurged": _object(["purged"], {"purged": {"type": "string"}}),
        "QueueRedriven": _object(
            ["moved", "total"],
            {
                "moved": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 1},
                    "description": "Messages moved back, by the queue they came from",
                },
                "total": {"type": "integer", "minimum": 0},
            },
        ),
        "MessageSend": _object(
            ["body"],
            {
                "body": {"description": "Any JSON value; with attributes at most 256 KiB"},
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
                "delay_s": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY_S},
                "group_id": {**_ID, "description": "Required by FIFO queues, only for them"},
                "dedup_id": {**_ID, "description": "FIFO queues only: 5-minute dedup window"},
            },
        ),
        "MessageBatch": _object(
            ["messages"],
            {
                "messages": {
                    "type": "array", "items": ref("MessageSend"), "minItems": 1,
                    "maxItems": MAX_BATCH,
                }
            },
        ),
        "MessageBatchSent": _object(
            ["messages"], {"messages": {"type": "array", "items": ref("MessageSent")}}
        ),
        "MessageSent": _object(
            ["id", "duplicate"],
            {
                "id": {"type": "string"},
                "duplicate": {
                    "type": "boolean",
                    "description": "The dedup id was seen within 5 minutes: nothing was queued",
                },
            },
        ),
        "Receive": _object(
            [],
            {
                "max_messages": {
                    "type": "integer", "minimum": 1, "maximum": MAX_RECEIVE_MESSAGES, "default": 1
                },
                "wait_s": {
                    "type": "number", "minimum": 0, "maximum": MAX_WAIT_S, "default": 0,
                    "description": "Long polling: wait this long for a first message",
                },
                "visibility_s": {
                    "type": "integer", "minimum": 0, "maximum": MAX_VISIBILITY_S,
                    "description": "Default: the queue's visibility_timeout_s",
                },
            },
        ),
        "Message": _object(list(message), message),
        "Received": _object(
            ["messages"], {"messages": {"type": "array", "items": ref("Message")}}
        ),
        "MessageDeleted": _object(["deleted"], {"deleted": {"type": "string"}}),
        "VisibilityChange": _object(
            ["visibility_s"],
            {"visibility_s": {"type": "integer", "minimum": 0, "maximum": MAX_VISIBILITY_S}},
        ),
        "VisibilityChanged": _object(
            ["receipt", "visibility_s"],
            {"receipt": {"type": "string"}, "visibility_s": {"type": "integer"}},
        ),
    }


def queues_fragment() -> Fragment:
    name = {**path_param("name", "Queue name"), "schema": {"type": "string"}}
    receipt = path_param("receipt", "The receipt of the latest receive of the message")
    p = f"{API_PREFIX}/queues"
    paths: dict[str, PathItem] = {
        p: {
            "get": operation(
                "listQueues", "Queues and their message counts", tag=TAG,
                responses=ok(ref("QueueList")),
            ),
            "post": operation(
                "createQueue",
                "Create a queue (admin)",
                tag=TAG,
                description="A taken name is 409; an unknown dead-letter queue 400.",
                body=json_body(ref("QueueCreate"), required=True),
                responses=ok(ref("Queue"), "Created", status=201),
                errors=(400, 409, 413, 415),
            ),
        },
        f"{p}/{{name}}": {
            "get": operation(
                "getQueue", "A queue, its depth, in-flight count and oldest message's age",
                tag=TAG, parameters=[name], responses=ok(ref("Queue")), errors=(404,),
            ),
            "delete": operation(
                "deleteQueue",
                "Delete a queue made through the API, and its messages (admin)",
                tag=TAG,
                description="The app's own queues are read-only here (409).",
                parameters=[name], responses=ok(ref("QueueDeleted")), errors=(404, 409),
            ),
        },
        f"{p}/{{name}}/messages": {
            "post": operation(
                "sendMessage",
                "Send a message (publish)",
                tag=TAG,
                description=(
                    "Committed before the answer. Over 256 KiB is 413 naming both sizes; a FIFO"
                    " message without group_id, a group or dedup id on a standard queue, or a"
                    " delay out of 0-900 s is 400."
                ),
                parameters=[name],
                body=json_body(ref("MessageSend"), required=True),
                responses=ok(ref("MessageSent"), "Sent", status=201),
                errors=(400, 404, 413, 415),
            )
        },
        f"{p}/{{name}}/messages/batch": {
            "post": operation(
                "sendMessageBatch",
                "Send 1-10 messages in one commit (publish)",
                tag=TAG,
                description=(
                    "Each message is checked as a single send is; one that fails refuses the"
                    " batch, its error naming `messages[i]`. Results are in the batch's order."
                ),
                parameters=[name],
                body=json_body(ref("MessageBatch"), required=True),
                responses=ok(ref("MessageBatchSent"), "Sent", status=201),
                errors=(400, 404, 413, 415),
            )
        },
        f"{p}/{{name}}/receive": {
            "post": operation(
                "receiveMessages",
                "Receive messages, with long polling (admin)",
                tag=TAG,
                description=(
                    "Returns as soon as a message is visible, or after wait_s with none. Each"
                    " message is invisible for the visibility timeout and comes with a receipt;"
                    " delete it by that receipt, or it is received again."
                ),
                parameters=[name],
                body=json_body(ref("Receive")),
                responses=ok(ref("Received")),
                errors=(400, 404, 413, 415),
            )
        },
        f"{p}/{{name}}/messages/{{receipt}}": {
            "delete": operation(
                "deleteMessage",
                "Delete a received message (admin)",
                tag=TAG,
                description="A receipt of an earlier receive, or of a deleted message, is 404.",
                parameters=[name, receipt],
                responses=ok(ref("MessageDeleted")),
                errors=(404,),
            )
        },
        f"{p}/{{name}}/messages/{{receipt}}/visibility": {
            "post": operation(
                "changeVisibility",
                "Make a received message visible again after visibility_s (admin)",
                tag=TAG,
                parameters=[name, receipt],
                body=json_body(ref("VisibilityChange"), required=True),
                responses=ok(ref("VisibilityChanged")),
                errors=(400, 404, 413, 415),
            )
        },
        f"{p}/{{name}}/purge": {
            "post": operation(
                "purgeQueue", "Delete every message of a queue (admin)", tag=TAG,
                parameters=[name], responses=ok(ref("QueuePurged")), errors=(404,),
            )
        },
        f"{p}/{{name}}/redrive": {
            "post": operation(
                "redriveQueue",
                "Move a dead-letter queue's messages back to their queues (admin)",
                tag=TAG,
                parameters=[name],
                responses=ok(ref("QueueRedriven")),
                errors=(404,),
            )
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Queues: send, receive, delete, dead letters"}],
    )


FRAGMENT = openapi.register(queues_fragment())

"""The OpenAPI fragment of the archives and replays API (``gateway.archive_api``).

Registered at import. GETs need the ``read`` scope; the rest ``admin``.
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
from squall.model.archive import DEFAULT_RETENTION_S, MAX_RETENTION_S, MIN_RETENTION_S

TAG = "archives"
NAME_PATTERN = "^[a-z][a-z0-9_.-]{0,63}$"
_EPOCH: JSONSchema = {
    "type": "number", "minimum": 0, "maximum": 1e11, "description": "Epoch seconds"
}
_PATTERN: JSONSchema = {
    "type": "object",
    "description": "An event pattern (the EventBridge pattern language, as in rules)",
}


def _object(required: list[str], properties: dict[str, JSONSchema], **extra: object) -> JSONSchema:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
        **extra,
    }


def _schemas() -> dict[str, JSONSchema]:
    archive: dict[str, JSONSchema] = {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "bus": {"type": "string"},
        "pattern": nullable(_PATTERN),
        "retention_s": {"type": "integer", "minimum": MIN_RETENTION_S, "maximum": MAX_RETENTION_S},
        "created_at": _EPOCH,
        "events": {"type": "integer", "minimum": 0, "description": "Events held now"},
        "first_event_at": nullable(_EPOCH),
        "last_event_at": nullable(_EPOCH),
    }
    replay: dict[str, JSONSchema] = {
        "id": {"type": "string", "pattern": "^rp_"},
        "bus": {"type": "string"},
        "archives": {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN}},
        "from": _EPOCH,
        "to": _EPOCH,
        "pattern": nullable(_PATTERN),
        "state": {"type": "string", "enum": ["running", "completed", "failed"]},
        "total": {"type": "integer", "minimum": 0, "description": "Events the replay publishes"},
        "published": {"type": "integer", "minimum": 0},
        "last_event_time": {
            **nullable(_EPOCH),
            "description": "When the last replayed event was first published",
        },
        "started_at": _EPOCH,
        "finished_at": nullable(_EPOCH),
        "error": nullable({"type": "string"}),
    }
    return {
        "Archive": _object(list(archive), archive),
        "ArchiveCreate": _object(
            ["name", "bus"],
            {
                "name": archive["name"],
                "bus": {"type": "string", "description": "A bus of the app (404 otherwise)"},
                "retention_s": {**archive["retention_s"], "default": DEFAULT_RETENTION_S},
                "pattern": nullable(_PATTERN),
            },
        ),
        "ArchiveList": _object(
            ["archives"], {"archives": {"type": "array", "items": ref("Archive")}}
        ),
        "ArchiveDeleted": _object(
            ["deleted"], {"deleted": {"type": "string", "pattern": NAME_PATTERN}}
        ),
        "Replay": _object(list(replay), replay),
        "ReplayStart": {
            **_object(
                ["from"],
                {
                    "bus": {"type": "string", "description": "Default: the archive's bus"},
                    "archive": {
                        "type": "string",
                        "pattern": NAME_PATTERN,
                        "description": "Default: every archive of the bus",
                    },
                    "from": _EPOCH,
                    "to": {**nullable(_EPOCH), "description": "Default: now"},
                    "pattern": nullable(_PATTERN),
                },
            ),
            "anyOf": [{"required": ["bus"]}, {"required": ["archive"]}],
        },
        "ReplayList": _object(["replays"], {"replays": {"type": "array", "items": ref("Replay")}}),
    }


def archive_fragment() -> Fragment:
    name = {
        **path_param("name", "Archive name"),
        "schema": {"type": "string", "pattern": NAME_PATTERN},
    }
    replay_id = path_param("id", "Replay id (`rp_…`)")
    p = API_PREFIX
    paths: dict[str, PathItem] = {
        f"{p}/archives": {
            "post": operation(
                "createArchive",
                "Archive the events published to a bus (admin)",
                tag=TAG,
                description=(
                    "From now on every event published to the bus (and matching the pattern,"
                    " if given) is kept `retention_s` seconds. An unknown bus is 404, a taken"
                    " name 409, an invalid pattern 400 naming its path."
                ),
                body=json_body(ref("ArchiveCreate"), required=True),
                responses=ok(ref("Archive"), "Created", status=201),
                errors=(400, 404, 409, 413, 415),
            ),
            "get": operation(
                "listArchives", "Archives and how many events each holds", tag=TAG,
                responses=ok(ref("ArchiveList")),
            ),
        },
        f"{p}/archives/{{name}}": {
            "get": operation(
                "getArchive", "One archive", tag=TAG, parameters=[name],
                responses=ok(ref("Archive")), errors=(400, 404),
            ),
            "delete": operation(
                "deleteArchive", "Delete an archive and the events it holds (admin)", tag=TAG,
                parameters=[name], responses=ok(ref("ArchiveDeleted")), errors=(400, 404),
            ),
        },
        f"{p}/replays": {
            "post": operation(
                "startReplay",
                "Publish archived events again, in their original order (admin)",
                tag=TAG,
                description=(
                    "Replays the events published within [from, to] from the archive (or every"
                    " archive of the bus) onto the bus, in the background; poll"
                    " `GET /replays/{id}`. Replayed events keep their id, type, source and data"
                    " and carry the extension `squallreplay` = the replay id. `from` after"
                    " `to` or an archive of another bus is 400; a bus or archive that does not"
                    " exist (or a bus without archives) is 404."
                ),
                body=json_body(ref("ReplayStart"), required=True),
                responses=ok(ref("Replay"), "Started", status=202),
                errors=(400, 404, 413, 415),
            ),
            "get": operation(
                "listReplays", "Replays this process ran, newest first", tag=TAG,
                responses=ok(ref("ReplayList")),
            ),
        },
        f"{p}/replays/{{id}}": {
            "get": operation(
                "getReplay", "A replay's state and progress", tag=TAG, parameters=[replay_id],
                responses=ok(ref("Replay")), errors=(404,),
            )
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Archives of published events, and their replay"}],
    )


FRAGMENT = openapi.register(archive_fragment())

"""The OpenAPI fragment of the rules and buses admin API (``gateway.rules_api``).

Registered at import; ``gateway.rules_api`` imports this module. Reading needs the ``read``
scope, changing rules ``admin``. What a schema cannot say is checked by the handler and
answered 400 naming the field: a pattern's validity, that a target's function or bus
exists, unique target ids, at most one input transform per target, and templates that open
like a JSON object but are not one.
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
from squall.model.rules import MAX_DESCRIPTION
from squall.model.targets import MAX_TARGETS, MAX_TEMPLATE, MAX_VARIABLES, RETRY_RANGES

TAG = "rules"
RULE_NAME = "^[A-Za-z0-9_.-]{1,64}$"
BUS_NAME = "^[a-z][a-z0-9_.-]{0,63}$"
FUNCTION_NAME = "^[a-zA-Z][a-zA-Z0-9_-]{0,63}$"
TARGET_ID = "^[A-Za-z0-9_.-]{1,64}$"
QUEUE_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"
GROUP_ID = "^[!-~]{1,128}$"
# The same expressions the handler checks (ECMA 262 and Python read them alike).
JSON_PATH = r"^\$(\.[A-Za-z0-9_/-]+|\[(0|[1-9][0-9]{0,8})\])*$"
VARIABLE = r"^(?![Ss][Qq][Uu][Aa][Ll][Ll]\.)[A-Za-z0-9_.-]{1,64}$"
URL = r"^https?://[^\x00-\x20\x7f/?#]+([/?#][^\x00-\x20\x7f]*)?$"
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"
HEADER_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"

DESCRIPTION = (
    "Reading needs the `read` scope, changes `admin`. Beyond the schema, the handler answers"
    " 400 naming the field for an invalid pattern (`pattern.data.total[0].numeric`), a target"
    " naming no function or bus of the platform (`targets[0].function`), repeated target ids,"
    " more than one input transform on a target, and an `input_template` that opens like a"
    " JSON object but is not one. Rules declared in the app's code are read-only (409)."
)


def _string(pattern: str, description: str = "") -> JSONSchema:
    schema: JSONSchema = {"type": "string", "pattern": pattern}
    if description:
        schema["description"] = description
    return schema


def _target_schemas() -> dict[str, JSONSchema]:
    target_id = _string(TARGET_ID, "Unique within the rule; the target's index when left out")
    transforms: dict[str, JSONSchema] = {
        "input": {"description": "A constant JSON value sent instead of the event"},
        "input_path": nullable({**_string(JSON_PATH), "maxLength": 256}),
        "input_transformer": nullable(ref("InputTransformer")),
    }
    delivery: dict[str, JSONSchema] = {
        "retry": ref("RetryPolicy"),
        "dead_letter": {
            "type": "boolean",
            "description": "Keep deliveries that ran out of attempts or age as dead letters",
        },
    }

    def target(kind: str, required: str, fields: dict[str, JSONSchema], text: str) -> JSONSchema:
        return {
            "type": "object",
            "description": text,
            "required": ["kind", required],
            "additionalProperties": False,
            "properties": {"kind": {"const": kind}, "id": target_id, **fields},
        }

    kinds = ("function", "bus", "http", "queue")
    return {
        "RetryPolicy": {
            "type": "object",
            "description": "`max_attempts`: retries after the first attempt",
            "additionalProperties": False,
            "properties": {
                name: {"type": "integer", "minimum": low, "maximum": high}
                for name, (low, high) in RETRY_RANGES.items()
            },
        },
        "InputTransformer": {
            "type": "object",
            "required": ["input_template"],
            "additionalProperties": False,
            "properties": {
                "input_paths_map": {
                    "type": "object",
                    "maxProperties": MAX_VARIABLES,
                    "propertyNames": {"pattern": VARIABLE},
                    "additionalProperties": {**_string(JSON_PATH), "maxLength": 256},
                },
                "input_template": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_TEMPLATE,
                    "description": "JSON or text with <variable> placeholders",
                },
            },
        },
        "FunctionTarget": target(
            "function",
            "function",
            {
                "function": _string(FUNCTION_NAME),
                "alias": nullable(
                    _string("^[a-z][a-z0-9_-]{0,63}$", "The alias whose version runs it")
                ),
                **transforms,
            },
            "An async invocation; the function's own retry policy applies",
        ),
        "BusTarget": target(
            "bus",
            "bus",
            {"bus": _string(BUS_NAME), **delivery},
            "The event, unchanged and one hop further, onto another bus",
        ),
        "HttpTarget": target(
            "http",
            "url",
            {
                "url": _string(URL),
                "headers": {
                    "type": "object",
                    "propertyNames": {"pattern": HEADER_NAME},
                    "additionalProperties": _string(HEADER_VALUE),
                },
                "timeout_s": {"type": "number", "minimum": 1, "maximum": 60},
                **transforms,
                **delivery,
            },
            "A POST of the event (or its transformed input); 2xx is delivered",
        ),
        "QueueTarget": target(
            "queue",
            "queue",
            {
                "queue": _string(QUEUE_NAME),
                "group_id": nullable({**_string(GROUP_ID), "description": "FIFO queues"}),
                **transforms,
                **delivery,
            },
            "A message on a queue of the platform (FIFO: in group_id's group, default the"
            " event's source, deduplicated across retries)",
        ),
        "Target": {
            "oneOf": [ref(f"{kind.capitalize()}Target") for kind in kinds],
            "discriminator": {
                "propertyName": "kind",
                "mapping": {
                    kind: f"#/components/schemas/{kind.capitalize()}Target" for kind in kinds
                },
            },
        },
    }


def _rule_schemas() -> dict[str, JSONSchema]:
    fields: dict[str, JSONSchema] = {
        "name": _string(RULE_NAME),
        "bus": _string(BUS_NAME, "Default `default`; a rule on a new bus makes it exist"),
        "pattern": {
            "type": "object",
            "minProperties": 1,
            "description": "An EventBridge event pattern",
        },
        "targets": {"type": "array", "maxItems": MAX_TARGETS, "items": ref("Target")},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
        "enabled": {"type": "boolean", "description": "A disabled rule matches nothing"},
    }

    def body(required: list[str], drop: tuple[str, ...] = ()) -> JSONSchema:
        return {
            "type": "object",
            "required": required,
            "additionalProperties": False,
            "properties": {k: v for k, v in fields.items() if k not in drop},
        }

    origin = {
        "type": "string",
        "enum": ["app", "api"],
        "description": "`app`: declared in the app's code, read-only here",
    }
    rule = {
        "type": "object",
        "required": [*fields, "origin"],
        "properties": {**fields, "origin": origin},
    }
    bus = {
        "type": "object",
        "required": ["name", "rules", "enabled_rules"],
        "properties": {
            "name": _string(BUS_NAME),
            "rules": {"type": "integer", "minimum": 0},
            "enabled_rules": {"type": "integer", "minimum": 0},
        },
    }
    return {
        "RuleCreate": body(["name", "pattern"]),
        "RulePut": {**body(["pattern"]), "description": "`name`, if given, must be the path's"},
        "RuleUpdate": {**body([], drop=("name",)), "description": "Only the fields to change"},
        "Rule": rule,
        "RuleList": {
            "type": "object",
            "required": ["rules"],
            "properties": {"rules": {"type": "array", "items": ref("Rule")}},
        },
        "RuleDeleted": {
            "type": "object",
            "required": ["deleted"],
            "properties": {"deleted": _string(RULE_NAME)},
        },
        "Bus": bus,
        "BusList": {
            "type": "object",
            "required": ["buses"],
            "properties": {"buses": {"type": "array", "items": ref("Bus")}},
        },
    }


def rules_fragment() -> Fragment:
    p = API_PREFIX
    name = {**path_param("name", "Rule name"), "schema": _string(RULE_NAME)}
    body_errors = (400, 413, 415)
    paths: dict[str, PathItem] = {
        f"{p}/rules": {
            "get": operation(
                "listRules",
                "Every rule, the app's and those made through the API, by name",
                tag=TAG,
                responses=ok(ref("RuleList")),
            ),
            "post": operation(
                "createRule",
                "Create a rule (409 if the name is taken)",
                tag=TAG,
                description=DESCRIPTION,
                body=json_body(ref("RuleCreate"), required=True),
                responses=ok(ref("Rule"), "Created", status=201),
                errors=(*body_errors, 409),
            ),
        },
        f"{p}/rules/{{name}}": {
            "get": operation(
                "getRule",
                "One rule",
                tag=TAG,
                parameters=[name],
                responses=ok(ref("Rule")),
                errors=(400, 404),
            ),
            "put": operation(
                "putRule",
                "Create (201) or replace (200) a rule; its bus's matcher changes in place",
                tag=TAG,
                description=DESCRIPTION,
                parameters=[name],
                body=json_body(ref("RulePut"), required=True),
                responses={
                    **ok(ref("Rule"), "Created", status=201),
                    **ok(ref("Rule"), "Replaced"),
                },
                errors=(*body_errors, 409),
            ),
            "patch": operation(
                "updateRule",
                'Change some of a rule\'s fields, e.g. `{"enabled": false}`',
                tag=TAG,
                description=DESCRIPTION,
                parameters=[name],
                body=json_body(ref("RuleUpdate")),
                responses=ok(ref("Rule")),
                errors=(*body_errors, 404, 409),
            ),
            "delete": operation(
                "deleteRule",
                "Delete a rule made through the API",
                tag=TAG,
                description="Deliveries already queued for its targets still happen.",
                parameters=[name],
                responses=ok(ref("RuleDeleted")),
                errors=(400, 404, 409),
            ),
        },
        f"{p}/buses": {
            "get": operation(
                "listBuses",
                "Buses (the default one, and any a rule is on or targets) and their rule counts",
                tag=TAG,
                responses=ok(ref("BusList")),
            )
        },
    }
    return Fragment(
        paths=paths,
        schemas={**_target_schemas(), **_rule_schemas()},
        tags=[{"name": TAG, "description": "Event rules, their targets, and buses"}],
    )


FRAGMENT = openapi.register(rules_fragment())

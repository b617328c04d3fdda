"""The OpenAPI fragment of the keys and secrets admin API (``gateway.keys_api``).

Registered at import; ``gateway.keys_api`` imports this module, so the fragment is in the
document whenever the routes are mounted. Every operation needs a key with the ``admin``
scope (``gateway.auth``), sent as ``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``.
"""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    PathItem,
    json_body,
    ok,
    operation,
    path_param,
    ref,
    struct_schemas,
)
from squall.security.keys import SCOPES, ApiKey
from squall.storage.control import SecretInfo

TAG_KEYS = "keys"
TAG_SECRETS = "secrets"
SECRET_NAME_PATTERN = "^[A-Za-z][A-Za-z0-9_]{0,127}$"
MAX_SECRET_VALUE_BYTES = 64 * 1024

ADMIN_AUTH = (
    "Needs a key with the `admin` scope, sent as `Authorization: Bearer <key>` or as"
    " `X-Api-Key: <key>` (the header alternative the bearer scheme cannot express)."
)


def _schemas() -> dict[str, JSONSchema]:
    components = struct_schemas(ApiKey, SecretInfo)
    key = components["ApiKey"]
    key["description"] = "An API key as listed: never its text, nor its hash"
    key["additionalProperties"] = False
    props: dict[str, JSONSchema] = key["properties"]
    props["id"] = {"type": "string", "pattern": "^key_", "examples": ["key_0123456789ab"]}
    props["prefix"]["description"] = "The key's first characters, to tell keys apart"
    props["scopes"] = {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": ref("Scope"),
    }
    for name in ("created_at", "revoked_at", "last_used_at"):
        props[name]["description"] = "Epoch seconds" + ("" if name == "created_at" else " or null")
    secret = components["SecretInfo"]
    secret["description"] = "What is shown of a secret: never its value"
    secret["additionalProperties"] = False
    secret["properties"]["name"] = {"type": "string", "pattern": SECRET_NAME_PATTERN}
    for name in ("created_at", "updated_at"):
        secret["properties"][name]["description"] = "Epoch seconds"
    return {
        **components,
        "Scope": {
            "type": "string",
            "enum": list(SCOPES),
            "description": "`admin` implies every other scope",
        },
        "ApiKeyCreate": {
            "type": "object",
            "required": ["name", "scopes"],
            "additionalProperties": False,
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "description": (
                        "1-64 printable characters (Python's str.isprintable: no control,"
                        " format, separator other than the space, or unassigned characters)"
                    ),
                },
                "scopes": {
                    "type": "array",
                    "minItems": 1,
                    "items": ref("Scope"),
                    "description": "At least one scope; repeats are dropped",
                },
            },
        },
        "ApiKeyCreated": {
            # ApiKey and its text, spelled out: ApiKey forbids other properties, so an allOf
            # of it could never hold `key`.
            "type": "object",
            "description": "A new API key, with its text",
            "required": [*key["required"], "key"],
            "additionalProperties": False,
            "properties": {
                **props,
                "key": {
                    "type": "string",
                    "pattern": "^sq_",
                    "description": "The key itself: shown in this reply and never again",
                },
            },
        },
        "ApiKeyList": {
            "type": "object",
            "required": ["keys"],
            "additionalProperties": False,
            "properties": {"keys": {"type": "array", "items": ref("ApiKey")}},
        },
        "SecretValue": {
            "type": "object",
            "required": ["value"],
            "additionalProperties": False,
            "properties": {
                "value": {
                    "type": "string",
                    "maxLength": MAX_SECRET_VALUE_BYTES,
                    "description": (
                        f"At most {MAX_SECRET_VALUE_BYTES} bytes once UTF-8 encoded; stored"
                        " encrypted and never served back"
                    ),
                }
            },
        },
        "SecretList": {
            "type": "object",
            "required": ["secrets"],
            "additionalProperties": False,
            "properties": {"secrets": {"type": "array", "items": ref("SecretInfo")}},
        },
        "SecretDeleted": {
            "type": "object",
            "required": ["deleted"],
            "additionalProperties": False,
            "properties": {
                "deleted": {"type": "string", "pattern": SECRET_NAME_PATTERN},
            },
        },
    }


def keys_fragment() -> Fragment:
    p = API_PREFIX
    key_id = path_param("id", "API key id (`key_…`)")
    secret_name = {
        **path_param("name", "Secret name: a letter, then up to 127 letters, digits or '_'"),
        "schema": {"type": "string", "pattern": SECRET_NAME_PATTERN},
    }
    body_errors = (400, 413, 415)
    paths: dict[str, PathItem] = {
        f"{p}/keys": {
            "post": operation(
                "createKey",
                "Create an API key; its text is in this reply and nowhere else, ever",
                tag=TAG_KEYS,
                description=(
                    f"{ADMIN_AUTH} The body is at most 16 KiB (413 beyond). Unknown fields,"
                    " unknown scopes, an empty scope list or a bad name are 400."
                ),
                body=json_body(ref("ApiKeyCreate"), required=True),
                responses=ok(ref("ApiKeyCreated"), "The new key, with its text", status=201),
                errors=body_errors,
            ),
            "get": operation(
                "listKeys",
                "API keys, revoked ones included, oldest first (never their text)",
                tag=TAG_KEYS,
                description=ADMIN_AUTH,
                responses=ok(ref("ApiKeyList")),
            ),
        },
        f"{p}/keys/{{id}}": {
            "delete": operation(
                "revokeKey",
                "Revoke an API key for good (revoking a revoked key again changes nothing)",
                tag=TAG_KEYS,
                description=(
                    f"{ADMIN_AUTH} The last active admin key cannot be revoked (409): create"
                    " another admin key first. A request made with the key being revoked is"
                    " still answered."
                ),
                parameters=[key_id],
                responses=ok(ref("ApiKey"), "The key, now with its `revoked_at`"),
                errors=(404, 409),
            )
        },
        f"{p}/secrets": {
            "get": operation(
                "listSecrets",
                "Secrets by name: names and times only, never values",
                tag=TAG_SECRETS,
                description=ADMIN_AUTH,
                responses=ok(ref("SecretList")),
            )
        },
        f"{p}/secrets/{{name}}": {
            "put": operation(
                "setSecret",
                "Create a secret (201) or replace its value (200)",
                tag=TAG_SECRETS,
                description=(
                    f"{ADMIN_AUTH} The body is at most 256 KiB (413 beyond); the value at"
                    f" most {MAX_SECRET_VALUE_BYTES} bytes (400 beyond). Error messages never"
                    " repeat the value."
                ),
                parameters=[secret_name],
                body=json_body(ref("SecretValue"), required=True),
                responses={
                    **ok(ref("SecretInfo"), "Created", status=201),
                    **ok(ref("SecretInfo"), "Replaced: `updated_at` moved on"),
                },
                errors=body_errors,
            ),
            "delete": operation(
                "deleteSecret",
                "Delete a secret",
                tag=TAG_SECRETS,
                description=ADMIN_AUTH,
                parameters=[secret_name],
                responses=ok(ref("SecretDeleted"), "Deleted: the reply names it"),
                errors=(400, 404),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[
            {"name": TAG_KEYS, "description": "API keys (admin scope)"},
            {"name": TAG_SECRETS, "description": "Encrypted secrets for functions (admin scope)"},
        ],
    )


FRAGMENT = openapi.register(keys_fragment())

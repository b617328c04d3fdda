"""The OpenAPI fragment of the deploys API (``gateway.deploys_api``), registered at import."""

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

TAG = "deploys"
_EPOCH: JSONSchema = {"type": "number", "description": "Epoch seconds"}
_VERSION: JSONSchema = {"type": "integer", "minimum": 1}
_ALIAS_NAME: JSONSchema = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"}


def _object(properties: dict[str, JSONSchema], required: list[str] | None = None) -> JSONSchema:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    alias = _object(
        {
            "function": {"type": "string"},
            "name": {"type": "string"},
            "version": _VERSION,
            "canary": nullable(_VERSION),
            "weight": {"type": "integer", "minimum": 0, "maximum": 100},
            "previous": nullable(_VERSION),
            "updated_at": _EPOCH,
        }
    )
    version = _object(
        {
            "function": {"type": "string"},
            "version": _VERSION,
            "hash": {"type": "string", "description": "Of the bundle's files and the config"},
            "bundle": {"type": "string", "description": "The bundle's content hash"},
            "deployed_at": _EPOCH,
            "deployed_by": {"type": "string"},
            "memory_mb": {"type": "integer"},
            "timeout_s": {"type": "integer"},
        }
    )
    change = _object(
        {
            "kind": {"type": "string", "description": "functions, routes, rules, queues, …"},
            "name": {"type": "string"},
            "action": {"type": "string", "enum": ["add", "change", "remove", "keep"]},
        }
    )
    plan = _object(
        {
            "changes": {"type": "array", "items": ref("DeployChange")},
            "new_versions": {"type": "object", "additionalProperties": _VERSION},
            "settings_changed": {"type": "boolean"},
            "empty": {"type": "boolean"},
        }
    )
    canary = _object(
        {
            "function": {"type": "string"},
            "alias": {"type": "string"},
            "primary": _VERSION,
            "canary": _VERSION,
            "start_weight": {"type": "integer"},
            "steps": {"type": "integer"},
            "duration_s": {"type": "number"},
            "rollback_on": {"type": "array", "items": {"type": "object"}},
            "started_at": _EPOCH,
            "status": {
                "type": "string", "enum": ["running", "promoted", "rolled_back", "superseded"]
            },
            "reason": {"type": "string"},
            "ended_at": nullable(_EPOCH),
            "deployment": {"type": "integer"},
        }
    )
    deployment = _object(
        {
            "seq": {"type": "integer"},
            "bundle": {"type": "string"},
            "app": {"type": "string"},
            "deployed_at": _EPOCH,
            "deployed_by": {"type": "string"},
            "versions": {"type": "object", "additionalProperties": _VERSION},
        }
    )
    return {
        "Alias": alias,
        "FunctionVersion": version,
        "DeployChange": change,
        "DeployPlan": plan,
        "Canary": canary,
        "Deployment": deployment,
        "AliasList": _object({"aliases": {"type": "array", "items": ref("Alias")}}),
        "CanaryList": _object({"canaries": {"type": "array", "items": ref("Canary")}}),
        "VersionList": _object(
            {
                "function": {"type": "string"},
                "serving": nullable(_VERSION),
                "versions": {"type": "array", "items": ref("FunctionVersion")},
            }
        ),
        "DeploymentList": _object(
            {"deployments": {"type": "array", "items": ref("Deployment")}}
        ),
        "DeployResult": _object(
            {
                "applied": {"type": "boolean"},
                "bundle": {"type": "string"},
                "deployment": nullable({"type": "integer"}),
                "plan": ref("DeployPlan"),
                "canaries": {"type": "array", "items": ref("Canary")},
            }
        ),
        "AliasSet": {
            "type": "object",
            "required": ["version"],
            "additionalProperties": False,
            "properties": {
                "version": _VERSION,
                "canary": nullable(_VERSION),
                "weight": {"type": "integer", "minimum": 0, "maximum": 100},
            },
        },
        "Rollback": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"alias": _ALIAS_NAME},
        },
    }


def deploys_fragment() -> Fragment:
    p = API_PREFIX
    name = path_param("name", "Function name")
    alias = {**path_param("alias", "Alias name"), "schema": _ALIAS_NAME}
    paths: dict[str, PathItem] = {
        f"{p}/deployments": {
            "get": operation(
                "listDeployments", "Deployments, newest first", tag=TAG,
                parameters=[query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
                responses=ok(ref("DeploymentList")), errors=(400,),
            ),
            "post": operation(
                "deploy",
                "Deploy a bundle: the gzipped tar of the app's directory (admin)",
                tag=TAG,
                description=(
                    "The new code is imported and validated before anything changes; an app"
                    " that fails is 400 with the error and the running code keeps serving."
                    " Functions, triggers and resources the app no longer declares are kept"
                    " unless `prune`. `dry_run` answers the plan without applying it. With"
                    " `canary`, each function with a new version shifts its `live` alias"
                    " from the version serving now, rolled back when `rollback_on` fires;"
                    " without, a `live` alias moves to the new version at once (and a canary"
                    " running on it ends as superseded)."
                ),
                parameters=[
                    {**query("app", {"type": "string", "minLength": 1}), "required": True},
                    query("prune", {"type": "boolean"}),
                    query("dry_run", {"type": "boolean"}),
                    query("canary", {"type": "string", "pattern": "^[0-9]{1,2}%?$"}),
                    query("for", {"type": "string"}, "The canary's length: 30s, 10m, 1h"),
                    query("steps", {"type": "integer", "minimum": 1, "maximum": 100}),
                    query("rollback_on", {"type": "string"}, "error_rate>2%, p99_ms>800"),
                ],
                body={
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"},
                        }
                    },
                },
                responses={
                    **ok(ref("DeployResult"), "Planned, or nothing changed"),
                    **ok(ref("DeployResult"), "Deployed", status=201),
                },
                errors=(400, 404, 409, 413),
            ),
        },
        f"{p}/canaries": {
            "get": operation(
                "listCanaries", "Running and ended canaries", tag=TAG,
                responses=ok(ref("CanaryList")),
            ),
        },
        f"{p}/functions/{{name}}/versions": {
            "get": operation(
                "listFunctionVersions", "A function's versions, oldest first", tag=TAG,
                parameters=[name], responses=ok(ref("VersionList")), errors=(404,),
            ),
        },
        f"{p}/functions/{{name}}/aliases": {
            "get": operation(
                "listAliases", "A function's aliases", tag=TAG,
                parameters=[name], responses=ok(ref("AliasList")), errors=(404,),
            ),
        },
        f"{p}/functions/{{name}}/aliases/{{alias}}": {
            "put": operation(
                "setAlias",
                "Point an alias at a version, or split it with a canary by weight (admin)",
                tag=TAG, parameters=[name, alias], body=json_body(ref("AliasSet"), required=True),
                responses=ok(ref("Alias")), errors=(400, 404, 409, 413, 415),
            ),
            "delete": operation(
                "deleteAlias", "Remove an alias (admin)", tag=TAG, parameters=[name, alias],
                responses={"204": {"description": "Removed"}}, errors=(404,),
            ),
        },
        f"{p}/functions/{{name}}/rollback": {
            "post": operation(
                "rollbackAlias",
                "Roll an alias back to the version it pointed at before (admin)",
                tag=TAG,
                description="A running canary on the alias is rolled back to its primary.",
                parameters=[name], body=json_body(ref("Rollback")),
                responses=ok(ref("Alias")), errors=(400, 404, 409, 413, 415),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Deploys, function versions, aliases, canaries"}],
    )


FRAGMENT = openapi.register(deploys_fragment())

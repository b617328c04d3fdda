"""Admin API for deploys, function versions, aliases and canaries.

    GET    /api/v1/deployments                        deployments, newest first
    POST   /api/v1/deployments?app=app.py             deploy a bundle (gzipped tar of the app's
                                                      directory): ``prune``, ``dry_run``,
                                                      ``canary`` (percent), ``for``, ``steps``,
                                                      ``rollback_on``
    GET    /api/v1/functions/{name}/versions          a function's versions, oldest first
    GET    /api/v1/functions/{name}/aliases           its aliases
    PUT    /api/v1/functions/{name}/aliases/{alias}   point an alias: {"version", "canary",
                                                      "weight"}
    DELETE /api/v1/functions/{name}/aliases/{alias}   remove it
    POST   /api/v1/functions/{name}/rollback          {"alias": "live"}: back to the version
                                                      before (a running canary: to its primary)
    GET    /api/v1/canaries                           running and ended canaries
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.engine.deploy.bundle import unpack
from squall.engine.deploy.canary import start_ops
from squall.engine.deploy.plan import Plan
from squall.engine.platform import load_bundle
from squall.errors import ConfigError, Conflict, InvalidInput
from squall.gateway import deploys_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.body import read_body
from squall.gateway.http import json_object, json_response, query_int, query_str
from squall.model.alerts import window_seconds
from squall.model.deploys import (
    LIVE,
    Canary,
    FunctionVersion,
    RollbackRule,
    check_alias_name,
    check_canary_options,
)
from squall.storage.protocols import Op

if TYPE_CHECKING:
    from squall.engine.deploy.versions import VersionBook
    from squall.engine.platform import Platform
    from squall.gateway.host import Host

CanaryOptions = tuple[int, float, int, list[RollbackRule]]  # weight, for, steps, rules


def version_json(version: FunctionVersion) -> dict[str, Any]:
    return {
        "function": version.function,
        "version": version.number,
        "hash": version.hash,
        "bundle": version.bundle,
        "deployed_at": version.deployed_at,
        "deployed_by": version.deployed_by,
        "memory_mb": version.config.memory_mb,
        "timeout_s": version.config.timeout_s,
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(plan)
    body["empty"] = plan.empty
    return body


class DeploysAPI:
    def __init__(self, platform: Platform, host: Host | None) -> None:
        self.platform = platform
        self.host = host

    def routes(self) -> list[Route]:
        return [
            Route("/deployments", self.list_deployments, methods=["GET"]),
            Route("/deployments", self.deploy, methods=["POST"]),
            Route("/canaries", self.list_canaries, methods=["GET"]),
            Route("/functions/{name}/versions", self.list_versions, methods=["GET"]),
            Route("/functions/{name}/aliases", self.list_aliases, methods=["GET"]),
            Route("/functions/{name}/aliases/{alias}", self.put_alias, methods=["PUT"]),
            Route("/functions/{name}/aliases/{alias}", self.delete_alias, methods=["DELETE"]),
            Route("/functions/{name}/rollback", self.rollback, methods=["POST"]),
        ]

    @property
    def _book(self) -> VersionBook:
        return self.platform.versions.book

    async def list_deployments(self, request: Request) -> Response:
        limit = query_int(request, "limit", 50)
        deployments = await self.platform.list_deployments(limit)
        return json_response(
            {
                "deployments": [
                    {
                        "seq": d.seq,
                        "bundle": d.bundle,
                        "app": d.app_ref,
                        "deployed_at": d.deployed_at,
                        "deployed_by": d.deployed_by,
                        "versions": d.versions,
                    }
                    for d in deployments
                ]
            }
        )

    async def deploy(self, request: Request) -> Response:
        host = self.host
        if host is None:
            raise Conflict(
                "this platform was not started by squall up, so it cannot swap in a deploy",
                field="deployment",
            )
        app_ref = query_str(request, "app")
        if app_ref is None:
            raise InvalidInput(
                "query parameter 'app' is required: the app file inside the bundle (app.py)",
                field="app",
            )
        prune = _flag(request, "prune")
        dry_run = _flag(request, "dry_run")
        canary = _canary_options(request)
        who = request.headers.get("x-squall-deployer") or "api"
        limit = host.config.max_bundle_bytes
        data = await read_body(request, limit, what="bundle", field="bundle")
        bundle = unpack(data, app_ref, host.config.data_dir, limit)
        loaded = await load_bundle(bundle, host.config.data_dir)

        def canary_ops(plan: Plan) -> list[Op]:
            return self._canary_ops(plan, canary) if canary is not None else []

        plan = await host.deploy(
            loaded, prune=prune, dry_run=dry_run, who=who, extra=canary_ops
        )
        applied = not dry_run and not plan.empty
        after = host.platform
        return json_response(
            {
                "applied": applied,
                "bundle": bundle.hash,
                "deployment": after.versions.book.deployments if applied else None,
                "plan": plan_json(plan),
                "canaries": [msgspec.to_builtins(c) for c in after.canaries.all()
                             if applied and c.status == "running"],
            },
            201 if applied else 200,
        )

    def _canary_ops(self, plan: Plan, options: CanaryOptions) -> list[Op]:
        weight, duration_s, steps, rules = options
        ops: list[Op] = []
        now = time.time()
        for function, number in plan.new_versions.items():
            primary = self._primary(function)
            if primary is None or primary == number:
                continue  # a new function: nothing to shift from
            canary = Canary(
                function=function,
                primary=primary,
                canary=number,
                start_weight=weight,
                steps=steps,
                duration_s=duration_s,
                rollback_on=rules,
                started_at=now,
            )
            ops += start_ops(canary)
        return ops

    def _primary(self, function: str) -> int | None:
        """The version a canary of ``function`` shifts from: its ``live`` alias's primary,
        else the version the deployment serves now."""
        live = next((a for a in self._book.aliases(function) if a.name == LIVE), None)
        if live is not None:
            return live.version
        return self.platform.versions.serving(function)

    async def list_canaries(self, request: Request) -> Response:
        return json_response(
            {"canaries": [msgspec.to_builtins(c) for c in self.platform.canaries.all()]}
        )

    async def list_versions(self, request: Request) -> Response:
        name = self.platform.function(request.path_params["name"]).name
        versions = self._book.versions(name)
        serving = self.platform.versions.serving(name)
        return json_response(
            {"function": name, "serving": serving, "versions": [version_json(v) for v in versions]}
        )

    async def list_aliases(self, request: Request) -> Response:
        name = self.platform.function(request.path_params["name"]).name
        return json_response(
            {"aliases": [msgspec.to_builtins(a) for a in self._book.aliases(name)]}
        )

    async def put_alias(self, request: Request) -> Response:
        name = self.platform.function(request.path_params["name"]).name
        alias_name = request.path_params["alias"]
        check_alias_name(alias_name)
        body = await json_object(request)
        unknown = body.keys() - {"version", "canary", "weight"}
        if unknown:
            raise InvalidInput(
                f"unknown field {sorted(unknown)[0]!r}: an alias takes version, canary, weight",
                field=sorted(unknown)[0],
            )
        version = _int_field(body, "version", required=True)
        canary = _int_field(body, "canary")
        weight = _int_field(body, "weight")
        if self.platform.canaries.running(name) is not None and alias_name == LIVE:
            raise Conflict(
                f"a canary is shifting {name!r}'s {LIVE!r} alias: roll it back first"
                f" (POST /api/v1/functions/{name}/rollback)",
                field="alias",
            )
        assert version is not None
        alias = await self._book.set_alias(name, alias_name, version, canary, weight or 0)
        return json_response(msgspec.to_builtins(alias))

    async def delete_alias(self, request: Request) -> Response:
        name = self.platform.function(request.path_params["name"]).name
        await self._book.delete_alias(name, request.path_params["alias"])
        return Response(status_code=204)

    async def rollback(self, request: Request) -> Response:
        name = self.platform.function(request.path_params["name"]).name
        body = await json_object(request) if await request.body() else {}
        alias_name = body.get("alias", LIVE)
        if not isinstance(alias_name, str):
            raise InvalidInput("field 'alias' must be a string", field="alias")
        check_alias_name(alias_name)
        running = self.platform.canaries.running(name)
        if running is not None and running.alias == alias_name:
            await self.platform.canaries.roll_back(name, "rolled back by an operator")
        else:
            target = self._book.rollback_target(name, alias_name)
            await self._book.set_alias(name, alias_name, target)
        alias = self._book.alias(name, alias_name)
        return json_response(msgspec.to_builtins(alias))


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise InvalidInput(f"query parameter {name!r} must be true or false, got {raw!r}", field=name)


def _canary_options(request: Request) -> CanaryOptions | None:
    raw = query_str(request, "canary")
    if raw is None:
        for other in ("for", "steps", "rollback_on"):
            if request.query_params.get(other):
                raise InvalidInput(
                    f"query parameter {other!r} needs 'canary' (the new version's first share)",
                    field=other,
                )
        return None
    text = raw.removesuffix("%")
    if not text.isdigit():
        raise InvalidInput(f"canary={raw!r} is not a percentage (e.g. 10%)", field="canary")
    weight = int(text)
    duration = query_str(request, "for") or "10m"
    try:
        duration_s = window_seconds(duration if not duration.isdigit() else int(duration))
    except ConfigError:
        raise InvalidInput(
            f"for={duration!r} is not a duration (30s, 10m, 1h) or a number of seconds",
            field="for",
        ) from None
    steps = query_int(request, "steps", 1, minimum=1, maximum=100)
    check_canary_options(weight, duration_s, steps)
    rules = RollbackRule.parse(query_str(request, "rollback_on") or "error_rate>2%")
    return weight, duration_s, steps, rules


def _int_field(body: dict[str, Any], name: str, required: bool = False) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"field {name!r} is required", field=name)
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON does not tell 7 from 7.0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"field {name!r} must be an integer, got {value!r}", field=name)
    return value

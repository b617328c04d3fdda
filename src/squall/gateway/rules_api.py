"""Admin API for rules and buses.

    GET    /api/v1/rules              every rule, the app's and those made here
    POST   /api/v1/rules              create (409 if the name is taken)
    GET    /api/v1/rules/{name}
    PUT    /api/v1/rules/{name}       create (201) or replace (200)
    PATCH  /api/v1/rules/{name}       change some fields, e.g. {"enabled": false}
    DELETE /api/v1/rules/{name}
    GET    /api/v1/buses              buses and their rule counts

A rule body is ``{"name", "bus"?, "pattern", "targets"?, "description"?, "enabled"?}``.
Rules declared in the app are read-only here (409). Errors name the field:
``pattern.data.total[0].numeric``, ``targets[0].function``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway import rules_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response
from squall.model.rule_input import parse_rule
from squall.model.rules import RULE_NAME_RE

if TYPE_CHECKING:
    from squall.engine.rulebook import RuleBook

MAX_RULE_BODY = 256 * 1024
PATCHABLE = ("bus", "pattern", "targets", "description", "enabled")


class RulesAPI:
    def __init__(self, rule_book: RuleBook) -> None:
        self.rule_book = rule_book

    def routes(self) -> list[Route]:
        return [
            Route("/rules", self.list_rules, methods=["GET"]),
            Route("/rules", self.create_rule, methods=["POST"]),
            Route("/rules/{name}", self.get_rule, methods=["GET"]),
            Route("/rules/{name}", self.put_rule, methods=["PUT"]),
            Route("/rules/{name}", self.patch_rule, methods=["PATCH"]),
            Route("/rules/{name}", self.delete_rule, methods=["DELETE"]),
            Route("/buses", self.list_buses, methods=["GET"]),
        ]

    async def list_rules(self, request: Request) -> Response:
        return json_response({"rules": self.rule_book.rules()})

    async def get_rule(self, request: Request) -> Response:
        return json_response(self.rule_book.get(_name(request)))

    async def create_rule(self, request: Request) -> Response:
        rule = parse_rule(await json_object(request, MAX_RULE_BODY))
        await self.rule_book.put(rule, create=True)
        return json_response(rule, 201)

    async def put_rule(self, request: Request) -> Response:
        name = _name(request)
        body = await json_object(request, MAX_RULE_BODY)
        if body.get("name", name) != name:
            raise InvalidInput(
                f"the body names rule {body['name']!r}, the path {name!r}: leave 'name' out"
                " or make them equal",
                field="name",
            )
        rule = parse_rule({**body, "name": name})
        created = await self.rule_book.put(rule)
        return json_response(rule, 201 if created else 200)

    async def patch_rule(self, request: Request) -> Response:
        name = _name(request)
        changes = await json_object(request, MAX_RULE_BODY)
        unknown = sorted(set(changes) - set(PATCHABLE))
        if unknown:
            raise InvalidInput(
                f"{unknown[0]!r} cannot be changed (changeable: {', '.join(PATCHABLE)})",
                field=unknown[0],
            )
        current = msgspec.to_builtins(self.rule_book.get(name))
        current.pop("origin")
        rule = parse_rule({**current, **changes})
        await self.rule_book.put(rule)
        return json_response(rule)

    async def delete_rule(self, request: Request) -> Response:
        rule = await self.rule_book.delete(_name(request))
        return json_response({"deleted": rule.name})

    async def list_buses(self, request: Request) -> Response:
        return json_response({"buses": self.rule_book.buses()})


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    if RULE_NAME_RE.fullmatch(name) is None:
        raise InvalidInput(
            f"rule name {name!r} is invalid: 1-64 letters, digits, '.', '_' or '-'",
            field="name",
        )
    return name

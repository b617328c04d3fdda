"""Admin API for API keys and secrets (``admin`` scope; see ``gateway.auth``).

A key's text is in the reply to ``POST /keys`` and nowhere else, ever; listings carry ids,
names, visible prefixes, scopes and times. Secret values go in (``PUT``) and never come out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import Conflict, InvalidInput
from squall.gateway import keys_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.body import read_body
from squall.gateway.http import json_object, json_response
from squall.model.config import SECRET_NAME_RE
from squall.security.keys import check_key_name, parse_scopes

if TYPE_CHECKING:
    from squall.storage.control import ControlStore

MAX_KEY_BODY = 16 * 1024
MAX_SECRET_BODY = 256 * 1024


class KeysAPI:
    def __init__(self, control: ControlStore) -> None:
        self.control = control

    def routes(self) -> list[Route]:
        return [
            Route("/keys", self.create_key, methods=["POST"]),
            Route("/keys", self.list_keys, methods=["GET"]),
            Route("/keys/{id}", self.revoke_key, methods=["DELETE"]),
            Route("/secrets", self.list_secrets, methods=["GET"]),
            Route("/secrets/{name}", self.set_secret, methods=["PUT"]),
            Route("/secrets/{name}", self.delete_secret, methods=["DELETE"]),
        ]

    # keys

    async def create_key(self, request: Request) -> Response:
        body = await _body(request, MAX_KEY_BODY, {"name", "scopes"})
        if "name" not in body:
            raise InvalidInput("'name' is required", field="name")
        if "scopes" not in body:
            raise InvalidInput("'scopes' is required", field="scopes")
        name = check_key_name(body["name"])
        if not isinstance(body["scopes"], list):
            raise InvalidInput('\'scopes\' must be a list, e.g. ["invoke", "read"]', field="scopes")
        key, text = await self.control.create_key(name, parse_scopes(body["scopes"]))
        return json_response({**key.public(), "key": text}, 201)

    async def list_keys(self, request: Request) -> Response:
        keys = await self.control.list_keys()
        return json_response({"keys": [key.public() for key in keys]})

    async def revoke_key(self, request: Request) -> Response:
        key_id = request.path_params["id"]
        keys = await self.control.list_keys()
        admins = [k for k in keys if not k.revoked and "admin" in k.scopes]
        if [k.id for k in admins] == [key_id]:
            raise Conflict(
                f"API key {key_id} is the last active admin key: create another admin key"
                " before revoking it",
                field="id",
            )
        key = await self.control.revoke_key(key_id)
        return json_response(key.public())

    # secrets

    async def list_secrets(self, request: Request) -> Response:
        return json_response({"secrets": await self.control.list_secrets()})

    async def set_secret(self, request: Request) -> Response:
        name = _secret_name(request)
        body = await _body(request, MAX_SECRET_BODY, {"value"})
        value = body.get("value")
        if not isinstance(value, str):
            # The message never repeats what was sent: it might be the secret.
            raise InvalidInput("'value' is required and must be a string", field="value")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # JSON may escape a lone surrogate ("\ud800"): not text that can be stored.
            raise InvalidInput(
                "'value' must be valid Unicode text (it has a lone surrogate)", field="value"
            ) from None
        info = await self.control.set_secret(name, value)
        return json_response(info, 201 if info.created_at == info.updated_at else 200)

    async def delete_secret(self, request: Request) -> Response:
        name = _secret_name(request)
        await self.control.delete_secret(name)
        return json_response({"deleted": name})


def _secret_name(request: Request) -> str:
    """The path's secret name, checked whole: ``SECRET_NAME_RE.match`` (what the store uses)
    lets a trailing newline through, since ``$`` also matches before one."""
    name: str = request.path_params["name"]
    if SECRET_NAME_RE.fullmatch(name) is None:
        raise InvalidInput(
            f"secret name {name!r} is invalid: 1-128 letters, digits and '_',"
            " starting with a letter",
            field="name",
        )
    return name


async def _body(request: Request, limit: int, allowed: set[str]) -> dict[str, Any]:
    await read_body(request, limit)
    body = await json_object(request)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            field=unknown[0],
        )
    return body

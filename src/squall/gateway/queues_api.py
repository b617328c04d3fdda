"""Admin API for queues and their messages.

    GET    /api/v1/queues                                  every queue, with its counts
    POST   /api/v1/queues                                  create {"name", "fifo"?, ...} (409)
    GET    /api/v1/queues/{name}                           config, visible, in flight, age
    DELETE /api/v1/queues/{name}                           a queue made here, and its messages
    POST   /api/v1/queues/{name}/messages                  send {"body", "attributes"?, ...}
    POST   /api/v1/queues/{name}/messages/batch            {"messages": [1-10 of those]}
    POST   /api/v1/queues/{name}/receive                   {"max_messages"?, "wait_s"?, ...}
    DELETE /api/v1/queues/{name}/messages/{receipt}        delete a received message
    POST   /api/v1/queues/{name}/messages/{receipt}/visibility   {"visibility_s"}
    POST   /api/v1/queues/{name}/purge                     delete every message
    POST   /api/v1/queues/{name}/redrive                   dead letters back to their queues
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput, PayloadTooLarge
from squall.gateway import queues_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response
from squall.model.queues import MAX_BATCH, MAX_MESSAGE_BYTES, QueueConfig, QueueMessage

if TYPE_CHECKING:
    from squall.engine.queues.book import QueueBook

MAX_BODY = 2 * MAX_MESSAGE_BYTES  # read this much, so a message just over its limit gets a 413
# naming both sizes rather than a generic one
MAX_BATCH_BODY = MAX_BATCH * MAX_BODY
CREATE_FIELDS = (
    "name",
    "fifo",
    "visibility_timeout_s",
    "retention_s",
    "delay_s",
    "max_receive",
    "dead_letter",
    "content_based_dedup",
)
SEND_FIELDS = ("body", "attributes", "delay_s", "group_id", "dedup_id")
RECEIVE_FIELDS = ("max_messages", "wait_s", "visibility_s")
INTEGER_FIELDS = frozenset(
    ("visibility_timeout_s", "retention_s", "delay_s", "max_receive", "max_messages",
     "visibility_s")
)


class QueuesAPI:
    def __init__(self, book: QueueBook) -> None:
        self.book = book

    def routes(self) -> list[Route]:
        return [
            Route("/queues", self.list_queues, methods=["GET"]),
            Route("/queues", self.create, methods=["POST"]),
            Route("/queues/{name}", self.get, methods=["GET"]),
            Route("/queues/{name}", self.delete, methods=["DELETE"]),
            Route("/queues/{name}/messages", self.send, methods=["POST"]),
            Route("/queues/{name}/messages/batch", self.send_batch, methods=["POST"]),
            Route("/queues/{name}/receive", self.receive, methods=["POST"]),
            Route("/queues/{name}/messages/{receipt}", self.delete_message, methods=["DELETE"]),
            Route(
                "/queues/{name}/messages/{receipt}/visibility",
                self.change_visibility,
                methods=["POST"],
            ),
            Route("/queues/{name}/purge", self.purge, methods=["POST"]),
            Route("/queues/{name}/redrive", self.redrive, methods=["POST"]),
        ]

    async def _view(self, queue: QueueConfig) -> dict[str, Any]:
        stats = await self.book.stats(queue.name)
        oldest = stats.oldest_sent_at
        return {
            **queue.public(),
            "visible": stats.visible,
            "in_flight": stats.in_flight,
            "delayed": stats.delayed,
            "oldest_age_s": None if oldest is None else round(max(0.0, time.time() - oldest), 3),
        }

    async def list_queues(self, request: Request) -> Response:
        return json_response({"queues": [await self._view(q) for q in self.book.all()]})

    async def get(self, request: Request) -> Response:
        return json_response(await self._view(self.book.get(request.path_params["name"])))

    async def create(self, request: Request) -> Response:
        body = await _body(request, CREATE_FIELDS, ("name",))
        try:
            config = msgspec.convert(body, QueueConfig)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"invalid queue: {exc}", field=_path_of(exc)) from None
        queue = await self.book.create(config)
        return json_response(await self._view(queue), 201)

    async def delete(self, request: Request) -> Response:
        name = self.book.get(request.path_params["name"]).name
        await self.book.delete(name)
        return json_response({"deleted": name})

    async def send(self, request: Request) -> Response:
        name = self.book.get(request.path_params["name"]).name
        body = await _body(request, SEND_FIELDS, ("body",), limit=MAX_BODY)
        [outcome] = await self.book.send_batch(name, [self._message(name, body)])
        return json_response({"id": outcome.id, "duplicate": outcome.duplicate}, 201)

    async def send_batch(self, request: Request) -> Response:
        """Up to 10 messages in one commit; one bad entry refuses them all, naming it."""
        name = self.book.get(request.path_params["name"]).name
        body = await _body(request, ("messages",), ("messages",), limit=MAX_BATCH_BODY)
        entries = body["messages"]
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH:
            raise InvalidInput(f"messages must be a list of 1-{MAX_BATCH}", field="messages")
        messages = []
        for i, entry in enumerate(entries):
            try:
                if not isinstance(entry, dict):
                    raise InvalidInput("must be an object", field="")
                messages.append(self._message(name, _entry(entry)))
            except (InvalidInput, PayloadTooLarge) as exc:
                where = f"messages[{i}]" + (f".{exc.field}" if exc.field else "")
                raise type(exc)(f"{where}: {exc.message}", field=where, **exc.details) from None
        outcomes = await self.book.send_batch(name, messages)
        sent = [{"id": o.id, "duplicate": o.duplicate} for o in outcomes]
        return json_response({"messages": sent}, 201)

    def _message(self, name: str, body: dict[str, Any]) -> QueueMessage:
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(
            isinstance(v, str) for v in attributes.values()
        ):
            raise InvalidInput("attributes must map names to strings", field="attributes")
        return self.book.message(
            name,
            msgspec.json.encode(body["body"]),
            attributes,
            body.get("delay_s"),
            body.get("group_id"),
            body.get("dedup_id"),
        )

    async def receive(self, request: Request) -> Response:
        name = self.book.get(request.path_params["name"]).name
        body = await _body(request, RECEIVE_FIELDS, ())
        messages = await self.book.receive(
            name,
            max_messages=body.get("max_messages", 1),
            wait_s=body.get("wait_s", 0),
            visibility_s=body.get("visibility_s"),
        )
        return json_response({"messages": [m.public() for m in messages]})

    async def delete_message(self, request: Request) -> Response:
        receipt = request.path_params["receipt"]
        await self.book.delete_message(request.path_params["name"], receipt)
        return json_response({"deleted": receipt})

    async def change_visibility(self, request: Request) -> Response:
        name = self.book.get(request.path_params["name"]).name
        body = await _body(request, ("visibility_s",), ("visibility_s",))
        receipt = request.path_params["receipt"]
        await self.book.change_visibility(name, receipt, body["visibility_s"])
        return json_response({"receipt": receipt, "visibility_s": body["visibility_s"]})

    async def purge(self, request: Request) -> Response:
        name = self.book.get(request.path_params["name"]).name
        await self.book.purge(name)
        return json_response({"purged": name})

    async def redrive(self, request: Request) -> Response:
        name = self.book.get(request.path_params["name"]).name
        counts = await self.book.redrive(name)
        return json_response({"moved": counts, "total": sum(counts.values())})


async def _body(
    request: Request,
    allowed: tuple[str, ...],
    required: tuple[str, ...],
    limit: int = 64 * 1024,
) -> dict[str, Any]:
    body = await json_object(request, limit)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(allowed)})", field=unknown[0]
        )
    for field in required:
        if field not in body:
            raise InvalidInput(f"{field!r} is required", field=field)
    # JSON Schema's integers include 1.0; so do ours.
    for field in INTEGER_FIELDS.intersection(body):
        value = body[field]
        if isinstance(value, float) and value.is_integer():
            body[field] = int(value)
    return body


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One message of a batch, checked like the body of a single send."""
    unknown = sorted(set(entry) - set(SEND_FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(SEND_FIELDS)})", field=unknown[0]
        )
    if "body" not in entry:
        raise InvalidInput("'body' is required", field="body")
    value = entry.get("delay_s")
    if isinstance(value, float) and value.is_integer():
        entry = {**entry, "delay_s": int(value)}
    return entry


def _path_of(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.retention_s`".
    text = str(exc)
    marker = "at `$."
    if marker in text:
        return text.split(marker, 1)[1].split("`")[0].split("[")[0]
    return "body"

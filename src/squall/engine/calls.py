"""Calls from user code back to the platform: ``ctx.publish``, ``publish_at``, ``send``,
``put_record(s)`` and ``invoke``.

What a call changes is held in the effects of the invocation that made it (see
``engine.effects``) and committed with that invocation's success; a call made while no
invocation runs (the init hook) takes effect at once.

Each arrives on the sandbox channel as a :class:`Call`, is checked against the calling
function's ``permissions`` (``AccessDenied`` naming the function, the action and the
resource), carried out by the platform, and answered with a :class:`CallReply` holding the
JSON result or the error. The platform, not user code, sets what user code must not choose:
an event's default source and its hop count.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from squall.engine.buckets.calls import answer as buckets_answer
from squall.engine.effects import Effects
from squall.engine.event_store import calls as es_calls
from squall.engine.schedules.delayed import delayed_publish, when_of
from squall.engine.tables import calls as tables_calls
from squall.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    NotFound,
    SquallError,
    Timeout,
)
from squall.model.aliases import split_qualifier
from squall.model.cloudevent import CloudEvent
from squall.model.config import FunctionConfig
from squall.model.invocation import Trigger
from squall.model.rules import DEFAULT_BUS
from squall.observe.tracing import ROOT, SpanKind, parent_of, traceparent_of
from squall.runtime.protocol import Call, CallReply
from squall.runtime.sandbox import Sandbox

if TYPE_CHECKING:
    from squall.engine.platform import Platform

_ACTIONS = {
    "invoke": "invoke",
    "publish": "publish to bus",
    "send": "send to queue",
    "bucket": "write to bucket",
    "bucket.read": "read bucket",
    "table": "write to table",
    "table.read": "read table",
    "workflow": "start workflow",
}


def require(caller: FunctionConfig | None, function: str, action: str, resource: str) -> None:
    """Refuse unless ``function``'s permissions allow ``action`` on ``resource``."""
    if caller is None or not caller.allows(action, resource):
        raise AccessDenied(
            f"function {function!r} may not {_ACTIONS[action]} {resource!r}: add"
            f' permissions=["{action}:{resource}"] to its declaration',
            function=function,
            action=action,
            resource=resource,
        )


class SandboxCalls:
    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._tasks: set[asyncio.Task[None]] = set()

    def on_call(self, sandbox: Sandbox, call: Call) -> None:
        # Taken now: the call belongs to the invocation running as it arrives.
        effects = sandbox.running_effects
        task = asyncio.create_task(self._answer(sandbox, call, effects))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, sandbox: Sandbox, call: Call, effects: Effects | None) -> None:
        try:
            if effects is not None and effects.closed:
                raise Conflict(
                    "the invocation that made this call has ended; its effects are settled",
                    field="op",
                )
            if call.op == "invoke":
                result, error = await self._invoke(sandbox, call.args, effects)
                sandbox.reply(CallReply(call.call_id, result, error))
                return
            if call.op.startswith("bucket."):
                value = await buckets_answer(
                    self._platform,
                    self._caller(sandbox),
                    sandbox.function,
                    call.op,
                    call.args,
                    effects,
                    hops=sandbox.running_hops + 1,
                )
                sandbox.reply(CallReply(call.call_id, value, None))
                return
            answer: Any
            if call.op in ("publish", "publish_at"):
                answer = await self._publish(sandbox, call.args, effects)
            elif call.op == "send":
                answer = await self._send(sandbox, call.args, effects)
            elif call.op.startswith("table."):
                answer = await tables_calls.answer(
                    self._platform,
                    self._caller(sandbox),
                    sandbox.function,
                    call.op,
                    call.args,
                    effects,
                )
            elif call.op.startswith("es."):
                answer = await es_calls.answer(
                    self._platform,
                    self._caller(sandbox),
                    sandbox.function,
                    call.op,
                    call.args,
                    effects,
                )
            elif call.op == "put_records":
                caller = self._platform.functions_by_name.get(sandbox.function)
                answer = await self._platform.streams.put_from(
                    caller, sandbox.function, call.args, effects
                )
            elif call.op == "workflow":  # a step's checkpoint
                await self._platform.workflows.on_call(sandbox.function, call.args, effects)
                answer = None
            elif call.op == "workflow.start":
                name = str(call.args.get("workflow"))
                require(self._caller(sandbox), sandbox.function, "workflow", name)
                answer = await self._platform.workflows.start_from_call(call.args, effects)
            else:
                raise InvalidInput(f"unknown platform call {call.op!r}", field="op")
            sandbox.reply(CallReply(call.call_id, msgspec.json.encode(answer), None))
        except SquallError as exc:
            sandbox.reply(CallReply(call.call_id, None, exc.to_dict()))

    def _caller(self, sandbox: Sandbox) -> FunctionConfig | None:
        return self._platform.functions_by_name.get(sandbox.function)

    async def _invoke(
        self, sandbox: Sandbox, args: dict[str, Any], effects: Effects | None
    ) -> tuple[bytes | None, dict[str, Any] | None]:
        """A sync invoke runs now (its own effects commit with its own success); an async
        one is queued with the caller's effects."""
        target = str(args.get("function"))
        # Permission is per function: "invoke:billing" covers billing:beta and billing:7.
        require(self._caller(sandbox), sandbox.function, "invoke", split_qualifier(target)[0])
        payload = bytes(args.get("payload") or b"null")
        platform = self._platform
        traceparent = args.get("traceparent")
        if args.get("async"):
            at = args.get("at")
            queued = await platform.invoke_async(
                target,
                payload,
                trigger=Trigger.FUNCTION,
                available_at=None if at is None else float(at),
                effects=effects,
                traceparent=traceparent if parent_of(traceparent) is not None else None,
            )
            return msgspec.json.encode(queued.id), None
        running = platform.invoke(
            target, payload, trigger=Trigger.FUNCTION, parent=parent_of(traceparent) or ROOT
        )
        timeout_s = args.get("timeout_s")
        if timeout_s is None:
            record = await running
        else:  # the caller stops waiting; the invocation runs on to its own timeout
            task = asyncio.ensure_future(running)
            _ORPHANS.add(task)
            task.add_done_callback(_forget)
            try:
                record = await asyncio.wait_for(asyncio.shield(task), float(timeout_s))
            except TimeoutError:
                error = Timeout(
                    f"{target!r} did not answer within timeout_s={timeout_s}",
                    function=target,
                )
                return None, error.to_dict()
        return record.result, record.error

    async def _publish(
        self, sandbox: Sandbox, args: dict[str, Any], effects: Effects | None
    ) -> str:
        """``ctx.publish`` and ``ctx.publish_at`` (``args["when"]`` set): sourced and
        hop-counted by the platform; a delayed event is made now, published later."""
        bus = str(args.get("bus") or DEFAULT_BUS)
        require(self._caller(sandbox), sandbox.function, "publish", bus)
        platform = self._platform
        data = msgspec.json.decode(bytes(args.get("data") or b"null"))
        default_source = f"squall://{platform.manifest.app}/{sandbox.function}"
        traceparent = args.get("traceparent")
        parent = parent_of(traceparent)
        event = CloudEvent.create(
            str(args.get("type") or ""),
            data,
            source=str(args.get("source") or default_source),
            subject=args.get("subject"),
            hops=sandbox.running_hops + 1,
            # a delayed event is published later, in the trace of the call that made it
            traceparent=traceparent if parent is not None and args.get("when") else None,
        )
        if args.get("when") is None:
            [outcome] = await platform.publish(
                [event], bus=bus, effects=effects, parent=parent or ROOT
            )
            return outcome.id
        # Refused now if it would be refused when due.
        if not platform.has_bus(bus):
            raise NotFound(f"bus {bus!r} does not exist", field="bus", bus=bus)
        platform.schemas.check([event])
        await platform.delay(
            [delayed_publish(event, bus, when_of(args), time.time())], effects
        )
        return event.id

    async def _send(
        self, sandbox: Sandbox, args: dict[str, Any], effects: Effects | None
    ) -> str:
        """``ctx.send``: a message onto a queue the function declares."""
        queue = str(args.get("queue") or "")
        require(self._caller(sandbox), sandbox.function, "send", queue)
        attributes = args.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            raise InvalidInput("attributes must map strings to strings", field="attributes")
        span = self._platform.tracing.start(
            f"send {queue}",
            parent_of(args.get("traceparent")) or ROOT,
            kind=SpanKind.PRODUCER,
            attributes={"squall.queue": queue, "squall.function": sandbox.function},
        )
        try:
            outcome = await self._platform.queues.send(
                queue,
                bytes(args.get("body") or b"null"),
                attributes=attributes,
                delay_s=args.get("delay_s"),
                group_id=args.get("group_id"),
                dedup_id=args.get("dedup_id"),
                effects=effects,
                traceparent=traceparent_of(span),
            )
            span.set_attribute("squall.message_id", outcome.id)
            return outcome.id
        finally:
            span.end()


# Sync invokes whose caller stopped waiting (``timeout_s``) run on; held here until done.
_ORPHANS: set[asyncio.Future[Any]] = set()


def _forget(task: asyncio.Future[Any]) -> None:
    _ORPHANS.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a late failure is in its own record

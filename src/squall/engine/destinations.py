"""The event a destination function receives after an async invocation ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import msgspec

from squall.model.config import FunctionConfig
from squall.model.ids import new_id
from squall.model.invocation import InvocationRecord, InvocationStatus, Trigger
from squall.storage.protocols import Delivery, Enqueue, Op, PutInvocation


def destination_ops(
    config: FunctionConfig, record: InvocationRecord, payload: bytes, condition: str
) -> list[Op]:
    """Ops that queue ``on_success``/``on_failure`` for ``record``, or none if unset."""
    target = config.on_success if condition == "Success" else config.on_failure
    if target is None:
        return []
    body = msgspec.json.encode(
        {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": record.id,
                "functionName": config.name,
                "condition": condition,
                "approximateInvokeCount": record.attempt,
            },
            "requestPayload": msgspec.Raw(payload),
            "responseContext": {
                "statusCode": 200,
                "functionError": None if record.error is None else record.error.get("type"),
            },
            "responsePayload": (
                msgspec.Raw(record.result) if record.result is not None else record.error
            ),
        }
    )
    now = time.time()
    invocation = InvocationRecord(
        id=new_id(),
        function=target,
        version=record.version,
        trigger=Trigger.DESTINATION,
        status=InvocationStatus.QUEUED,
        created_at=now,
    )
    delivery = Delivery(
        id=invocation.id,
        queue=queue_name(target),
        payload=body,
        invocation_id=invocation.id,
        enqueued_at=now,
        available_at=now,
        headers={"trigger": Trigger.DESTINATION},
    )
    return [PutInvocation(invocation), Enqueue(delivery)]


def queue_name(function: str) -> str:
    return f"fn:{function}"


def function_of(queue: str) -> str:
    return queue.removeprefix("fn:")

"""What a stream trigger's ``on_failure`` function gets for records it gave up on.

As Lambda's event source mappings do, the envelope points at the records (stream, shard,
sequences, arrival times, partition keys) rather than carrying their data: they can be read
back from the stream while it retains them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from squall.engine.destinations import queue_name
from squall.model.ids import new_id
from squall.model.invocation import InvocationRecord, InvocationStatus, Trigger
from squall.model.streams import StreamRecord, StreamTrigger
from squall.storage.protocols import Delivery, Enqueue, Op, PutInvocation


def failure_ops(
    trigger: StreamTrigger,
    shard: int,
    records: list[StreamRecord],
    condition: str,
    error: dict[str, Any] | None,
    attempts: int,
    invocation_id: str | None,
) -> list[Op]:
    """Ops that queue the async invocation of ``trigger.on_failure``, or none if unset."""
    if trigger.on_failure is None:
        return []
    body = msgspec.json.encode(
        {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": invocation_id,
                "functionName": trigger.function,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"functionError": None if error is None else error.get("type")},
            "error": error,
            "streamBatchInfo": {
                "stream": trigger.stream,
                "shard": shard,
                "startSequence": records[0].sequence,
                "endSequence": records[-1].sequence,
                "batchSize": len(records),
                "approximateArrivalOfFirstRecord": records[0].arrival_time,
                "approximateArrivalOfLastRecord": records[-1].arrival_time,
                "records": [
                    {
                        "sequence": r.sequence,
                        "partition_key": r.partition_key,
                        "arrival_time": r.arrival_time,
                    }
                    for r in records
                ],
            },
        }
    )
    now = time.time()
    invocation = InvocationRecord(
        id=new_id(),
        function=trigger.on_failure,
        version="",
        trigger=Trigger.DESTINATION,
        status=InvocationStatus.QUEUED,
        created_at=now,
    )
    delivery = Delivery(
        id=invocation.id,
        queue=queue_name(trigger.on_failure),
        payload=body,
        invocation_id=invocation.id,
        enqueued_at=now,
        available_at=now,
        headers={"trigger": Trigger.DESTINATION},
    )
    return [PutInvocation(invocation), Enqueue(delivery)]

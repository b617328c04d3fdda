"""How a queue trigger splits a lease into batches and reads what the handler reported."""

from __future__ import annotations

import msgspec

from squall.engine.queues.consumer import _batches, _failed
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.model.queues import QueueMessage


def msg(n: int, group: str | None = None) -> QueueMessage:
    return QueueMessage(id=f"m{n}", queue="q", body=b"1", group_id=group, sent_at=0.0,
                        available_at=0.0)


def record(result: object, status: str = InvocationStatus.SUCCEEDED) -> InvocationRecord:
    return InvocationRecord(id="i", function="f", version="", trigger="queue", status=status,
                            result=msgspec.json.encode(result))


def ids(batches: list[list[QueueMessage]]) -> list[list[str]]:
    return [[m.id for m in b] for b in batches]


def test_standard_leases_split_into_slices() -> None:
    assert ids(_batches([msg(n) for n in range(5)], 2)) == [["m0", "m1"], ["m2", "m3"], ["m4"]]


def test_a_fifo_group_is_never_split_across_batches() -> None:
    lease = [msg(0, "a"), msg(1, "b"), msg(2, "a"), msg(3, "c"), msg(4, "b"), msg(5, "c")]
    assert ids(_batches(lease, 3)) == [["m0", "m2"], ["m1", "m4"], ["m3", "m5"]]
    assert ids(_batches(lease, 4)) == [["m0", "m2", "m1", "m4"], ["m3", "m5"]]


def test_reported_failures_in_every_accepted_shape() -> None:
    batch = [msg(0), msg(1), msg(2)]
    assert _failed(record({"failed": ["m1", "other"]}), batch, False) == {"m1"}
    assert _failed(record(["m2"]), batch, False) == {"m2"}
    lambda_shape = {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert _failed(record(lambda_shape), batch, False) == {"m0"}
    assert _failed(record(None), batch, False) == set()
    assert _failed(record(None, InvocationStatus.FAILED), batch, False) == {"m0", "m1", "m2"}


def test_after_a_failed_fifo_message_the_rest_of_its_group_is_kept() -> None:
    batch = [msg(0, "a"), msg(1, "b"), msg(2, "a"), msg(3, "b")]
    assert _failed(record(["m0"]), batch, True) == {"m0", "m2"}

"""The storage contract: a durable work queue, the control-plane state, and units of work.

A unit of work is a list of typed ops committed atomically: the ack of a delivery,
the record of the invocation it caused, and the deliveries it enqueued land
together or not at all. Backends implement the contract once each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import msgspec

from squall.model.archive import ArchiveConfig, ArchivedEvent
from squall.model.invocation import DeadLetter, InvocationRecord, LogEntry, LogRow
from squall.model.queues import QueueConfig, QueueMessage, QueueStats, SendOutcome
from squall.model.rules import RuleConfig
from squall.model.schedules import ScheduleState
from squall.model.schemas import SchemaRecord
from squall.model.workflows import StepRecord, WorkflowRun
from squall.storage.buckets import BucketOp, BucketStore
from squall.storage.deploys import DeployOp, DeployStore
from squall.storage.event_store import EventStore, EventStoreOp
from squall.storage.leases import LeaseStore
from squall.storage.logs import AppendRecord, LogOp, PartitionedLog
from squall.storage.tables import TableOp, TableStore
from squall.storage.traces import TraceOp, TraceStore


class Delivery(msgspec.Struct, kw_only=True):
    """One unit of asynchronous work on a named queue (e.g. ``fn:resize``)."""

    id: str
    queue: str
    payload: bytes
    invocation_id: str
    attempts: int = 0  # times leased so far, this lease included
    enqueued_at: float
    available_at: float
    headers: dict[str, str] = {}
    # The queue gave up: the last attempt's process died before settling it. Dead-letter it,
    # do not run it again (the embedded store gives such attempts back and never sets it).
    exhausted: bool = False


# --- ops ---------------------------------------------------------------------------------


class Enqueue(msgspec.Struct, frozen=True):
    delivery: Delivery
    dedup_key: str | None = None  # a second enqueue with the same key on the queue is dropped


class Ack(msgspec.Struct, frozen=True):
    delivery_id: str


class Retry(msgspec.Struct, frozen=True):
    delivery_id: str
    available_at: float


class Bury(msgspec.Struct, frozen=True):
    """Remove a delivery for good, keeping it as a dead letter."""

    delivery_id: str
    letter: DeadLetter


class PutOutbox(msgspec.Struct, frozen=True):
    """A delivery for a broker, kept in the state store's transaction until a relay has
    published it (the transactional outbox of the distributed backend)."""

    delivery: Delivery
    dedup_key: str | None = None


class PutOutboxRecord(msgspec.Struct, frozen=True):
    """A stream record for the broker, kept in the outbox like a delivery (its row id is
    the record's id)."""

    record: AppendRecord


class DeleteOutbox(msgspec.Struct, frozen=True):
    """Outbox rows the broker acknowledged (deliveries' or records' ids); an id no longer
    there is ignored."""

    delivery_ids: list[str]


OutboxOp = PutOutbox | PutOutboxRecord | DeleteOutbox


class PutInvocation(msgspec.Struct, frozen=True):
    record: InvocationRecord


class AppendLogs(msgspec.Struct, frozen=True):
    invocation_id: str
    function: str
    lines: list[LogEntry]
    request_id: str | None = None
    version: str | None = None


class ExpireLogs(msgspec.Struct, frozen=True):
    """Delete the log lines written before ``before`` (epoch s): the retention sweep."""

    before: float


class PutIdempotency(msgspec.Struct, frozen=True):
    function: str
    key: str
    invocation_id: str
    expires_at: float


class TakeDeadLetter(msgspec.Struct, frozen=True):
    """Delete a dead letter; fails the unit with Conflict when it is already gone."""

    letter_id: str


class RememberEvent(msgspec.Struct, frozen=True):
    """An event id seen on a source, so a second publish within the window is dropped."""

    source: str
    event_id: str
    expires_at: float


class PutRule(msgspec.Struct, frozen=True):
    """Create or replace a rule made through the admin API."""

    rule: RuleConfig


class DeleteRule(msgspec.Struct, frozen=True):
    name: str


class PutFunctionSettings(msgspec.Struct, frozen=True):
    """The settings of ``function`` changed through the admin API (a JSON object of the
    fields and their values), which hold over what its code declares, on every node."""

    function: str
    changes: bytes


# Schemas and archives: the bus's catalog. An event is archived in the unit that delivers it.


class PutSchema(msgspec.Struct, frozen=True):
    record: SchemaRecord


class DeleteSchema(msgspec.Struct, frozen=True):
    type: str
    version: int | None = None  # None: every version of the type


class PutArchive(msgspec.Struct, frozen=True):
    archive: ArchiveConfig


class DeleteArchive(msgspec.Struct, frozen=True):
    """Remove an archive and every event it holds."""

    name: str


class ArchiveEvent(msgspec.Struct, frozen=True):
    archive: str
    source: str
    event_id: str
    published_at: float
    expires_at: float
    body: bytes  # the event in the CloudEvents JSON format


class ExpireArchived(msgspec.Struct, frozen=True):
    """Delete archived events whose retention ended before ``now``."""

    now: float


# User queues (SQS semantics): their own table, beside the engine's work queue.


class PutQueue(msgspec.Struct, frozen=True):
    """Create a queue made through the admin API."""

    queue: QueueConfig


class DropQueue(msgspec.Struct, frozen=True):
    """Remove a queue made through the admin API, and every message it holds."""

    name: str


class PurgeQueue(msgspec.Struct, frozen=True):
    name: str


class DeleteMessages(msgspec.Struct, frozen=True):
    """Delete received messages by receipt (a receipt of an earlier receive matches nothing)."""

    queue: str
    receipts: list[str]


class ExpireMessages(msgspec.Struct, frozen=True):
    """Delete ``queue``'s messages sent before ``before``, and dedup ids past their window."""

    queue: str
    before: float
    now: float


class SendMessages(msgspec.Struct, frozen=True):
    """Queue messages as part of a unit (a function's sends, committed with its success);
    one whose dedup id its queue saw within ``dedup_window_s`` is dropped."""

    messages: list[QueueMessage]
    dedup_window_s: float


class SendViaOutbox(msgspec.Struct, frozen=True):
    """``SendMessages`` on the distributed store: each message whose dedup id its queue did
    not see within ``dedup_window_s`` becomes an outbox row (``deliveries[i]`` carries
    ``messages[i]``), published once the unit commits. ``sent`` is filled as the op applies
    (the indexes of the messages written), for the committing node to publish them."""

    messages: list[QueueMessage]
    deliveries: list[Delivery]
    dedup_window_s: float
    sent: list[int]


QueueOp = (
    PutQueue | DropQueue | PurgeQueue | DeleteMessages | ExpireMessages | SendMessages
    | SendViaOutbox
)

CatalogOp = PutSchema | DeleteSchema | PutArchive | DeleteArchive | ArchiveEvent | ExpireArchived

# Schedules: a tick's invocation is enqueued in the unit that advances its schedule.


class PutSchedule(msgspec.Struct, frozen=True):
    state: ScheduleState


class AdvanceSchedule(msgspec.Struct, frozen=True):
    """Move a schedule's next tick from ``expected`` to ``next_at``; fails the unit with
    Conflict when the next tick is no longer ``expected``, so no tick is enqueued twice."""

    name: str
    expected: float | None
    next_at: float | None
    last_at: float | None
    fired: int = 0  # ticks fired by this unit


class DeleteSchedule(msgspec.Struct, frozen=True):
    name: str


ScheduleOp = PutSchedule | AdvanceSchedule | DeleteSchedule

# Workflows: runs, their checkpoints, and the delivery on ``workflows`` that drives each run.


class PutRun(msgspec.Struct, frozen=True):
    """Create or update a run (its cancel request is kept: only ``CancelRun`` sets it)."""

    run: WorkflowRun


class PutStep(msgspec.Struct, frozen=True):
    """A step's checkpoint; a position already recorded as finished is not replaced."""

    step: StepRecord


class ResolveStep(msgspec.Struct, frozen=True):
    """End a sleeping or waiting step (an event arrived, the timer fired); no-op when it
    has ended already, so the first of an event and a timeout wins."""

    run_id: str
    seq: int
    status: str
    output: object = None
    error: dict[str, object] | None = None
    ended_at: float = 0.0


class WakeRun(msgspec.Struct, frozen=True):
    """Make a suspended run's delivery due now (not one being run: see ``SuspendRun``)."""

    run_id: str
    now: float


class SuspendRun(msgspec.Struct, frozen=True):
    """Release a run's leased delivery until ``until``; due at once instead when step
    ``seq`` ended meanwhile or a cancel was asked for, so no wake-up is lost."""

    delivery_id: str
    run_id: str
    seq: int
    until: float
    now: float


class CancelRun(msgspec.Struct, frozen=True):
    run_id: str


class StartRun(msgspec.Struct, frozen=True):
    """Create ``run`` with the delivery that drives it, unless a run of its id exists: then
    nothing changes (the id is the idempotency key), so a start repeated after a crash, or
    by a redelivered event, message or tick, is one run."""

    run: WorkflowRun
    delivery: Delivery


class WakeJoins(msgspec.Struct, frozen=True):
    """Make due the runs waiting (``wf.wait_child``) on child run ``child_id``, as the store
    holds them when the unit applies: a join recorded while the child was finishing is not
    missed (its parent's next replay ends it)."""

    child_id: str
    now: float


WorkflowOp = (
    PutRun | PutStep | ResolveStep | WakeRun | SuspendRun | CancelRun | StartRun | WakeJoins
)

Op = (
    Enqueue
    | Ack
    | Retry
    | Bury
    | PutInvocation
    | AppendLogs
    | ExpireLogs
    | PutIdempotency
    | TakeDeadLetter
    | RememberEvent
    | PutRule
    | DeleteRule
    | PutFunctionSettings
    | CatalogOp
    | LogOp
    | ScheduleOp
    | QueueOp
    | BucketOp
    | TableOp
    | WorkflowOp
    | EventStoreOp
    | TraceOp
    | DeployOp
    | OutboxOp
)


# --- protocols ---------------------------------------------------------------------------


class WorkQueue(Protocol):
    async def lease(self, queue: str, limit: int, visibility_s: float) -> list[Delivery]:
        """Take up to ``limit`` due deliveries, invisible to others for ``visibility_s``."""
        ...

    async def recover(self) -> int:
        """Make deliveries leased by a process that died visible again; return how many."""
        ...

    async def next_due(self, queue: str) -> float | None:
        """When the earliest delivery of ``queue`` becomes due (epoch s), or None."""
        ...

    async def depth(self, queue: str | None = None) -> int: ...


class StateStore(Protocol):
    async def get_invocation(self, invocation_id: str) -> InvocationRecord | None: ...

    async def list_invocations(
        self, *, function: str | None, status: str | None, limit: int, before: str | None
    ) -> list[InvocationRecord]: ...

    async def find_idempotent(self, function: str, key: str, now: float) -> str | None: ...

    async def seen_events(
        self, keys: Sequence[tuple[str, str]], now: float
    ) -> set[tuple[str, str]]:
        """Which (source, event id) pairs were published within their dedup window."""
        ...

    async def list_logs(
        self,
        *,
        function: str | None,
        invocation_id: str | None,
        since: float | None,
        after: int | None,
        level: str | None,
        limit: int,
        request_id: str | None = None,
        trace_id: str | None = None,
    ) -> list[LogRow]: ...

    async def list_dead_letters(
        self, *, function: str | None, ids: Sequence[str] | None, limit: int
    ) -> list[DeadLetter]: ...

    async def list_rules(self) -> list[RuleConfig]:
        """The rules made through the admin API, by name."""
        ...

    async def function_settings(self) -> dict[str, bytes]:
        """Each function's settings changed through the admin API (``PutFunctionSettings``)."""
        ...


class CatalogStore(Protocol):
    async def list_schemas(self) -> list[SchemaRecord]: ...

    async def list_archives(self) -> list[ArchiveConfig]: ...

    async def archive_stats(self, name: str) -> tuple[int, float | None, float | None]:
        """How many events the archive holds, and when the first and the last were published."""
        ...

    async def archived_events(
        self, archives: Sequence[str], start: float, end: float, after: int, limit: int
    ) -> list[ArchivedEvent]:
        """Events of ``archives`` published within [start, end], in publish order, from
        ``seq`` > ``after``."""
        ...


class ScheduleStore(Protocol):
    async def list_schedule_states(self) -> list[ScheduleState]: ...


class QueueStore(Protocol):
    async def list_queues(self) -> list[QueueConfig]:
        """The queues made through the admin API, by name."""
        ...

    async def send_messages(
        self, messages: Sequence[QueueMessage], dedup_window_s: float
    ) -> list[SendOutcome]:
        """Queue ``messages`` durably; one whose dedup id its queue saw within the window is
        not queued again (its outcome names the first message)."""
        ...

    async def receive_messages(
        self,
        queue: str,
        limit: int,
        visibility_s: float,
        *,
        fifo: bool,
        max_receive: int | None = None,
        dead_letter: str | None = None,
        per_group: int | None = None,
    ) -> list[QueueMessage]:
        """Take up to ``limit`` visible messages, each with a new receipt, invisible for
        ``visibility_s``. FIFO: only heads of groups with nothing in flight or delayed, in
        order, at most ``per_group`` of each. A message already received ``max_receive``
        times moves to ``dead_letter`` (or is dropped when None) instead."""
        ...

    async def delete_message(self, queue: str, receipt: str) -> bool: ...

    async def change_visibility(self, queue: str, receipt: str, visibility_s: float) -> bool:
        """Make a received, undeleted message visible ``visibility_s`` from now."""
        ...

    async def redrive_messages(self, dead_letter: str) -> dict[str, int]:
        """Move dead-lettered messages back to the queues they came from; counts by queue."""
        ...

    async def queue_stats(self, queue: str) -> QueueStats: ...

    async def next_visible(self, queue: str) -> float | None:
        """When the next message of ``queue`` that is invisible now becomes visible."""
        ...


class UsageStore(Protocol):
    """Reads for metrics and cost: what finished invocations used, what waits dead-lettered."""

    async def finished_invocations(
        self, since: float, until: float | None = None, function: str | None = None
    ) -> list[InvocationRecord]:
        """Records of finished invocations created in [since, until), oldest first."""
        ...

    async def dead_letter_counts(self) -> dict[str, int]:
        """Dead letters held, by function (``rule:<name>`` for a rule's target deliveries)."""


class WorkflowStore(Protocol):
    async def get_run(self, run_id: str) -> WorkflowRun | None: ...

    async def list_runs(
        self, *, workflow: str | None, status: str | None, limit: int, before: str | None
    ) -> list[WorkflowRun]:
        """Runs newest first (by id), those with an id < ``before`` when given."""
        ...

    async def list_steps(self, run_id: str) -> list[StepRecord]: ...

    async def pending_waits(self) -> list[StepRecord]:
        """Every step waiting for an event."""
        ...

    async def workflow_counts(
        self,
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str, str], int]]:
        """Runs by (workflow, status) and steps by (workflow, kind, status)."""
        ...


class Store(
    WorkQueue,
    StateStore,
    CatalogStore,
    PartitionedLog,
    ScheduleStore,
    QueueStore,
    BucketStore,
    TableStore,
    UsageStore,
    WorkflowStore,
    EventStore,
    TraceStore,
    DeployStore,
    LeaseStore,
    Protocol,
):
    # True when only this process can open the store (the embedded backend): leases left by a
    # dead process are taken over at once.
    exclusive: bool

    async def commit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> None:
        """Apply ``ops`` atomically and durably (group-committed with concurrent units).

        ``within_s`` lets the backend hold the unit that long to share a commit.
        """
        ...

    def submit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> asyncio.Future[None]:
        """Like ``commit``, for callers that go on working: the future says when it landed."""
        ...

    def commit_soon(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` atomically in a later group commit; for records nobody waits on."""
        ...

    async def close(self) -> None: ...

"""The embedded backend's workflow runs and their step checkpoints.

A run is driven by one delivery on its workflow's queue (``wf:<name>``, deduplicated by run
id), so a suspended run is a delivery available at its wake-up time: sleeps and timeouts
outlive restarts like any queued work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.model.workflows import RunStatus, StepRecord, StepStatus, WorkflowRun
from squall.storage.protocols import (
    CancelRun,
    PutRun,
    PutStep,
    ResolveStep,
    StartRun,
    SuspendRun,
    WakeJoins,
    WakeRun,
    WorkflowOp,
)
from squall.storage.sqlite.db import Database
from squall.storage.sqlite.deliveries import ENQUEUE_SQL, delivery_row

WORKFLOW_SCHEMA = """
CREATE TABLE IF NOT EXISTS wf_runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    cancel INTEGER NOT NULL DEFAULT 0,
    run BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS wf_runs_created ON wf_runs (created_at, id);

CREATE TABLE IF NOT EXISTS wf_steps (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    step BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS wf_steps_waiting ON wf_steps (status) WHERE status = 'waiting';
"""

# Applied after every other kind, in this order.
WORKFLOW_RANK: dict[type, int] = {
    PutRun: 70,
    CancelRun: 71,
    PutStep: 72,
    ResolveStep: 73,
    SuspendRun: 74,
    WakeRun: 75,
    StartRun: 76,
    WakeJoins: 77,
}

_pack = msgspec.msgpack.encode
_unpack_run = msgspec.msgpack.Decoder(WorkflowRun).decode
_unpack_step = msgspec.msgpack.Decoder(StepRecord).decode
_OPEN = (StepStatus.SLEEPING.value, StepStatus.WAITING.value)
_FINISHED = tuple(status.value for status in RunStatus if status.finished)


def apply_workflows(conn: sqlite3.Connection, kind: type, ops: Sequence[WorkflowOp]) -> None:
    """Apply a batch of workflow ops of one ``kind``."""
    for op in ops:
        if isinstance(op, PutRun):
            run = op.run
            conn.execute(
                "INSERT INTO wf_runs (id, workflow, status, created_at, run)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                " SET status = excluded.status, run = excluded.run",
                (run.id, run.workflow, run.status, run.created_at, _pack(run)),
            )
        elif isinstance(op, StartRun):
            run = op.run
            inserted = conn.execute(
                "INSERT INTO wf_runs (id, workflow, status, created_at, run)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (run.id, run.workflow, run.status, run.created_at, _pack(run)),
            ).rowcount
            if inserted:
                conn.execute(ENQUEUE_SQL, delivery_row(op.delivery, run.id))
        elif isinstance(op, CancelRun):
            conn.execute("UPDATE wf_runs SET cancel = 1 WHERE id = ?", (op.run_id,))
        elif isinstance(op, PutStep):
            step = op.step
            # A finished checkpoint is final; an open one (sleeping, waiting) may be
            # written again by a replay that reaches it before it ends.
            conn.execute(
                "INSERT INTO wf_steps (run_id, seq, status, kind, step) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, seq) DO NOTHING",
                (step.run_id, step.seq, step.status, step.kind, _pack(step)),
            )
        elif isinstance(op, ResolveStep):
            _resolve(conn, op)
        elif isinstance(op, SuspendRun):
            # Due at once, not at `until`, when the awaited step ended meanwhile, a cancel
            # was asked, or the step is a join whose child has finished already.
            until = op.now if _joins_finished_child(conn, op.run_id, op.seq) else op.until
            conn.execute(
                "UPDATE deliveries SET leased = 0, available_at = CASE"
                " WHEN (SELECT status FROM wf_steps WHERE run_id = ? AND seq = ?) IN (?, ?)"
                " AND (SELECT cancel FROM wf_runs WHERE id = ?) = 0 THEN ? ELSE ? END"
                " WHERE id = ?",
                (op.run_id, op.seq, *_OPEN, op.run_id, until, op.now, op.delivery_id),
            )
        elif isinstance(op, WakeJoins):
            # Read at apply time: a join committed after the unit was built is seen.
            label = "child:" + op.child_id
            for run_id, packed in conn.execute(
                "SELECT run_id, step FROM wf_steps WHERE kind = 'join' AND status = 'waiting'"
            ).fetchall():
                if _unpack_step(packed).name == label:
                    conn.execute(
                        "UPDATE deliveries SET available_at = MIN(available_at, ?)"
                        " WHERE queue >= 'wf:' AND queue < 'wf;' AND dedup_key = ?"
                        " AND leased = 0",
                        (op.now, run_id),
                    )
        elif isinstance(op, WakeRun):
            conn.execute(
                "UPDATE deliveries SET available_at = MIN(available_at, ?)"
                " WHERE queue >= 'wf:' AND queue < 'wf;' AND dedup_key = ? AND leased = 0",
                (op.now, op.run_id),
            )


def _joins_finished_child(conn: sqlite3.Connection, run_id: str, seq: int) -> bool:
    """Whether step ``seq`` of ``run_id`` is a join whose child run has finished."""
    row = conn.execute(
        "SELECT step FROM wf_steps WHERE run_id = ? AND seq = ? AND kind = 'join'",
        (run_id, seq),
    ).fetchone()
    if row is None:
        return False
    child = _unpack_step(row[0]).name.removeprefix("child:")
    found = conn.execute("SELECT status FROM wf_runs WHERE id = ?", (child,)).fetchone()
    return found is not None and found[0] in _FINISHED


def _resolve(conn: sqlite3.Connection, op: ResolveStep) -> None:
    row = conn.execute(
        "SELECT step FROM wf_steps WHERE run_id = ? AND seq = ? AND status IN (?, ?)",
        (op.run_id, op.seq, *_OPEN),
    ).fetchone()
    if row is None:
        return
    step = _unpack_step(row[0])
    step.status = op.status
    step.output = op.output
    step.error = op.error
    step.ended_at = op.ended_at
    conn.execute(
        "UPDATE wf_steps SET status = ?, step = ? WHERE run_id = ? AND seq = ?",
        (op.status, _pack(step), op.run_id, op.seq),
    )


class WorkflowReads:
    _db: Database[Any]

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        rows = self._db.read("SELECT run, cancel FROM wf_runs WHERE id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    async def list_runs(
        self, *, workflow: str | None, status: str | None, limit: int, before: str | None
    ) -> list[WorkflowRun]:
        clauses: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            clauses.append("workflow = ?")
            params.append(workflow)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if before is not None:
            clauses.append(
                "(created_at, id) < (SELECT created_at, id FROM wf_runs WHERE id = ?)"
            )
            params.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.read(
            f"SELECT run, cancel FROM wf_runs {where} ORDER BY created_at DESC, id DESC"
            " LIMIT ?",
            (*params, limit),
        )
        return [_run(row) for row in rows]

    async def list_steps(self, run_id: str) -> list[StepRecord]:
        rows = self._db.read("SELECT step FROM wf_steps WHERE run_id = ? ORDER BY seq", (run_id,))
        return [_unpack_step(row[0]) for row in rows]

    async def pending_waits(self) -> list[StepRecord]:
        rows = self._db.read("SELECT step FROM wf_steps WHERE status = 'waiting'")
        return [_unpack_step(row[0]) for row in rows]

    async def workflow_counts(
        self,
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str, str], int]]:
        runs = self._db.read(
            "SELECT workflow, status, COUNT(*) FROM wf_runs GROUP BY workflow, status"
        )
        steps = self._db.read(
            "SELECT r.workflow, s.kind, s.status, COUNT(*) FROM wf_steps s"
            " JOIN wf_runs r ON r.id = s.run_id GROUP BY r.workflow, s.kind, s.status"
        )
        return (
            {(row[0], row[1]): row[2] for row in runs},
            {(row[0], row[1], row[2]): row[3] for row in steps},
        )


def _run(row: Sequence[Any]) -> WorkflowRun:
    run = _unpack_run(row[0])
    run.cancel_requested = bool(row[1])
    return run

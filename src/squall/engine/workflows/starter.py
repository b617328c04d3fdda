"""What the consumers of triggers need of the workflows: a delivery, event, tick or queue
message for a workflow's function starts a run of it instead of invoking the function."""

from __future__ import annotations

from typing import Any, Protocol

from squall.storage.protocols import StartRun


class RunStarter(Protocol):
    def starts(self, function: str) -> bool: ...

    def start_op(
        self, name: str, run_id: str, input: Any, traceparent: str | None = None
    ) -> StartRun: ...

    def wake(self) -> None: ...

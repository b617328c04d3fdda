"""Who may touch which event streams: one stream, a prefix of names, all of them, and
reads only; and the declarations the app validates."""

from __future__ import annotations

import pytest

from squall.engine.event_store.calls import require_stream
from squall.errors import AccessDenied, ConfigError
from squall.model.config import FunctionConfig


def fn(*permissions: str) -> FunctionConfig:
    return FunctionConfig(name="f", permissions=permissions)


def test_one_stream_a_prefix_or_all() -> None:
    require_stream(fn("events_store:order-1"), "f", "order-1", write=True)
    require_stream(fn("events_store:order-*"), "f", "order-77", write=True)
    require_stream(fn("events_store:*"), "f", "user-1", write=True)
    require_stream(fn("events_store:*"), "f", "*", write=False)  # read-all
    for caller, stream in ((fn("events_store:order-1"), "order-10"),
                           (fn("events_store:order-*"), "orders-1"),
                           (fn("events_store:order-*"), "*"),
                           (fn("table:order-1"), "order-1"),
                           (None, "order-1")):
        with pytest.raises(AccessDenied) as denied:
            require_stream(caller, "f", stream, write=True)
        assert denied.value.details["resource"] == stream


def test_read_only_grants_reads_only() -> None:
    reader = fn("events_store.read:order-*")
    require_stream(reader, "f", "order-1", write=False)
    with pytest.raises(AccessDenied, match='permissions=\\["events_store:order-1"\\]'):
        require_stream(reader, "f", "order-1", write=True)


def test_the_actions_are_valid_declarations() -> None:
    fn("events_store:order-*", "events_store.read:*").validate()
    with pytest.raises(ConfigError, match="events_store"):
        fn("event_store:order-*").validate()

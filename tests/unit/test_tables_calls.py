"""``table.*`` calls from sandboxes: permissions, and writes held in the caller's effects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from squall.engine.effects import Effects
from squall.engine.tables.calls import answer
from squall.engine.tables.service import Tables
from squall.errors import AccessDenied, InvalidInput
from squall.model.config import FunctionConfig
from squall.model.tables import TableConfig
from squall.storage import open_store


@pytest.fixture
async def platform(tmp_path: Path, store_url: str) -> AsyncIterator[Any]:
    store = await open_store(store_url)
    tables = Tables(store, [TableConfig(name="orders", partition_key="id")], lambda t: None)
    yield SimpleNamespace(tables=tables, store=store)
    await store.close()


WRITER = FunctionConfig(name="writer", permissions=("table:orders",))
READER = FunctionConfig(name="reader", permissions=("table.read:orders",))


async def test_writes_are_held_in_the_callers_effects_until_committed(platform: Any) -> None:
    effects = Effects()
    put = await answer(platform, WRITER, "writer", "table.put",
                       {"table": "orders", "item": {"id": "a"}}, effects)
    assert put == {"id": "a", "_version": 1}
    got = await answer(platform, WRITER, "writer", "table.get",
                       {"table": "orders", "key": {"id": "a"}}, effects)
    assert got == put
    assert await platform.tables.get_item("orders", {"id": "a"}) is None
    await platform.store.commit(effects.ops())
    effects.committed()
    assert await platform.tables.get_item("orders", {"id": "a"}) == put


async def test_read_only_and_undeclared_callers_are_denied_naming_the_permission(
    platform: Any,
) -> None:
    read = await answer(platform, READER, "reader", "table.scan", {"table": "orders"}, None)
    assert read == {"items": [], "cursor": None}
    with pytest.raises(AccessDenied) as write:
        await answer(platform, READER, "reader", "table.update",
                     {"table": "orders", "key": {"id": "a"}, "set": {"x": 1}}, None)
    assert 'permissions=["table:orders"]' in write.value.message
    assert write.value.details == {"function": "reader", "action": "table", "resource": "orders"}
    with pytest.raises(AccessDenied) as transact:
        await answer(platform, READER, "reader", "table.transact",
                     {"ops": [{"op": "check", "table": "orders", "key": {"id": "a"}},
                              {"op": "delete", "table": "orders", "key": {"id": "a"}}]}, None)
    assert transact.value.details["action"] == "table"
    with pytest.raises(AccessDenied) as nothing:
        await answer(platform, None, "ghost", "table.get", {"table": "orders"}, None)
    assert "may not read table 'orders'" in nothing.value.message
    with pytest.raises(InvalidInput):
        await answer(platform, WRITER, "writer", "table.explode", {"table": "orders"}, None)

"""``@app.projection`` declarations: the read-model table and function it adds, and the
mistakes refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest

import squall
from squall.errors import ConfigError


def project(event: Any, table: Any, ctx: Any) -> None:
    table.put({"id": event["stream"]})


def test_a_projection_declares_its_table_and_function() -> None:
    app = squall.App("p")
    app.projection("by_stream", from_streams=["order-"], partition_key="id")(project)
    manifest = app.manifest()
    [projection] = manifest.projections
    assert (projection.function, projection.table, projection.from_streams) == (
        "project", "by_stream", ("order-",)
    )
    assert [t.name for t in manifest.tables] == ["by_stream"]
    [function] = manifest.functions
    assert function.permissions == ("table:by_stream",) and function.retries == 0


@pytest.mark.parametrize(
    ("name", "options", "field"),
    [
        ("9bad", {}, "name"),
        ("ok", {"from_streams": [""]}, "from_streams"),
        ("ok", {"batch_size": 0}, "batch_size"),
        ("ok", {"batch_size": 5000}, "batch_size"),
    ],
)
def test_bad_declarations_name_the_field(name: str, options: dict[str, Any], field: str) -> None:
    app = squall.App("p")
    with pytest.raises(ConfigError) as refused:
        app.projection(name, partition_key="id", **options)(project)
    assert refused.value.field == field


def test_a_projection_declared_twice_is_refused() -> None:
    app = squall.App("p")
    app.projection("twice", partition_key="id")(project)

    def other(event: Any, table: Any, ctx: Any) -> None:
        return None

    with pytest.raises(ConfigError):
        app.projection("twice", partition_key="id", function="other")(other)
        app.manifest()

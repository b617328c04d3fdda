"""FunctionConfig / Manifest validation and the App decorator's checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import squall
from squall.errors import ConfigError
from squall.model.config import RANGES, FunctionConfig, Manifest

EXPECTED_RANGES = {
    "memory_mb": (128, 10240),
    "timeout_s": (1, 900),
    "concurrency": (0, 1000),  # 0 stops the function
    "min_instances": (0, 1000),
    "keep_alive_s": (0, 86400),
    "retries": (0, 2),
    "max_event_age_s": (60, 21600),
}


def config(**fields: object) -> FunctionConfig:
    values: dict[str, object] = {"name": "resize"}
    if "min_instances" in fields:  # keep the min_instances <= concurrency rule out of the way
        values["concurrency"] = 1000
    values.update(fields)
    return FunctionConfig(**values)


def test_ranges_are_the_documented_ones() -> None:
    assert RANGES == EXPECTED_RANGES


def test_defaults_validate() -> None:
    config().validate()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (field, value)
        for field, (low, high) in EXPECTED_RANGES.items()
        for value in (low - 1, high + 1)
    ],
)
def test_out_of_range_names_function_field_value_and_range(field: str, value: int) -> None:
    low, high = EXPECTED_RANGES[field]
    with pytest.raises(ConfigError) as info:
        config(**{field: value}).validate()
    error = info.value
    assert error.field == field
    assert error.details["function"] == "resize"
    assert error.details["value"] == repr(value)
    assert error.details["allowed"] == f"{low}-{high}"
    message = str(error)
    assert "'resize'" in message
    assert f"{field}={value}" in message
    assert f"{low}-{high}" in message


@pytest.mark.parametrize("field", sorted(EXPECTED_RANGES))
@pytest.mark.parametrize("value", [True, 1.5, "128", None])
def test_non_int_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        config(**{field: value}).validate()
    assert info.value.field == field


def test_min_instances_above_concurrency() -> None:
    with pytest.raises(ConfigError) as info:
        FunctionConfig(name="resize", concurrency=3, min_instances=4).validate()
    error = info.value
    assert error.field == "min_instances"
    assert error.details["function"] == "resize"
    assert error.details["value"] == "4"
    assert error.details["allowed"] == "0-3"
    assert "concurrency=3" in str(error)
    FunctionConfig(name="resize", concurrency=3, min_instances=3).validate()


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a" * 65, "dot.ted", "-lead"])
def test_bad_function_names(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        FunctionConfig(name=name).validate()
    assert info.value.field == "name"
    assert info.value.details["value"] == name


def test_env_must_map_strings_to_strings() -> None:
    with pytest.raises(ConfigError) as info:
        FunctionConfig(name="f", env={"A": 1}).validate()
    assert info.value.field == "env"


@pytest.mark.parametrize("field", ["on_success", "on_failure"])
def test_manifest_rejects_unknown_destination(field: str) -> None:
    manifest = Manifest(
        app="shop",
        version="v1",
        functions=[FunctionConfig(name="a", **{field: "nope"}), FunctionConfig(name="b")],
    )
    with pytest.raises(ConfigError) as info:
        manifest.validate()
    error = info.value
    assert error.field == field
    assert error.details["function"] == "a"
    assert error.details["value"] == "'nope'"
    assert "a, b" in str(error)


def test_manifest_accepts_known_destinations() -> None:
    Manifest(
        app="shop",
        version="v1",
        functions=[
            FunctionConfig(name="a", on_success="b", on_failure="a"),
            FunctionConfig(name="b"),
        ],
    ).validate()


def test_app_manifest_rejects_unknown_destination() -> None:
    app = squall.App("shop")

    @app.function(on_failure="ghost")
    def a(event: object, ctx: object) -> None: ...

    with pytest.raises(ConfigError) as info:
        app.manifest(b"")
    assert info.value.field == "on_failure"


def test_decorator_raises_at_decoration() -> None:
    app = squall.App("shop")
    with pytest.raises(ConfigError) as info:

        @app.function(memory_mb=64)
        def small(event: object, ctx: object) -> None: ...

    assert info.value.field == "memory_mb"
    assert info.value.details["function"] == "small"
    assert app.functions == {}


def test_decorator_names_function_from_handler() -> None:
    app = squall.App("shop")

    @app.function()
    def place_order(event: object, ctx: object) -> None:
        """Place an order.

        More text."""

    assert list(app.functions) == ["place-order"]
    assert app.functions["place-order"].config.description == "Place an order."


def test_decorator_rejects_non_callable_init() -> None:
    app = squall.App("shop")
    with pytest.raises(ConfigError) as info:
        app.function(init=42)(lambda event, ctx: None)
    assert info.value.field == "init"


def test_duplicate_names() -> None:
    app = squall.App("shop")

    @app.function("same")
    def one(event: object, ctx: object) -> None: ...

    with pytest.raises(ConfigError) as info:

        @app.function("same")
        def two(event: object, ctx: object) -> None: ...

    assert info.value.field == "name"
    assert "'same'" in str(info.value)
    assert app.functions["same"].handler is one


def test_updated_rejects_unknown_and_invalid_changes() -> None:
    base = FunctionConfig(name="f")
    assert base.updated({"memory_mb": 256}).memory_mb == 256
    with pytest.raises(ConfigError) as info:
        base.updated({"name": "g"})
    assert info.value.field == "name"
    with pytest.raises(ConfigError) as info:
        base.updated({"timeout_s": 0})
    assert info.value.field == "timeout_s"


@st.composite
def field_and_value(draw: st.DrawFn, inside: bool) -> tuple[str, int]:
    field = draw(st.sampled_from(sorted(EXPECTED_RANGES)))
    low, high = EXPECTED_RANGES[field]
    if inside:
        value = draw(st.integers(low, high))
    else:
        value = draw(st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)))
    return field, value


@given(field_and_value(inside=True))
def test_any_int_in_range_validates(case: tuple[str, int]) -> None:
    field, value = case
    config(**{field: value}).validate()


@given(field_and_value(inside=False))
def test_any_int_out_of_range_fails_naming_field(case: tuple[str, int]) -> None:
    field, value = case
    with pytest.raises(ConfigError) as info:
        config(**{field: value}).validate()
    assert info.value.field == field
    assert info.value.details["value"] == repr(value)
    assert field in str(info.value)

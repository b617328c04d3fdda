"""Route, permission and secret declarations are validated when the app loads."""

from __future__ import annotations

import pytest

import squall
from squall.errors import ConfigError
from squall.model.http import RouteConfig


def handler(request, ctx):  # type: ignore[no-untyped-def]
    return None


def test_route_spec_parses_method_and_path() -> None:
    route = RouteConfig.parse("post /orders/{order_id}", "orders")
    assert (route.method, route.path, route.function) == ("POST", "/orders/{order_id}", "orders")
    assert route.timeout_s == 29.0
    assert route.auth == "none"


@pytest.mark.parametrize(
    ("spec", "options", "field"),
    [
        ("FETCH /x", {}, "method"),
        ("GET x", {}, "path"),
        ("GET /a b", {}, "path"),
        ("GET /{1bad}", {}, "path"),
        ("GET /api/v1/mine", {}, "path"),
        ("GET /healthz", {}, "path"),
        ("GET /ui/mine", {}, "path"),  # the dashboard's
        ("GET /x", {"auth": "basic"}, "auth"),
        ("GET /x", {"timeout_s": 0.0}, "timeout_s"),
        ("GET /x", {"timeout_s": 901.0}, "timeout_s"),
    ],
)
def test_bad_routes_name_the_field(spec: str, options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        RouteConfig.parse(spec, "f", **options)
    assert info.value.field == field
    assert "f" in info.value.message


def test_stacked_routes_register_the_function_once() -> None:
    app = squall.App("a")
    app.http("GET /items/{id}")(app.http("DELETE /items/{id}", memory_mb=256)(handler))
    assert list(app.functions) == ["handler"]
    assert app.functions["handler"].config.memory_mb == 256
    manifest = app.manifest()
    assert {(r.method, r.path) for r in manifest.routes} == {
        ("GET", "/items/{id}"),
        ("DELETE", "/items/{id}"),
    }


def test_the_same_route_twice_is_refused() -> None:
    app = squall.App("a")

    def other(request, ctx):  # type: ignore[no-untyped-def]
        return None

    app.http("GET /x")(handler)
    app.http("GET /x")(other)
    with pytest.raises(ConfigError, match="declared by both 'handler' and 'other'"):
        app.manifest()


def test_jwt_routes_need_jwt_settings() -> None:
    app = squall.App("a")
    app.http("GET /x", auth="jwt")(handler)
    with pytest.raises(ConfigError) as info:
        app.manifest()
    assert info.value.field == "jwt"
    secured = squall.App("b", jwt=squall.JwtConfig(secret_env="JWT_SECRET"))
    secured.http("GET /x", auth="jwt")(handler)
    assert secured.manifest().routes[0].auth == "jwt"


@pytest.mark.parametrize("permission", ["invoke", "invoke:", "send:", "mail:x", "*:x"])
def test_bad_permissions_are_refused(permission: str) -> None:
    app = squall.App("a")
    with pytest.raises(ConfigError) as info:
        app.function(permissions=[permission])(handler)
    assert info.value.field == "permissions"
    assert permission in info.value.message


def test_permissions_grant_exactly_what_they_say() -> None:
    app = squall.App("a")
    app.function(permissions=["invoke:billing"])(handler)
    config = app.functions["handler"].config
    assert config.allows("invoke", "billing")
    assert not config.allows("invoke", "shipping")
    app.function(name="any", permissions=["invoke:*"])(handler)
    assert app.functions["any"].config.allows("invoke", "shipping")


@pytest.mark.parametrize("name", ["1X", "has-dash", "", "a b"])
def test_bad_secret_names_are_refused(name: str) -> None:
    app = squall.App("a")
    with pytest.raises(ConfigError) as info:
        app.function(secrets=[name])(handler)
    assert info.value.field == "secrets"


def test_routes_that_differ_only_in_parameter_names_collide() -> None:
    import pytest

    import squall
    from squall.errors import ConfigError

    app = squall.App("collide")

    @app.http("GET /orders/{id}")
    def one(request, ctx):
        return 1

    @app.http("GET /orders/{order_id}")
    def two(request, ctx):
        return 2

    with pytest.raises(ConfigError, match=r"collides: .*'one' \(as /orders/\{id\}\) and 'two'"):
        app.manifest()

"""Plans: which resources a deploy adds, changes, removes (with prune) or keeps."""

from __future__ import annotations

import pytest

import squall
from squall.engine.deploy.plan import Change, Plan, diff, merge
from squall.errors import ConfigError
from squall.model.config import Manifest


def _manifest(*, memory: int = 128, extra_route: bool = True, extra_fn: bool = True) -> Manifest:
    app = squall.App("shop")

    @app.http("GET /orders", memory_mb=memory)
    def orders(request: squall.Request, ctx: squall.Context) -> dict[str, str]:
        return {}

    if extra_route:

        @app.http("GET /health")
        def health(request: squall.Request, ctx: squall.Context) -> dict[str, str]:
            return {}

    if extra_fn:

        @app.function()
        def sweep(event: object, ctx: squall.Context) -> None:
            return None

    return app.manifest()


def test_a_first_deploy_adds_everything() -> None:
    changes = diff(None, _manifest(), prune=False)
    assert {(c.kind, c.name, c.action) for c in changes} == {
        ("functions", "orders", "add"),
        ("functions", "health", "add"),
        ("functions", "sweep", "add"),
        ("routes", "GET /orders", "add"),
        ("routes", "GET /health", "add"),
    }


def test_equal_manifests_change_nothing() -> None:
    assert diff(_manifest(), _manifest(), prune=False) == []


def test_a_changed_config_is_a_change_of_that_resource_only() -> None:
    changes = diff(_manifest(), _manifest(memory=256), prune=False)
    assert changes == [Change("functions", "orders", "change")]


def test_what_disappears_is_kept_without_prune_and_removed_with_it() -> None:
    old, new = _manifest(), _manifest(extra_route=False, extra_fn=False)
    kept = diff(old, new, prune=False)
    assert {(c.name, c.action) for c in kept} == {
        ("health", "keep"), ("sweep", "keep"), ("GET /health", "keep")
    }
    pruned = diff(old, new, prune=True)
    assert {(c.name, c.action) for c in pruned} == {
        ("health", "remove"), ("sweep", "remove"), ("GET /health", "remove")
    }


def test_changes_are_ordered_by_kind_then_name() -> None:
    changes = diff(None, _manifest(), prune=False)
    assert [c.name for c in changes] == ["health", "orders", "sweep", "GET /health", "GET /orders"]


def test_merge_keeps_what_the_new_app_no_longer_declares() -> None:
    old, new = _manifest(), _manifest(memory=256, extra_route=False, extra_fn=False)
    merged, kept = merge(old, new)
    assert kept == {"health", "sweep"}
    assert sorted(f.name for f in merged.functions) == ["health", "orders", "sweep"]
    assert sorted(r.path for r in merged.routes) == ["/health", "/orders"]
    # The new app's declaration wins for what both declare.
    assert next(f for f in merged.functions if f.name == "orders").memory_mb == 256


def test_merge_of_a_kept_route_whose_function_was_pruned_is_refused() -> None:
    old = _manifest()
    new = _manifest(extra_route=False, extra_fn=False)
    orphan = Manifest(app="shop", version="", functions=new.functions, routes=old.routes)
    with pytest.raises(ConfigError):
        orphan.validate()
    merged, _ = merge(old, new)
    merged.validate()  # the kept route keeps its function


def test_a_plan_with_only_kept_resources_is_empty() -> None:
    assert Plan(changes=[Change("functions", "sweep", "keep")]).empty
    assert not Plan(changes=[Change("functions", "sweep", "remove")]).empty
    assert not Plan(changes=[], new_versions={"orders": 2}).empty
    assert not Plan(changes=[], settings_changed=True).empty

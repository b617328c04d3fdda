"""Queue names to NATS subjects and consumer names, and the tests' missing-NATS rule."""

from __future__ import annotations

import pytest
from nats_service import unavailable

from squall.errors import ConfigError
from squall.storage.nats import ConnectOptions, JetStreamConfig, QueueSpec
from squall.storage.nats.subjects import check_prefix, consumer_name, queue_tokens, stream_name


def test_queue_parts_become_subject_tokens() -> None:
    assert queue_tokens("fn:resize") == "fn.resize"
    assert queue_tokens("workflows") == "workflows"
    assert queue_tokens("fn:my_fn-2") == "fn.my_fn-2"


def test_characters_nats_forbids_are_escaped_without_collisions() -> None:
    assert queue_tokens("rule:a.b") == "rule.a~2Eb"
    assert queue_tokens("fn:a b*>") == "fn.a~20b~2A~3E"
    assert queue_tokens("fn:é") == "fn.~C3~A9"
    # "~" is escaped too, so an escape sequence typed into a name cannot collide.
    assert queue_tokens("fn:a~2Eb") != queue_tokens("fn:a.b")
    names = {consumer_name(q) for q in ("fn:a", "fn_a", "fn~3Aa", "fn:a:b", "fn:a.b")}
    assert len(names) == 5
    assert all("." not in n and ":" not in n for n in names)


@pytest.mark.parametrize("queue", ["", "fn:", ":x", "a::b"])
def test_empty_parts_are_rejected_naming_the_field(queue: str) -> None:
    with pytest.raises(ConfigError) as caught:
        queue_tokens(queue)
    assert caught.value.field == "queue"


def test_prefix_and_stream_names() -> None:
    assert check_prefix("squall") == "squall"
    assert stream_name("squall", "work") == "SQUALL_WORK"
    assert stream_name("tenant-a.squall", "delay") == "TENANT_A_SQUALL_DELAY"
    for bad in ("", "Squall", "a..b", "a.*", "a b"):
        with pytest.raises(ConfigError) as caught:
            check_prefix(bad)
        assert caught.value.field == "prefix"


def test_queue_spec_checks_its_fields() -> None:
    spec = QueueSpec(name="fn:x", retries=4)
    assert (spec.attempts, spec.max_deliver) == (5, 6)
    for field, kwargs in (
        ("visibility_s", {"visibility_s": 0}),
        ("retries", {"retries": -1}),
        ("max_in_flight", {"max_in_flight": 0}),
    ):
        with pytest.raises(ConfigError) as caught:
            QueueSpec(name="fn:x", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field


def test_missing_nats_fails_in_ci_and_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true requires NATS"):
        unavailable(ConnectionRefusedError("refused"))
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="refused"):
        unavailable(ConnectionRefusedError("refused"))


def test_configs_check_their_fields() -> None:
    for field, make in (
        ("prefix", lambda: JetStreamConfig(prefix="A.B")),
        ("duplicate_window_s", lambda: JetStreamConfig(duplicate_window_s=0)),
        ("replicas", lambda: JetStreamConfig(replicas=0)),
        ("attempts", lambda: ConnectOptions(attempts=0)),
        ("url", lambda: ConnectOptions(url="http://127.0.0.1:4222")),
    ):
        with pytest.raises(ConfigError) as caught:
            make()
        assert caught.value.field == field

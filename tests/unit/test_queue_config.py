"""Queue and queue-trigger declarations: what loads, and the ConfigError of what does not."""

from __future__ import annotations

from typing import Any

import pytest

import squall
from squall.errors import ConfigError
from squall.model.queues import QueueConfig


def handler(messages: Any, ctx: Any) -> None:
    return None


def test_a_trigger_on_an_undeclared_queue_declares_a_standard_one() -> None:
    app = squall.App("t")
    app.queue("emails", batch_size=100, batch_window_s=0.5, max_concurrency=3)(handler)
    manifest = app.manifest()
    assert manifest.queues == [QueueConfig(name="emails")]
    [trigger] = manifest.queue_triggers
    assert (trigger.function, trigger.batch_size, trigger.max_concurrency) == ("handler", 100, 3)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10001}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_window_s": 301}, "batch_window_s"),
        ({"batch_window_s": -1}, "batch_window_s"),
        ({"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_trigger_options_out_of_range_fail_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    app = squall.App("t")
    app.queue("emails", **options)(handler)
    with pytest.raises(ConfigError) as error:
        app.manifest()
    assert error.value.field == field
    assert error.value.details["function"] == "handler"
    assert repr(options[field]) in error.value.message


def test_a_fifo_batch_is_at_most_ten() -> None:
    app = squall.App("t")
    app.queue_resource("jobs.fifo", fifo=True)
    app.queue("jobs.fifo", batch_size=11)(handler)
    with pytest.raises(ConfigError) as error:
        app.manifest()
    assert error.value.field == "batch_size" and "1-10" in error.value.message


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"visibility_timeout_s": 43201}, "visibility_timeout_s"),
        ({"retention_s": 59}, "retention_s"),
        ({"delay_s": 901}, "delay_s"),
        ({"max_receive": 0}, "max_receive"),
        ({"dead_letter": "dlq"}, "max_receive"),
        ({"dead_letter": "emails", "max_receive": 3}, "dead_letter"),
        ({"content_based_dedup": True}, "content_based_dedup"),
        ({"fifo": "yes"}, "fifo"),
    ],
)
def test_queue_options_fail_naming_the_field(options: dict[str, Any], field: str) -> None:
    app = squall.App("t")
    with pytest.raises(ConfigError) as error:
        app.queue_resource("emails", **options)
    assert error.value.field == field and error.value.details["queue"] == "emails"


def test_dead_letter_queues_must_exist_and_match_in_kind() -> None:
    app = squall.App("t")
    app.queue_resource("emails", max_receive=3, dead_letter="missing")
    with pytest.raises(ConfigError) as error:
        app.manifest()
    assert error.value.field == "dead_letter" and "names no queue" in error.value.message

    app = squall.App("t")
    app.queue_resource("dlq")
    app.queue_resource("emails.fifo", fifo=True, max_receive=3, dead_letter="dlq")
    with pytest.raises(ConfigError) as error:
        app.manifest()
    assert error.value.field == "dead_letter" and "FIFO" in error.value.message


def test_bad_names_and_duplicates_are_refused() -> None:
    app = squall.App("t")
    with pytest.raises(ConfigError) as error:
        app.queue_resource("no spaces")
    assert error.value.field == "name"
    app.queue_resource("emails")
    with pytest.raises(ConfigError):
        app.queue_resource("emails")


def test_send_is_a_permission() -> None:
    app = squall.App("t")
    app.function(permissions=["send:emails"])(handler)
    app.manifest()
    app = squall.App("t")
    with pytest.raises(ConfigError):
        app.function(permissions=["mail:emails"])(handler)

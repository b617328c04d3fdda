"""Events: the CloudEvents HTTP binding (and, later, buses, rules and targets)."""

from squall.events.http_binding import parse_request, to_batch, to_binary, to_structured
from squall.model.cloudevent import CloudEvent

__all__ = ["CloudEvent", "parse_request", "to_batch", "to_binary", "to_structured"]

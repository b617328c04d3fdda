"""Amazon States Language state machines, run as durable workflows (``app.state_machine``)."""

from squall.asl.definition import Machine, load

__all__ = ["Machine", "load"]

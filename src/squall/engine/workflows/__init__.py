"""Code workflows: durable runs replayed from their step checkpoints (see ``engine``)."""

from squall.engine.workflows.engine import QUEUE, Workflows, WorkflowSettings

__all__ = ["QUEUE", "WorkflowSettings", "Workflows"]

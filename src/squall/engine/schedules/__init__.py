"""Schedules: expressions, the scheduler loop and delayed work."""

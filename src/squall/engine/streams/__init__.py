"""Streams: partitioned logs, and the triggers that consume them shard by shard."""

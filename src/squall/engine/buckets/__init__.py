"""Buckets: object storage under the data dir, metadata in the store, events on the bus."""

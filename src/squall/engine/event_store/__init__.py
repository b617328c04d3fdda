"""The event store: streams per aggregate with optimistic concurrency, publishing of
appended events in the unit that stores them, and projections into read-model tables."""

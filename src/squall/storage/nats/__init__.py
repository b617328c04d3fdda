"""The distributed backend's event backbone on NATS JetStream (needs ``squall[cluster]``).

``JetStreamQueue`` carries deliveries on a work-queue stream; ``OutboxRelay`` moves the
deliveries a unit wrote to the state store's outbox onto it. Importing this package does
not import nats-py; opening a queue does, and names the extra when it is missing.
"""

from squall.storage.nats.connect import BrokerUnavailable, ConnectOptions
from squall.storage.nats.outbox import OutboxRelay
from squall.storage.nats.queue import JetStreamConfig, JetStreamQueue, LeasedDelivery, QueueSpec
from squall.storage.nats.redelivery import ack_finished

__all__ = [
    "BrokerUnavailable",
    "ConnectOptions",
    "JetStreamConfig",
    "JetStreamQueue",
    "LeasedDelivery",
    "OutboxRelay",
    "QueueSpec",
    "ack_finished",
]

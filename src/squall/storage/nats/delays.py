"""Deliveries that are not due yet wait on a stream of their own.

JetStream (before server 2.12) has no "deliver at". Parking a delayed delivery on its work
consumer with a nak(delay) would count the park as a delivery, so its attempts and the
consumer's ``max_deliver`` would be off by one. Instead a delayed publish goes to
``<prefix>.delay.<queue>`` on the DELAY stream; a mover reads that stream, naks each
delivery with the time it has left, and once it is due publishes it to its work subject
(with the msg id it was published with, so a mover that dies between publish and ack
cannot queue it twice, and a dedup key holds across the wait) and acks the parked copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec

from squall.storage.nats.cancelling import reraise_if_cancelled
from squall.storage.protocols import Delivery

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

log = logging.getLogger("squall.nats")

MOVER = "delays"
_unpack = msgspec.msgpack.Decoder(Delivery).decode

Forward = Callable[[Delivery, str], Awaitable[object]]  # the delivery, its Nats-Msg-Id


class DelayMover:
    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        forward: Forward,
        *,
        batch: int = 256,
        poll_s: float = 1.0,
    ) -> None:
        self._js = js
        self._stream = stream
        self._forward = forward
        self._batch = batch
        self._poll_s = poll_s

    async def run(self) -> None:
        sub = await self._js.pull_subscribe_bind(durable=MOVER, stream=self._stream)
        try:
            while True:
                try:
                    messages = await sub.fetch(self._batch, timeout=self._poll_s)
                except TimeoutError:  # asyncio's or nats-py's subclass of it
                    reraise_if_cancelled()
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # disconnected: nats-py reconnects, we wait
                    reraise_if_cancelled()
                    log.warning("delay mover: fetch failed: %r", exc)
                    await asyncio.sleep(self._poll_s)
                    continue
                now = time.time()
                for message in messages:
                    delivery = _unpack(message.data)
                    left = delivery.available_at - now
                    if left > 0.001:
                        await message.nak(delay=left)
                        continue
                    try:
                        msg_id = (message.headers or {}).get("Nats-Msg-Id", delivery.id)
                        await self._forward(delivery, msg_id)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        log.warning("delay mover: publishing %s failed: %s", delivery.id, exc)
                        with contextlib.suppress(Exception):  # else back after ack_wait
                            await message.nak(delay=self._poll_s)
                        continue
                    await message.ack()
        finally:
            await sub.unsubscribe()

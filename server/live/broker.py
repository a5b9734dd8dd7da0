"""Meeting-event brokers: who hears that a meeting changed.

Two implementations with one interface:

- :class:`InProcessBroker` (no ``EVOTE_REDIS_URL``): listeners in this process only.
- :class:`RedisBroker`: every event is delivered to this worker's listeners at
  once and also published on Redis pub/sub, so every other worker's listeners
  hear it too.

Events are only hints ("meeting X changed"): live views recompute their
figures from the database, which is the truth.  So the broker may lose events
without harm as long as it says so: when the Redis subscription comes back
after an outage every listener is called with ``None`` ("resync"), and live
views then rebuild from the database.

Publishing never blocks or fails a vote: :meth:`RedisBroker.publish` only puts
the event on a bounded in-memory queue that a background task sends, each send
time-boxed; errors are logged (rate-limited) and swallowed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from server import appkeys

log = logging.getLogger("evote.broker")

# A listener gets the event dict, or None meaning "events may have been lost: resync".
Listener = Callable[[dict | None], None]

CHANNEL_PATTERN = "evote:meeting:*"


class Subscription:
    """Handle returned by ``subscribe``; ``close()`` stops delivery."""

    __slots__ = ("_broker", "channel", "listener")

    def __init__(self, broker: Broker, channel: str, listener: Listener) -> None:
        self._broker, self.channel, self.listener = broker, channel, listener

    def close(self) -> None:
        self._broker._unsubscribe(self)


class Broker:
    """Local fan-out shared by both brokers: channel -> listeners of this process."""

    kind = "abstract"

    def __init__(self) -> None:
        self._listeners: dict[str, set[Subscription]] = {}

    def subscribe(self, channel: str, listener: Listener) -> Subscription:
        sub = Subscription(self, channel, listener)
        self._listeners.setdefault(channel, set()).add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._listeners.get(sub.channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._listeners[sub.channel]

    def _deliver(self, channel: str, event: dict | None) -> None:
        for sub in list(self._listeners.get(channel, ())):
            try:
                sub.listener(event)
            except Exception:  # one broken listener must not stop the others
                log.exception("live listener failed on %s", channel)

    def _deliver_all(self, event: dict | None) -> None:
        for channel in list(self._listeners):
            self._deliver(channel, event)

    @property
    def healthy(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def publish(self, channel: str, event: dict) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        self._listeners.clear()


class InProcessBroker(Broker):
    """Every listener lives in this process (single worker, or no Redis)."""

    kind = "in-process"

    async def publish(self, channel: str, event: dict) -> None:
        self._deliver(channel, event)


class RedisBroker(Broker):
    """Redis pub/sub across workers, local delivery first, resync after outages."""

    kind = "redis"

    def __init__(self, url: str, *, publish_timeout_s: float = 0.5, queue_size: int = 10_000,
                 backoff_max_s: float = 0.25) -> None:
        super().__init__()
        import redis.asyncio as redis

        self.url = url
        self.origin = secrets.token_hex(8)  # to skip our own echoes
        self.publish_timeout_s = publish_timeout_s
        self.backoff_max_s = backoff_max_s
        self._redis_mod = redis
        self._pub = redis.Redis.from_url(url, socket_timeout=publish_timeout_s, socket_connect_timeout=1.0,
                                         socket_keepalive=True, retry_on_timeout=False)
        self._sub = redis.Redis.from_url(url, socket_timeout=None, socket_connect_timeout=1.0,
                                         socket_keepalive=True, retry_on_timeout=False)
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=queue_size)
        self._tasks: list[asyncio.Task] = []
        self._connected = False
        self._last_error_log = 0.0
        self.dropped = 0  # events not sent to Redis (outage or full queue)
        self.resyncs = 0  # times listeners were told to resync

    @property
    def healthy(self) -> bool:
        return self._connected

    async def ping(self) -> None:
        await asyncio.wait_for(self._pub.ping(), timeout=2.0)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_loop(), name="evote-broker-send"),
                       loop.create_task(self._listen_loop(), name="evote-broker-listen")]

    async def publish(self, channel: str, event: dict) -> None:
        self._deliver(channel, event)
        payload = json.dumps({"origin": self.origin, "channel": channel, "event": event},
                             ensure_ascii=False, default=str).encode()
        try:
            self._outbox.put_nowait((channel, payload))
        except asyncio.QueueFull:
            self.dropped += 1
            self._log_error("broker queue full; dropping an event (watchers will resync)")

    def _log_error(self, message: str, *args, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 5.0:  # an outage must not flood the log
            self._last_error_log = now
            log.warning(message, *args, exc_info=exc_info)

    async def _send_loop(self) -> None:
        while True:
            channel, payload = await self._outbox.get()
            try:
                await asyncio.wait_for(self._pub.publish(channel, payload), timeout=self.publish_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or slow: the database still has the vote
                self.dropped += 1
                self._log_error("could not publish to Redis (%s); watchers resync when it is back", exc)

    async def _listen_loop(self) -> None:
        backoff = 0.05
        first = True
        while True:
            pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(CHANNEL_PATTERN)
                self._connected = True
                backoff = 0.05
                if not first:
                    # Anything published while we were away is lost: rebuild from the database.
                    self.resyncs += 1
                    log.info("Redis subscription restored; live views resync")
                    self._deliver_all(None)
                first = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected:
                    log.warning("Redis subscription lost (%s); retrying", exc)
                self._connected = False
            finally:
                try:
                    await asyncio.wait_for(pubsub.aclose(), timeout=1.0)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    pass
            # At most a quarter of a second between tries (a refused connection costs nothing), so the
            # subscription and the resync follow Redis's return within about that: with 1 s, streams
            # waited up to 1.2 s for other workers' votes after a restart (docs/live.md).
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    def _on_message(self, message: dict) -> None:
        if message.get("type") != "pmessage":
            return
        try:
            data = json.loads(message["data"])
        except (TypeError, ValueError):
            return
        if not isinstance(data, dict) or data.get("origin") == self.origin:
            return  # our own event, already delivered locally
        channel = data.get("channel")
        event = data.get("event")
        if isinstance(channel, str) and isinstance(event, dict):
            self._deliver(channel, event)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        for client in (self._pub, self._sub):
            try:
                await client.aclose()
            except Exception:
                pass
        await super().close()


def make_broker(redis_url: str | None) -> Broker:
    if redis_url:
        return RedisBroker(redis_url)
    return InProcessBroker()


async def broker_ctx(app: web.Application):
    """cleanup_ctx: the broker chosen by ``settings.redis_url``, with a start-up PING."""
    settings = app[appkeys.SETTINGS]
    broker = make_broker(settings.redis_url)
    if isinstance(broker, RedisBroker):
        try:
            await broker.ping()
        except Exception as exc:
            await broker.close()
            raise RuntimeError(f"cannot reach Redis at the configured EVOTE_REDIS_URL: {exc}") from None
    await broker.start()
    app[appkeys.BROKER] = broker
    log.info("meeting-event broker ready (%s)", broker.kind)
    yield
    await broker.close()


def broker_status(app: web.Application) -> dict[str, Any]:
    broker = app.get(appkeys.BROKER)
    if broker is None:
        return {"kind": None, "healthy": False}
    return {"kind": broker.kind, "healthy": broker.healthy}

"""The streams of a live meeting: :class:`Watcher` (a bounded queue its handler drains) and
:class:`FrameWatcher` (the fan-out writes shared, already-framed bytes straight to its connection).
server.live.meeting publishes to both."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.live import frames

log = logging.getLogger("evote.live")

# What a watcher's queue carries: (event id, "snapshot" or "update", the document as JSON text).
QueueItem = tuple[str, str, str]


@dataclass(eq=False)
class Watcher:
    """One open stream; ``organiser`` when it may see live results regardless of the meeting flag.

    ``voter_id`` is the owner (voting subject) watching, who is shown only the matters they may
    vote on; None for staff and the public, who see every matter.
    """

    organiser: bool
    queue: asyncio.Queue[QueueItem | None]  # None: the stream ends
    on_drop: Callable[[], None] | None = None
    voter_id: str | None = None
    dropped: bool = False
    closed: bool = False

    def offer(self, item: QueueItem) -> bool:
        if self.dropped or self.closed:
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            # A slow client: drop it rather than buffer without bound or slow the others.
            self.dropped = True
            if self.on_drop is not None:
                try:
                    self.on_drop()
                except Exception:
                    log.debug("closing a dropped watcher failed", exc_info=True)
            return False

    def close(self) -> None:
        self.closed = True
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            if self.on_drop is not None:
                self.on_drop()


# What a FrameWatcher's connection may hold unsent beyond its ``max_frames`` frames: the transport's
# high-water mark, which a queued stream's handler also filled before it waited (drain).
WRITE_SLACK = 64 * 1024


class FrameWatcher:
    """One open stream whose frames the fan-out writes straight to its connection's transport.

    The refresh that publishes a document writes the shared, already-framed bytes
    (server.live.frames) to every such watcher in one pass: no task wakes per watcher and update.
    Back-pressure is the bounded queue's: a watcher whose connection still holds more than
    ``max_frames`` frames (plus the transport's usual high-water mark) unsent is dropped (its
    connection aborted); writes never wait, so a slow watcher never holds up the others, and
    what it can hold is bounded.  The stream's handler only waits for :attr:`ended` (the
    client left, the watcher was dropped or closed) and sends heartbeats while nothing is written.
    """

    __slots__ = (
        "closed",
        "dropped",
        "ended",
        "framing",
        "last_write",
        "max_frames",
        "on_drop",
        "organiser",
        "transport",
        "voter_id",
    )

    def __init__(self, *, organiser: bool, framing: str, transport: asyncio.WriteTransport,
                 max_frames: int, on_drop: Callable[[], None] | None = None, voter_id: str | None = None) -> None:
        self.organiser = organiser
        self.voter_id = voter_id
        self.framing = framing
        self.transport = transport
        self.max_frames = max_frames
        self.on_drop = on_drop
        self.dropped = False
        self.closed = False
        self.last_write = time.monotonic()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def write(self, frame: bytes) -> bool:
        """Send ``frame`` (shared bytes) now; False when the stream is over or was dropped for being slow."""
        if self.dropped or self.closed:
            return False
        transport = self.transport
        if transport.is_closing():
            self.close()  # the client left
            return False
        try:
            if transport.get_write_buffer_size() > self.max_frames * len(frame) + WRITE_SLACK:
                self._drop()
                return False
            transport.write(frame)
        except (OSError, RuntimeError):
            # a connection that failed under us: this stream ends, the fan-out goes on to the others
            self.close()
            return False
        self.last_write = time.monotonic()
        return True

    def offer(self, item: QueueItem) -> bool:
        """Send one event framed for this stream alone (a snapshot on connect, a replayed event)."""
        event_id, kind, text = item
        return self.write(frames.encode(self.framing, event_id, kind, text))

    def heartbeat(self) -> None:
        """Send a heartbeat, unless bytes are still waiting to go out (the connection is not idle)."""
        transport = self.transport
        if self.dropped or self.closed or transport.is_closing():
            self.close()
            return
        try:
            if transport.get_write_buffer_size() == 0:
                transport.write(frames.heartbeat(self.framing))
        except (OSError, RuntimeError):
            self.close()
            return
        self.last_write = time.monotonic()

    def _drop(self) -> None:
        # A slow client: drop it rather than buffer without bound or slow the others.
        self.dropped = True
        self._end()
        if self.on_drop is not None:
            try:
                self.on_drop()
            except Exception:
                log.debug("closing a dropped watcher failed", exc_info=True)

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)

    def close(self) -> None:
        self.closed = True
        self._end()


AnyWatcher = Watcher | FrameWatcher

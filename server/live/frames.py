"""A published document as the bytes a stream's connection carries, built once and shared.

A fan-out writes these bytes straight to every watcher's transport (server.live.meeting,
:class:`~server.live.watchers.FrameWatcher`): no task wakes per watcher and update, nothing is
encoded per watcher.  Three framings:

- ``SSE``: an event (``id``/``event``/``data`` lines) as the body bytes of a response that is not
  chunked (an HTTP/1.0 client: the body ends with the connection);
- ``SSE_CHUNKED``: the same event as one HTTP/1.1 chunk (``<hex length>\\r\\n<event>\\r\\n``), exactly
  what aiohttp's response writer sends for ``resp.write(event)``;
- ``WS``: one unmasked, uncompressed WebSocket text frame (RFC 6455 section 5.2), what aiohttp's
  ``send_str`` sends on a connection without permessage-deflate.
"""
from __future__ import annotations

import struct

SSE = "sse"
SSE_CHUNKED = "sse-chunked"
WS = "ws"
FRAMINGS = (SSE, SSE_CHUNKED, WS)

_WS_TEXT = 0x81  # FIN + text opcode


def ws_frame(payload: bytes) -> bytes:
    """An unmasked WebSocket text frame carrying ``payload`` (UTF-8 text)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", _WS_TEXT, n)
    elif n < 65536:
        header = struct.pack("!BBH", _WS_TEXT, 126, n)
    else:
        header = struct.pack("!BBQ", _WS_TEXT, 127, n)
    return header + payload


def chunk(body: bytes) -> bytes:
    """``body`` as one chunk of a chunked HTTP/1.1 body."""
    return b"%x\r\n%b\r\n" % (len(body), body)


def sse_event(event_id: str, kind: str, text: str) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {text}\n\n".encode()


def encode(framing: str, event_id: str, kind: str, text: str) -> bytes:
    """A document's JSON ``text`` (event ``event_id``, ``kind`` snapshot or update) framed for a stream."""
    if framing == WS:
        return ws_frame(text.encode())
    body = sse_event(event_id, kind, text)
    return chunk(body) if framing == SSE_CHUNKED else body


SSE_HEARTBEAT = b": heartbeat\n\n"
WS_HEARTBEAT = '{"type":"heartbeat"}'


def _heartbeat(framing: str) -> bytes:
    if framing == WS:
        return ws_frame(WS_HEARTBEAT.encode())
    return chunk(SSE_HEARTBEAT) if framing == SSE_CHUNKED else SSE_HEARTBEAT


_HEARTBEATS = {framing: _heartbeat(framing) for framing in FRAMINGS}


def heartbeat(framing: str) -> bytes:
    """What a stream sends while nothing happens: an SSE comment, or a JSON message on a WebSocket."""
    return _HEARTBEATS[framing]

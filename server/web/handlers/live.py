"""Live figures of a meeting: JSON snapshots, SSE and WebSocket streams, the dashboard page.

Visibility: organisers of the community (district_admin, street_admin,
prep_group, committee) see live results; everyone else (auditors, owners, the
public) sees turnout only, unless the meeting has ``show_live_results``.  An owner's
stream leaves out the matters scoped to buildings where the owner holds no counted
unit; staff and the public see every matter, with its scope.

Endpoints:

- GET /api/admin/communities/{cid}/meetings/{mid}/live          JSON snapshot (staff)
- GET /api/admin/communities/{cid}/meetings/{mid}/live/stream   SSE (staff; ``?access_token=`` allowed)
- GET /api/admin/communities/{cid}/meetings/{mid}/live/ws       WebSocket (staff; ``?access_token=`` allowed)
- GET /api/ballot/live/ws                                       WebSocket (owners; ``?token=`` or first message)
- GET /api/public/meetings/{cid}/{mid}/turnout                  JSON, or SSE with ``Accept: text/event-stream``
- GET /dashboard/{cid}/{mid}                                    the preparatory group's dashboard page
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from aiohttp import HttpVersion11, WSMsgType, web
from multidict import CIMultiDict

from server import appkeys
from server.auth.ballot import require_ballot
from server.auth.staff import require_staff
from server.errors import ApiError, BadRequest, Unauthorized
from server.live import frames
from server.live.hub import LiveHub
from server.live.meeting import LiveMeeting
from server.live.watchers import FrameWatcher, Watcher
from server.web.handlers.common import json_response

log = logging.getLogger("evote.handlers.live")

ORGANISER_ROLES = frozenset({"district_admin", "street_admin", "prep_group", "committee"})
DASHBOARD_STATIC = Path(__file__).resolve().parent.parent / "static" / "dashboard"
MAX_EVENT_ID = 64


def _hub(request: web.Request) -> LiveHub:
    return request.app[appkeys.LIVE]


def _with_bearer(request: web.Request, token: str) -> web.Request:
    headers = CIMultiDict(request.headers)
    headers["Authorization"] = f"Bearer {token}"
    return request.clone(headers=headers)


async def _staff(request: web.Request, *, allow_query_token: bool) -> bool:
    """Check the staff member may see this community; returns whether they are an organiser."""
    cid = request.match_info["cid"]
    if allow_query_token and "Authorization" not in request.headers:
        # EventSource cannot set headers: the token may come in the query (stream endpoints only).
        token = request.query.get("access_token", "")
        if token:
            request = _with_bearer(request, token)
    principal = await require_staff(request, community_id=cid)
    return principal.role in ORGANISER_ROLES


def _last_event_id(request: web.Request) -> str | None:
    value = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or None
    if value is not None and len(value) > MAX_EVENT_ID:
        return None
    return value


class _EncodedFrames:
    """Each published document encoded once, not once per watcher (2,000 watchers x 20 KiB each).

    Keyed by the identity of the document text every watcher's queue shares; the text is kept in
    the entry, so an id cannot be reused while its entry lives.  A few recent events suffice.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.entries: dict[tuple[int, str], tuple[str, bytes]] = {}

    def get(self, kind: str, data: str, build) -> bytes:
        key = (id(data), kind)
        entry = self.entries.get(key)
        if entry is not None and entry[0] is data:
            return entry[1]
        frame = build()
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = (data, frame)
        return frame


_FRAMES = _EncodedFrames()


async def _next_item(queue: asyncio.Queue, timeout: float):
    """The next queued item, or raise TimeoutError after ``timeout`` (heartbeat time).

    ``asyncio.timeout`` rather than ``wait_for``: no extra task per message (8 % of the server's
    time with 2,000 watchers).
    """
    if not queue.empty():
        return queue.get_nowait()
    async with asyncio.timeout(timeout):
        return await queue.get()


async def _until_ended(watcher: FrameWatcher, heartbeat_s: float) -> None:
    """Wait while the fan-out writes to ``watcher``'s connection; a heartbeat after ``heartbeat_s``
    with nothing written.  One timer per heartbeat period, nothing per update."""
    while not watcher.ended.done():
        wait = watcher.last_write + heartbeat_s - time.monotonic()
        if wait <= 0:
            watcher.heartbeat()
        else:
            await asyncio.wait((watcher.ended,), timeout=wait)


def _abort_transport(request: web.Request):
    def abort() -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()
    return abort


# --------------------------------------------------------------------------
# JSON snapshots
# --------------------------------------------------------------------------


async def admin_live(request: web.Request) -> web.Response:
    organiser = await _staff(request, allow_query_token=False)
    live = await _hub(request).meeting(request.match_info["cid"], request.match_info["mid"], fresh=True)
    return json_response(live.document(organiser), headers={"Cache-Control": "no-store"})


async def public_turnout(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    live = await hub.meeting(request.match_info["cid"], request.match_info["mid"], fresh=True)
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _sse(request, live, organiser=False)
    return json_response(live.document(False), headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------
# Server-sent events
# --------------------------------------------------------------------------


async def admin_stream(request: web.Request) -> web.StreamResponse:
    organiser = await _staff(request, allow_query_token=True)
    live = await _hub(request).meeting(request.match_info["cid"], request.match_info["mid"])
    return await _sse(request, live, organiser=organiser)


def _sse_framing(request: web.Request, resp: web.StreamResponse) -> str | None:
    """How the fan-out writes this prepared SSE response's events itself (None: the handler writes them)."""
    if request.method != "GET" or resp.compression or request.transport is None:
        return None
    if resp.headers.get("Transfer-Encoding", "").lower() == "chunked":
        return frames.SSE_CHUNKED
    if request.version < HttpVersion11:
        return frames.SSE  # not chunked: the body ends with the connection
    return None


async def _sse(request: web.Request, live: LiveMeeting, *, organiser: bool) -> web.StreamResponse:
    hub = _hub(request)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # no proxy buffering
    })
    await resp.prepare(request)
    framing = _sse_framing(request, resp)
    transport = request.transport
    if framing is None or transport is None:
        return await _sse_queued(request, resp, live, organiser=organiser)
    try:
        await resp.write(b"retry: 2000\n\n")  # with the headers, before the fan-out writes frames after them
    except (ConnectionError, RuntimeError):
        return resp
    watcher = hub.frame_watcher(organiser=organiser, framing=framing, transport=transport,
                                on_drop=_abort_transport(request))
    await live.attach(watcher, _last_event_id(request))
    try:
        await _until_ended(watcher, hub.heartbeat_s)
    except asyncio.CancelledError:
        pass
    finally:
        live.detach(watcher)
    return resp


async def _sse_queued(request: web.Request, resp: web.StreamResponse, live: LiveMeeting, *,
                      organiser: bool) -> web.StreamResponse:
    """The SSE stream of a response the fan-out cannot write to itself (compressed, HEAD): a queue."""
    hub = _hub(request)
    watcher = hub.new_watcher(organiser=organiser, on_drop=_abort_transport(request))
    await live.attach(watcher, _last_event_id(request))
    try:
        await resp.write(b"retry: 2000\n\n")
        while True:
            try:
                item = await _next_item(watcher.queue, hub.heartbeat_s)
            except TimeoutError:
                await resp.write(b": heartbeat\n\n")
                continue
            if item is None or watcher.dropped:
                break
            event_id, kind, data = item
            # the frame builder runs at once, inside this iteration
            await resp.write(_FRAMES.get(f"sse:{event_id}:{kind}", data, lambda: (
                f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode())))  # noqa: B023
    except (ConnectionError, RuntimeError, asyncio.CancelledError):
        pass  # the client went away (or was dropped for being slow)
    finally:
        live.detach(watcher)
    return resp


# --------------------------------------------------------------------------
# WebSockets (the mini program has no EventSource)
# --------------------------------------------------------------------------


async def admin_ws(request: web.Request) -> web.StreamResponse:
    organiser = await _staff(request, allow_query_token=True)
    live = await _hub(request).meeting(request.match_info["cid"], request.match_info["mid"])
    ws = web.WebSocketResponse(heartbeat=_hub(request).heartbeat_s, max_msg_size=4096)
    await ws.prepare(request)
    return await _ws_stream(request, ws, live, organiser=organiser, last_event_id=_last_event_id(request))


async def ballot_ws(request: web.Request) -> web.StreamResponse:
    """Owners: the ballot token as ``?token=`` or in the first message ``{"token": ..., "last_event_id": ...}``."""
    hub = _hub(request)
    last_event_id = _last_event_id(request)
    token = request.query.get("token", "")
    principal = await require_ballot(_with_bearer(request, token)) if token else None
    ws = web.WebSocketResponse(heartbeat=hub.heartbeat_s, max_msg_size=4096)
    await ws.prepare(request)
    try:
        if principal is None:
            try:
                msg = await ws.receive(timeout=10)
            except TimeoutError:
                raise Unauthorized("请先扫描选票二维码并确认身份", code="ballot_login_required") from None
            if msg.type != WSMsgType.TEXT:
                raise Unauthorized("请先扫描选票二维码并确认身份", code="ballot_login_required")
            try:
                first = json.loads(msg.data)
            except ValueError:
                raise BadRequest("请求内容不是有效的 JSON", code="invalid_json") from None
            if not isinstance(first, dict) or not isinstance(first.get("token"), str):
                raise Unauthorized("请先扫描选票二维码并确认身份", code="ballot_login_required")
            principal = await require_ballot(_with_bearer(request, first["token"]))
            if isinstance(first.get("last_event_id"), str) and len(first["last_event_id"]) <= MAX_EVENT_ID:
                last_event_id = first["last_event_id"]
        live = await hub.meeting(principal.community_id, principal.meeting_id)
    except ApiError as exc:
        await ws.send_str(json.dumps({"type": "error", **exc.envelope()["error"]}, ensure_ascii=False))
        await ws.close(code=4000 + exc.status, message=exc.code.encode()[:100])
        return ws
    return await _ws_stream(request, ws, live, organiser=False, last_event_id=last_event_id,
                            voter_id=principal.voter_id)


async def _ws_stream(request: web.Request, ws: web.WebSocketResponse, live: LiveMeeting, *,
                     organiser: bool, last_event_id: str | None, voter_id: str | None = None) -> web.WebSocketResponse:
    """Stream ``live`` over ``ws``; an owner's (``voter_id``) shows only the matters they may vote on.

    Without permessage-deflate the fan-out writes the shared frames to the connection itself; a
    compressed connection compresses each message with its own context, so its handler sends them.
    """
    hub = _hub(request)
    transport = request.transport
    if ws.compress or transport is None:
        return await _ws_queued(request, ws, live, organiser=organiser, last_event_id=last_event_id,
                                voter_id=voter_id)
    watcher = hub.frame_watcher(organiser=organiser, framing=frames.WS, transport=transport,
                                on_drop=_abort_transport(request), voter_id=voter_id)
    await live.attach(watcher, last_event_id)

    reader = asyncio.get_running_loop().create_task(_answer_pings(ws, watcher))
    try:
        await _until_ended(watcher, hub.heartbeat_s)
    except asyncio.CancelledError:
        pass
    finally:
        await _end_ws(ws, live, watcher, reader)
    return ws


async def _end_ws(ws: web.WebSocketResponse, live: LiveMeeting, watcher: Watcher | FrameWatcher,
                  reader: asyncio.Task[None]) -> None:
    """An owner's socket is over: no more updates, no more reading, the socket closed."""
    live.detach(watcher)
    reader.cancel()
    if not ws.closed:
        await ws.close()


async def _answer_pings(ws: web.WebSocketResponse, watcher: Watcher | FrameWatcher) -> None:
    """Read the owner's socket until it closes, answering "ping"; then the stream ends."""
    async for msg in ws:
        if msg.type == WSMsgType.TEXT and msg.data == "ping":
            await ws.send_str('{"type":"pong"}')
    watcher.close()


async def _ws_queued(request: web.Request, ws: web.WebSocketResponse, live: LiveMeeting, *,
                     organiser: bool, last_event_id: str | None, voter_id: str | None = None) -> web.WebSocketResponse:
    hub = _hub(request)
    watcher: Watcher = hub.new_watcher(organiser=organiser, on_drop=_abort_transport(request), voter_id=voter_id)
    await live.attach(watcher, last_event_id)

    reader = asyncio.get_running_loop().create_task(_answer_pings(ws, watcher))
    try:
        while not ws.closed:
            try:
                item = await _next_item(watcher.queue, hub.heartbeat_s)
            except TimeoutError:
                await ws.send_str('{"type":"heartbeat"}')
                continue
            if item is None or watcher.dropped:
                break
            data = item[2]
            await ws.send_frame(_FRAMES.get("ws", data, lambda: data.encode("utf-8")),  # noqa: B023 (runs at once)
                                WSMsgType.TEXT)
    except (ConnectionError, RuntimeError, asyncio.CancelledError):
        pass
    finally:
        await _end_ws(ws, live, watcher, reader)
    return ws


# --------------------------------------------------------------------------
# The dashboard page
# --------------------------------------------------------------------------


async def dashboard_page(request: web.Request) -> web.FileResponse:
    # The page itself holds no data: it logs in (or takes a token from the URL fragment) and streams.
    return web.FileResponse(DASHBOARD_STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _on_shutdown(app: web.Application) -> None:
    hub = app.get(appkeys.LIVE)
    if hub is not None:
        hub.stop_watchers()


def setup(app: web.Application) -> None:
    base = "/api/admin/communities/{cid}/meetings/{mid}/live"
    app.router.add_get(base, admin_live)
    app.router.add_get(base + "/stream", admin_stream)
    app.router.add_get(base + "/ws", admin_ws)
    app.router.add_get("/api/ballot/live/ws", ballot_ws)
    app.router.add_get("/api/public/meetings/{cid}/{mid}/turnout", public_turnout)
    app.router.add_get("/dashboard/{cid}/{mid}", dashboard_page)
    app.router.add_static("/static/dashboard/", DASHBOARD_STATIC, append_version=False)
    app.on_shutdown.append(_on_shutdown)

/* Live updates on the owner page over a WebSocket (GET /api/ballot/live/ws), in every browser and in
 * particular inside WeChat's built-in browser, where EventSource is unreliable.  The ballot token
 * goes in the first message (never in the address); documents are whole (docs/live.md), so after a
 * reconnect the latest one is all the page needs.  Without WebSocket, the page asks for the
 * meeting's state once a minute instead. */
(function () {
  "use strict";
  var O = window.evoteOwner;
  O.inWeChat = /MicroMessenger/i.test(navigator.userAgent || "");

  var socket = null, handler = null, stopped = true, delay = 1000, lastEventId = null, timer = null;

  function connect() {
    if (stopped || !O.state.token) return;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/ballot/live/ws";
    try { socket = new WebSocket(url); } catch (e) { return poll(); }
    socket.onopen = function () {
      delay = 1000;
      var first = { token: O.state.token };
      if (lastEventId) first.last_event_id = lastEventId;
      socket.send(JSON.stringify(first));
    };
    socket.onmessage = function (ev) {
      var doc;
      try { doc = JSON.parse(ev.data); } catch (e) { return; }
      if (doc.type === "snapshot" || doc.type === "update") {
        lastEventId = doc.event_id || lastEventId;
        if (handler) handler(doc);
      }
    };
    socket.onclose = function (ev) {
      socket = null;
      // 4000 + HTTP status: the token was refused (expired, revoked); the page signs in again itself.
      if (stopped || (ev.code >= 4400 && ev.code < 4500)) return;
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  function poll() {
    if (stopped) return;
    O.api("GET", "/api/ballot/meeting").then(function (m) {
      if (handler) handler({ type: "poll", state: m.state, voting_ended: ["noticed", "open"].indexOf(m.state) < 0 });
    }).catch(function () { /* next time */ }).then(function () { timer = setTimeout(poll, 60000); });
  }

  O.startLive = function (onDocument) {
    handler = onDocument;
    if (!stopped) return;
    stopped = false;
    if (window.WebSocket) connect(); else timer = setTimeout(poll, 60000);
  };
  O.stopLive = function () {
    stopped = true; handler = null;
    if (timer) clearTimeout(timer);
    if (socket) { try { socket.close(); } catch (e) { /* already closed */ } socket = null; }
  };
})();

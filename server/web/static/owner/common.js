/* Shared by the owner page's scripts (app.js, receipts.js, live.js): building elements, calling the
 * API with the ballot token, storage, and times in Beijing time.  Plain script, no build step. */
(function () {
  "use strict";

  var O = window.evoteOwner = {};
  O.app = document.getElementById("app");
  O.titleEl = document.getElementById("meeting-title");
  O.code = decodeURIComponent((location.pathname.match(/^\/b\/([^/?#]*)/) || [])[1] || "").trim();
  O.state = { token: null, meeting: null, status: null, answers: {}, idempotencyKey: null };

  O.el = function (tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child == null) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  };
  O.show = function () {
    O.app.textContent = "";
    for (var i = 0; i < arguments.length; i++) if (arguments[i]) O.app.appendChild(arguments[i]);
    window.scrollTo(0, 0);
  };
  O.randomId = function () {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  };
  O.store = function (kind) { try { return window[kind]; } catch (e) { return null; } };

  function ApiError(status, body) {
    var e = (body && body.error) || {};
    this.status = status; this.code = e.code || "network"; this.fields = e.fields || {};
    this.message = e.message || "网络不太顺畅，请稍后再试";
  }
  O.api = function (method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (O.state.token) headers["Authorization"] = "Bearer " + O.state.token;
    return fetch(path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
                         cache: "no-store", referrerPolicy: "no-referrer" })
      .catch(function () { throw new ApiError(0, null); })
      .then(function (resp) {
        return resp.json().catch(function () { return null; }).then(function (data) {
          if (!resp.ok) throw new ApiError(resp.status, data);
          return data;
        });
      });
  };
  O.errorBox = function (err) {
    return O.el("p", { class: "error", role: "alert", text: err.message || String(err) });
  };

  // Times people read are Beijing time, whatever the phone's time zone: "2026年12月1日 09:00".
  O.beijingTime = function (iso, withYear) {
    if (!iso) return "";
    var d = new Date(new Date(iso).getTime() + 8 * 3600 * 1000);
    function two(n) { return ("0" + n).slice(-2); }
    return (withYear === false ? "" : d.getUTCFullYear() + "年") + (d.getUTCMonth() + 1) + "月" + d.getUTCDate() + "日 " +
      two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
  };
  // "2026年12月1日 09:00 至 12月16日 18:00（北京时间）"
  O.period = function (opens, closes) {
    if (!opens && !closes) return "";
    var sameYear = opens && closes && O.beijingTime(opens).slice(0, 5) === O.beijingTime(closes).slice(0, 5);
    return (opens ? O.beijingTime(opens) : "") + " 至 " + (closes ? O.beijingTime(closes, !sameYear) : "另行通知") +
      "（北京时间）";
  };

  O.resultsPath = function (cid, mid) { return "/r/" + encodeURIComponent(cid) + "/" + encodeURIComponent(mid); };
  O.publicBase = function (cid, mid) {
    return "/api/public/meetings/" + encodeURIComponent(cid) + "/" + encodeURIComponent(mid);
  };
  O.titleOf = function (matterId) {
    var m = (O.state.meeting && O.state.meeting.matters || []).filter(function (x) { return x.matter_id === matterId; })[0];
    return m ? m.title : "";
  };
})();

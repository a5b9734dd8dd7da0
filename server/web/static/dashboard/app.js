// 业主大会表决实时看板 — plain JS, no build step.
// Gets a staff token (URL fragment #token=..., this tab's sessionStorage, or the login form),
// then follows the live stream (server-sent events).  EventSource reconnects by itself and
// sends Last-Event-ID, so the server replays what was missed or sends a fresh snapshot.
(function () {
  "use strict";

  var parts = location.pathname.split("/").filter(Boolean); // ["dashboard", cid, mid]
  var cid = decodeURIComponent(parts[1] || "");
  var mid = decodeURIComponent(parts[2] || "");
  var base = "/api/admin/communities/" + encodeURIComponent(cid) + "/meetings/" + encodeURIComponent(mid) + "/live";
  var storeKey = "evote.staffToken";
  var source = null;
  var lastDoc = null;

  var STATE_NAMES = { draft: "草稿", noticed: "已公告，未开始投票", open: "投票中", closed: "投票已结束", published: "结果已公布",
                      voided: "会议已作废" };
  var VOTING_STATES = { draft: true, noticed: true, open: true };

  // Legal times in Beijing time (UTC+8 all year), whatever the browser's time zone.
  function beijingTime(iso, clockOnly) {
    var d = new Date(new Date(iso).getTime() + 8 * 3600 * 1000);
    function two(n) { return ("0" + n).slice(-2); }
    var clock = two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
    if (clockOnly) return clock + ":" + two(d.getUTCSeconds()) + "（北京时间）";
    return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) + " " + clock + "（北京时间）";
  }

  // Voting is over (closed, published, voided): the page says so instead of "live".
  function ended(doc) {
    if (!doc) return false;
    return doc.voting_ended != null ? !!doc.voting_ended : !VOTING_STATES[doc.state];
  }

  function $(id) { return document.getElementById(id); }

  // Build elements with text only (never innerHTML with data).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "cls") node.className = attrs[k];
        else if (k === "style") node.setAttribute("style", attrs[k]);
        else node.setAttribute(k, attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child == null) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // The stream delivers: "live" while voting goes on, "ended" once it is over.
  function setReceiving() {
    if (ended(lastDoc)) setConnection("ended", "投票已结束");
    else setConnection("live", "实时更新中");
  }

  function setConnection(state, text) {
    var box = $("connection");
    box.dataset.state = state;
    box.className = "conn conn-" + state;
    $("connection-text").textContent = text;
  }

  // ---- token -------------------------------------------------------------

  function takeToken() {
    var m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(storeKey, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search); // keep the token out of history
    }
    return sessionStorage.getItem(storeKey);
  }

  function showLogin(message) {
    if (source) { source.close(); source = null; }
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setConnection("off", "未登录");
  }

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target;
    fetch("/api/staff/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value })
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
    }).then(function (r) {
      if (!r.ok) { $("login-error").textContent = (r.body.error && r.body.error.message) || "登录失败"; return; }
      sessionStorage.setItem(storeKey, r.body.token);
      $("login").hidden = true;
      start();
    }).catch(function () { $("login-error").textContent = "网络错误，请稍后再试"; });
  });

  // ---- stream ------------------------------------------------------------

  function start() {
    var token = takeToken();
    if (!token) { showLogin(); return; }
    // Check the token (and that this account may see the meeting) once with a normal request.
    fetch(base, { headers: { Authorization: "Bearer " + token } }).then(function (resp) {
      return resp.json().then(function (body) { return { status: resp.status, body: body }; });
    }).then(function (r) {
      if (r.status === 401) { sessionStorage.removeItem(storeKey); showLogin(r.body.error.message); return; }
      if (r.status !== 200) { setConnection("off", (r.body.error && r.body.error.message) || "无法读取"); return; }
      render(r.body);
      connect(token);
    }).catch(function () { setConnection("off", "网络错误"); setTimeout(start, 3000); });
  }

  function connect(token) {
    if (source) source.close();
    setConnection("wait", "正在连接…");
    source = new EventSource(base + "/stream?access_token=" + encodeURIComponent(token));
    source.onopen = setReceiving;
    var onData = function (ev) {
      try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); }
      setReceiving();
    };
    source.addEventListener("snapshot", onData);
    source.addEventListener("update", onData);
    source.onerror = function () {
      var over = ended(lastDoc) ? "投票已结束；" : "";
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. the login expired): check again shortly.
        setConnection("off", over + "连接已断开，正在重试…");
        setTimeout(start, 3000);
      } else {
        setConnection("wait", over + "连接中断，正在重连…");
      }
    };
  }

  // ---- rendering ---------------------------------------------------------

  function setGauge(id, share, met, detail, need) {
    var fig = $(id);
    var pct = Math.max(0, Math.min(100, parseFloat(share)));
    fig.querySelector(".fill").style.strokeDasharray = pct + " 100";
    fig.querySelector(".pct").textContent = share;
    fig.classList.toggle("met", met);
    fig.querySelector(".detail").textContent = detail;
    fig.querySelector(".need").textContent = need;
    var line = fig.querySelector(".line23"); // the 2/3 line: 120° along the half circle
    line.setAttribute("x1", "132"); line.setAttribute("y1", "44.57");
    line.setAttribute("x2", "148"); line.setAttribute("y2", "16.86");
  }

  function bar(share, thresholdPct, label) {
    var pct = Math.max(0, Math.min(100, parseFloat(share)));
    return el("div", { cls: "bar", title: label },
      el("div", { cls: "bar-fill", style: "width:" + pct + "%" }),
      thresholdPct != null ? el("div", { cls: "bar-line", style: "left:" + thresholdPct + "%" }) : null,
      el("span", { cls: "bar-text", text: label }));
  }

  function statusClass(outcome) {
    return { passed: "ok", elected: "ok", failed: "bad", no_quorum: "warn" }[outcome] || "warn";
  }

  function electorateText(m) {
    var who = m.scope_text ? m.scope_text + "的业主" : "全体业主";
    return "表决范围：" + who + "，共 " + m.electorate.persons + " 户 / " + m.electorate.area + " m²";
  }

  function matterCard(m, doc) {
    var provisional = !ended(doc);
    var card = el("article", { cls: "matter" + (m.scope_text ? " scoped" : ""), "data-matter": m.id });
    var head = el("div", { cls: "matter-head" },
      el("h3", null, m.id + "　" + m.title,
        m.scope_text ? el("span", { cls: "scope", "data-testid": "scope-" + m.id, text: m.scope_text }) : null),
      m.status_text ? el("span", { cls: "badge " + statusClass(m.outcome), "data-testid": "status-" + m.id,
        text: (provisional ? "目前：" : "") + m.status_text }) : null);
    card.appendChild(head);
    card.appendChild(el("p", { cls: "muted", "data-testid": "electorate-" + m.id, text: electorateText(m) }));
    card.appendChild(el("p", { cls: "muted", text: "参与：" + m.participating.persons + " 户 / " + m.participating.area +
      " m²（" + m.participating_share.persons + "% / " + m.participating_share.area + "%）" +
      (m.quorum_met ? "，已达 2/3" : "，" + m.quorum_shortfall.text) }));
    if (!m.status_text) return card; // turnout-only view
    var thresholdPct = m.threshold_percent;
    if (m.kind === "resolution") {
      card.appendChild(el("div", { cls: "axis" }, el("span", { text: "赞成（人数）" }),
        bar(m.yes_share.persons, thresholdPct, m.yes.persons + " 户，占参与 " + m.yes_share.persons + "%")));
      card.appendChild(el("div", { cls: "axis" }, el("span", { text: "赞成（面积）" }),
        bar(m.yes_share.area, thresholdPct, m.yes.area + " m²，占参与 " + m.yes_share.area + "%")));
      card.appendChild(el("p", { cls: "figures", "data-testid": "figures-" + m.id, text: "赞成 " + m.yes.persons +
        " 户 · 反对 " + m.no.persons + " 户 · 弃权 " + m.abstain.persons + " 户 · 无效票 " + m.invalid.persons +
        " 户（" + m.invalid.area + " m²）；通过需" + m.threshold_text + "（面积和人数）" }));
      card.appendChild(el("p", { cls: m.yes_shortfall.new_voters.met ? "need met" : "need", "data-testid": "need-" + m.id,
        text: m.yes_shortfall.new_voters.text }));
      if (m.yes_shortfall.converts) card.appendChild(el("p", { cls: "muted", text: m.yes_shortfall.converts.text }));
      return card;
    }
    var table = el("table", { cls: "candidates" },
      el("thead", null, el("tr", null, el("th", { text: "名次" }), el("th", { text: "候选人" }),
        el("th", { text: "赞成户数" }), el("th", { text: "赞成面积 m²" }), el("th", { text: "占参与（户/面积）" }),
        el("th", { text: "目前" }), el("th", { text: "距离当选线" }))));
    var body = el("tbody");
    m.candidates.forEach(function (c) {
      body.appendChild(el("tr", { cls: "standing-" + c.standing },
        el("td", { text: c.rank == null ? "—" : String(c.rank) }), el("td", { text: c.name }),
        el("td", { text: String(c.yes.persons) }), el("td", { text: c.yes.area }),
        el("td", { text: c.yes_share.persons + "% / " + c.yes_share.area + "%" }),
        el("td", { text: c.standing_text }), el("td", { text: c.yes_shortfall.new_voters.text })));
    });
    table.appendChild(body);
    card.appendChild(el("p", { cls: "figures", text: "应选 " + m.seats + " 人，候补 " + m.alternates_count +
      " 人；每位候选人需获" + m.threshold_text + "（面积和人数）" + (m.standing_provisional ? "。参与未达 2/3，名次仅供参考" : "") }));
    card.appendChild(el("p", { cls: "figures", "data-testid": "figures-" + m.id, text: "无效票 " + m.invalid.persons +
      " 户（" + m.invalid.area + " m²），其中所选人数超过应选人数 " + m.spoiled.persons + " 户" }));
    card.appendChild(el("div", { cls: "table-wrap" }, table));
    return card;
  }

  function render(doc) {
    lastDoc = doc;
    $("board").hidden = false;
    $("login").hidden = true;
    var heading = doc.title + (ended(doc) ? " — 表决看板" : " — 实时看板");
    $("title").textContent = heading;
    document.title = heading;
    $("meeting-state").textContent = STATE_NAMES[doc.state] || doc.state;
    // an extension notice moves closes_at: the next update shows the new close
    $("closes-at").textContent = doc.closes_at ? "投票截止 " + beijingTime(doc.closes_at) : "";
    $("updated-at").textContent = "更新于 " + beijingTime(doc.generated_at, true);

    var t = doc.turnout, totals = doc.totals, line = doc.quorum_line;
    // Each axis is met when nothing is missing on it (the server compares exact integers).
    var areaMet = parseFloat(t.shortfall.area) === 0, personsMet = t.shortfall.persons === 0;
    var missed = ended(doc) ? "差 " : "还差 ";
    setGauge("gauge-area", t.share.area, areaMet,
      t.area + " / " + totals.area + " m²（2/3 线 " + line.area + "）",
      areaMet ? "面积已达 2/3" : "面积" + missed + t.shortfall.area + " m²");
    setGauge("gauge-persons", t.share.persons, personsMet,
      t.persons + " / " + totals.persons + " 户（2/3 线 " + line.persons + "）",
      personsMet ? "人数已达 2/3" : "人数" + missed + t.shortfall.persons + " 户");
    $("turnout-persons").textContent = String(t.persons);
    $("turnout-area").textContent = t.area;
    $("turnout-need").textContent = t.shortfall.text;
    var ch = doc.channels;
    $("channels").textContent = "渠道：电子投票 " + ch.electronic.persons + " 户（" + ch.electronic.area + " m²），纸质票 " +
      ch.paper.persons + " 户（" + ch.paper.area + " m²）" +
      (ch.proxy ? "，代理投票 " + ch.proxy.persons + " 户（" + ch.proxy.area + " m²）" : "");

    var over = ended(doc);
    $("results-note").textContent = doc.view === "results"
      ? (over ? "投票已结束，以下为计票结果" : doc.state === "open" ? "以下为投票中的即时结果，以投票结束后的正式计票为准" : "")
      : (over ? "投票已结束，表决结果以正式公告为准" : "本会议投票期间不公开表决结果，仅显示参与情况");
    renderOutcome(doc, over);
    var matters = $("matters");
    matters.replaceChildren.apply(matters, doc.matters.map(function (m) { return matterCard(m, doc); }));

    var axis = doc.buildings_sorted_by;
    $("buildings-note").textContent = axis === "area"
      ? "按尚未参与的面积从多到少排列：面积离 2/3 线更远，先走访这些楼栋最有帮助"
      : "按尚未参与的户数从多到少排列：人数离 2/3 线更远，先走访这些楼栋最有帮助";
    var rows = doc.buildings.map(function (b) {
      var share = axis === "area" ? b.share.area : b.share.persons;
      return el("div", { cls: "building", "data-building": b.building },
        el("span", { cls: "bname", text: b.label || b.building + " 栋" }),
        bar(share, 66.67, b.voted.persons + "/" + b.totals.persons + " 户，" + b.voted.area + "/" + b.totals.area + " m²"),
        el("span", { cls: "bleft", text: "未参与 " + b.remaining.persons + " 户 / " + b.remaining.area + " m²" }));
    });
    var box = $("buildings");
    box.replaceChildren.apply(box, rows);
  }

  // Once voting is over: a banner with every matter's outcome (organisers), or where to find it.
  function renderOutcome(doc, over) {
    var box = $("outcome");
    box.hidden = !over;
    if (!over) { box.replaceChildren(); return; }
    var items = doc.matters.filter(function (m) { return m.status_text; }).map(function (m) {
      return el("li", { "data-testid": "outcome-" + m.id },
        el("span", { text: m.id + "　" + m.title + (m.scope_text ? "（" + m.scope_text + "）" : "") + "：" }),
        el("strong", { cls: "outcome-" + statusClass(m.outcome), text: m.status_text }));
    });
    var list = el("ul");
    items.forEach(function (item) { list.appendChild(item); });
    box.replaceChildren(el("h2", { text: "投票已结束" + (doc.state === "published" ? "，结果已公布" : "") }),
      items.length ? list : el("p", { text: "表决结果以正式公告为准" }));
  }

  window.evoteDashboard = { last: function () { return lastDoc; } };
  start();
})();

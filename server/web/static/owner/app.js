/* The owner's voting page: /b/{code} → confirm identity → vote → confirm → receipts.
 * Plain script, no build step.  The device id stays in localStorage (so this phone may
 * sign in again without the identity check); the ballot token only in sessionStorage. */
(function () {
  "use strict";

  var app = document.getElementById("app");
  var titleEl = document.getElementById("meeting-title");
  var CHOICE_NAMES = { yes: "赞成", no: "反对", abstain: "弃权" };

  var code = decodeURIComponent((location.pathname.match(/^\/b\/([^/?#]*)/) || [])[1] || "").trim();
  var state = { token: null, meeting: null, status: null, answers: {}, idempotencyKey: null };

  // ------------------------------------------------------------------ small helpers
  function el(tag, attrs) {
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
  }
  function show() {
    app.textContent = "";
    for (var i = 0; i < arguments.length; i++) if (arguments[i]) app.appendChild(arguments[i]);
    window.scrollTo(0, 0);
  }
  function randomId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function store(kind) { try { return window[kind]; } catch (e) { return null; } }
  function deviceId() {
    var ls = store("localStorage"), id = ls && ls.getItem("evote.device");
    if (!id) { id = "web-" + randomId(); if (ls) ls.setItem("evote.device", id); }
    return id;
  }
  var tokenKey = "evote.token." + code;
  function saveToken(t) { var ss = store("sessionStorage"); if (ss) { if (t) ss.setItem(tokenKey, t); else ss.removeItem(tokenKey); } }
  function loadToken() { var ss = store("sessionStorage"); return ss ? ss.getItem(tokenKey) : null; }

  function ApiError(status, body) {
    var e = (body && body.error) || {};
    this.status = status; this.code = e.code || "network"; this.fields = e.fields || {};
    this.message = e.message || "网络不太顺畅，请稍后再试";
  }
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (state.token) headers["Authorization"] = "Bearer " + state.token;
    return fetch(path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
                         cache: "no-store", referrerPolicy: "no-referrer" })
      .catch(function () { throw new ApiError(0, null); })
      .then(function (resp) {
        return resp.json().catch(function () { return null; }).then(function (data) {
          if (!resp.ok) throw new ApiError(resp.status, data);
          return data;
        });
      });
  }
  function errorBox(err) { return el("p", { class: "error", role: "alert", text: err.message || String(err) }); }
  function sessionLost(err) {
    return err.status === 401 && ["ballot_session_revoked", "token_expired", "invalid_token",
                                  "ballot_login_required"].indexOf(err.code) >= 0;
  }

  // ------------------------------------------------------------------ sign-in
  function start() {
    if (!/^[0-9A-Za-z-]{16,40}$/.test(code)) {
      show(el("div", { class: "card" }, el("h2", { text: "请扫描选票上的二维码" }),
        el("p", { class: "hint", text: "本页面需要通过选票上的二维码打开。也可以输入选票上印的选票码：" }),
        codeForm()));
      return;
    }
    state.token = loadToken();
    if (state.token) return loadBallot();
    // This phone may have signed in before: try without the identity check first.
    redeem(null);
  }

  function codeForm() {
    var input = el("input", { type: "text", id: "code-input", autocomplete: "off", autocapitalize: "characters",
                              "aria-label": "选票码" });
    input.style.letterSpacing = "0.05em";
    return el("form", { onsubmit: function (ev) {
        ev.preventDefault();
        var typed = input.value.replace(/[\s-]/g, "").toUpperCase();
        if (typed) location.href = "/b/" + encodeURIComponent(typed);
      } }, input, el("button", { class: "primary", type: "submit", text: "打开" }));
  }

  function redeem(last4, errorShown) {
    var body = { code: code, device_id: deviceId() };
    if (last4) body.last4 = last4;
    show(el("p", { class: "hint", text: "正在核对…" }));
    api("POST", "/api/ballot/redeem", body).then(function (data) {
      state.token = data.token; saveToken(data.token);
      loadBallot();
    }).catch(function (err) {
      if (err.code === "identity_required") return identityForm(last4 ? err : errorShown);
      if (err.code === "identity_mismatch" || err.code === "validation_failed") return identityForm(err);
      if (err.code === "code_locked") return identityForm(err, true);
      var kept = keptReceipts();
      if (err.code === "meeting_voided") return show(el("div", { class: "card voided", id: "voided" },
        el("h2", { text: "本次会议已宣布作废" }), el("p", { text: err.message })));
      if (err.code === "meeting_closed" && kept) return showKeptReceipts(kept, "投票已经结束。以下是您在本机保存的回执码。");
      show(errorBox(err), el("div", { class: "card" },
        el("p", { class: "hint", text: "如果二维码遗失或无法使用，请联系业委会或筹备组补发。" })));
    });
  }

  function identityForm(err, locked) {
    var input = el("input", { type: "text", id: "last4", inputmode: "numeric", maxlength: "4", autocomplete: "off",
                              autocapitalize: "characters", "aria-label": "后四位" });
    var form = el("form", { onsubmit: function (ev) {
        ev.preventDefault();
        var value = input.value.trim().toUpperCase();
        if (!/^[0-9A-Z]{4}$/.test(value)) { input.focus(); return; }
        redeem(value);
      } },
      el("label", { for: "last4", text: "请输入您登记的手机号或身份证号的后四位" }), input,
      el("button", { class: "primary", type: "submit", id: "last4-submit", text: "确认身份" }));
    show(err ? errorBox(err) : null,
         el("div", { class: "card" }, el("h2", { text: "第一步：确认身份" }),
            el("p", { class: "hint", text: "为保护您的选票，请先核对身份。身份证最后一位是 X 的，请输入 X。" }),
            locked ? null : form));
    if (!locked) input.focus();
  }

  // ------------------------------------------------------------------ the ballot
  function loadBallot() {
    show(el("p", { class: "hint", text: "正在读取表决事项…" }));
    Promise.all([api("GET", "/api/ballot/meeting"), api("GET", "/api/ballot/status")]).then(function (res) {
      state.meeting = res[0]; state.status = res[1];
      titleEl.textContent = state.meeting.title;
      if (state.meeting.state === "voided") {
        return show(el("div", { class: "card voided", id: "voided" }, el("h2", { text: "本次会议已宣布作废" }),
          el("p", { text: "作废时间：" + beijingTime(state.meeting.voided_at) }),
          el("p", { text: "作废理由：" + (state.meeting.void_reason || "") }),
          el("p", { class: "hint", text: "本次会议不再投票，也不计票、不公布结果。" })));
      }
      if (state.meeting.state !== "open") {
        var words = state.meeting.state === "noticed" ? "投票尚未开始" : "投票已经结束";
        var when = state.meeting.opens_at ? "，开始时间：" + beijingTime(state.meeting.opens_at) : "";
        var over = state.meeting.state !== "noticed";
        return show(el("div", { class: "card" }, el("h2", { text: words }),
          el("p", { class: "hint", text: over ? "表决结果公布后，可在结果公告页查看，并凭选票码下载完整表决记录。"
                                               : "请在投票开始后再打开本页" + when + "。" }),
          over ? el("a", { class: "button-link", id: "results-link", rel: "noreferrer",
                           href: resultsPath(state.meeting.community_id, state.meeting.meeting_id) + "#code=" +
                                 encodeURIComponent(code), text: "查看表决结果公告" }) : null));
      }
      if (!state.meeting.matters.length) return show(el("div", { class: "card", id: "no-matters" },
        el("h2", { text: "本次会议没有需要您表决的事项" }),
        el("p", { class: "hint", text: "本次表决的事项只由部分楼栋的业主表决，您不在表决范围内。" })));
      if (todo().length === 0) return showReceipts(null, true);
      ballotForm();
    }).catch(function (err) {
      if (sessionLost(err)) { saveToken(null); state.token = null; return redeem(null); }
      show(errorBox(err), el("button", { text: "重试", onclick: loadBallot }));
    });
  }

  function todo() {
    var can = {};
    (state.status.matters || []).forEach(function (m) { can[m.matter_id] = m.can_vote; });
    return state.meeting.matters.filter(function (m) { return can[m.matter_id] !== false; });
  }

  // Legal times are shown in Beijing time, whatever the phone's time zone.
  function beijingTime(iso) {
    if (!iso) return "";
    var d = new Date(new Date(iso).getTime() + 8 * 3600 * 1000);
    function two(n) { return ("0" + n).slice(-2); }
    return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) + " " +
      two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + "（北京时间）";
  }

  function closeLine() {
    var m = state.meeting;
    if (!m.closes_at) return null;
    var ext = (m.extensions || []), last = ext[ext.length - 1];
    return el("p", { class: "hint", id: "closes-at",
      text: "投票截止：" + beijingTime(m.closes_at) +
            (last ? "（已延期，延期公告：" + last.reason + "）" : "") });
  }

  function who() {
    var v = state.meeting.voter;
    return v && v.units && v.units.length ? "房号：" + v.units.join("、") : "";
  }

  function ballotForm(err) {
    var matters = todo();
    var next = el("button", { class: "primary", id: "to-confirm", text: "下一步：核对我的选择",
                              onclick: function () { confirmPage(); } });
    function refresh() {
      next.disabled = !matters.every(function (m) { return m.kind !== "resolution" || state.answers[m.matter_id]; });
    }
    var cards = matters.map(function (m, i) {
      var card = el("section", { class: "card matter", "data-matter": m.matter_id },
        el("h2", { text: "第 " + (i + 1) + " 项：" + m.title }),
        m.scope ? el("p", { class: "scope", text: "本项仅由 " + m.scope.buildings.join("、") + " 楼栋的业主表决" }) : null,
        m.description ? el("p", { class: "hint", text: m.description }) : null);
      if (m.kind === "resolution") {
        var row = el("div", { class: "choices", role: "group", "aria-label": m.title });
        ["yes", "no", "abstain"].forEach(function (c) {
          var b = el("button", { type: "button", class: c, "data-choice": c, text: CHOICE_NAMES[c],
                                 "aria-pressed": String(state.answers[m.matter_id] === c) });
          b.addEventListener("click", function () {
            state.answers[m.matter_id] = c;
            Array.prototype.forEach.call(row.children, function (x) {
              x.setAttribute("aria-pressed", String(x.getAttribute("data-choice") === c));
            });
            refresh();
          });
          row.appendChild(b);
        });
        card.appendChild(row);
      } else {
        var picked = state.answers[m.matter_id] || (state.answers[m.matter_id] = []);
        var counter = el("p", { class: "counter" });
        var boxes = [];
        function count() {
          counter.textContent = "最多选 " + m.seats + " 人，已选 " + picked.length + " 人";
          boxes.forEach(function (b) { b.disabled = !b.checked && picked.length >= m.seats; });
        }
        card.appendChild(counter);
        (m.candidates || []).forEach(function (c) {
          var box = el("input", { type: "checkbox", id: "cand-" + m.matter_id + "-" + c.candidate_id,
                                  "data-candidate": c.candidate_id });
          box.checked = picked.indexOf(c.candidate_id) >= 0;
          box.addEventListener("change", function () {
            var at = picked.indexOf(c.candidate_id);
            if (box.checked && at < 0) picked.push(c.candidate_id);
            if (!box.checked && at >= 0) picked.splice(at, 1);
            count();
          });
          boxes.push(box);
          card.appendChild(el("label", { class: "candidate", for: box.id }, box,
            el("span", {}, el("span", { class: "who", text: c.name }),
              el("br"), el("span", { class: "small", text: [c.unit_label ? "房号 " + c.unit_label : "",
                                                            c.party_member ? "中共党员" : ""].filter(Boolean).join("　") }),
              c.statement ? el("span", { class: "small" }, el("br"), c.statement) : null)));
        });
        card.appendChild(el("p", { class: "small", text: "不选任何人视为对本项弃权。" }));
        count();
      }
      return card;
    });
    var intro = el("div", { class: "card" }, el("h2", { text: "第二步：投票" }),
      el("p", { class: "hint", text: (who() ? who() + "。" : "") + "请逐项选择，选好后点最下面的按钮核对。" }),
      closeLine());
    show.apply(null, [err ? errorBox(err) : null, intro].concat(cards, [next]));
    refresh();
  }

  function votesToSend() {
    return todo().map(function (m) {
      if (m.kind === "resolution") return { matter_id: m.matter_id, choice: state.answers[m.matter_id] };
      var picked = state.answers[m.matter_id] || [], marks = {};
      if (picked.length) picked.forEach(function (id) { marks[id] = "yes"; });
      else (m.candidates || []).forEach(function (c) { marks[c.candidate_id] = "abstain"; });
      return { matter_id: m.matter_id, marks: marks };
    });
  }

  function confirmPage() {
    var list = el("dl", { class: "summary" });
    todo().forEach(function (m) {
      var text;
      if (m.kind === "resolution") text = CHOICE_NAMES[state.answers[m.matter_id]];
      else {
        var picked = state.answers[m.matter_id] || [];
        text = picked.length ? "选举：" + m.candidates.filter(function (c) { return picked.indexOf(c.candidate_id) >= 0; })
          .map(function (c) { return c.name; }).join("、") : "弃权（未选任何人）";
      }
      list.appendChild(el("dt", { text: m.title }));
      list.appendChild(el("dd", { text: text }));
    });
    state.idempotencyKey = state.idempotencyKey || randomId();
    show(el("div", { class: "card" }, el("h2", { text: "第三步：核对后提交" }),
          el("p", { class: "hint", text: (state.meeting.allow_revision ? "投票截止前可以重新提交修改。"
                                                                       : "提交后不能修改。") + "请核对您的选择：" }), list),
         rulesNote(),
         privacyNote(),
         el("button", { class: "primary", id: "submit-votes", text: "确认提交", onclick: submit }),
         el("button", { text: "返回修改", onclick: function () { ballotForm(); } }));
  }

  // Who will be able to see how this unit voted: said before the owner submits.
  function privacyNote() {
    return el("div", { class: "card privacy", id: "privacy-note" },
      el("h3", { text: "谁能看到您家的表决情况" }),
      el("p", { text: "本小区业主、业主大会筹备组/业委会工作人员和审计人员可以查阅每户的表决情况；" +
                      "其他人只能看到汇总结果。" }));
  }

  // Links for an owner once the meeting is over: the results page (the code goes in the #fragment,
  // which is not sent to the server) and the full record, which this code may download.
  function resultsPath(cid, mid) { return "/r/" + encodeURIComponent(cid) + "/" + encodeURIComponent(mid); }
  function recordCard(cid, mid) {
    var record = "/api/public/meetings/" + encodeURIComponent(cid) + "/" + encodeURIComponent(mid) +
      "/record.zip?code=" + encodeURIComponent(code);
    return el("div", { class: "card", id: "record-card" },
      el("h3", { text: "表决结果已公布" }),
      el("p", { class: "hint", text: "您可以查看结果公告，并凭本选票码下载完整表决记录。记录中有每户的表决情况，" +
                                     "只供本小区业主、工作人员和审计人员查阅，请勿随意转发。" }),
      el("a", { class: "button-link", id: "results-link", rel: "noreferrer",
                href: resultsPath(cid, mid) + "#code=" + encodeURIComponent(code), text: "查看表决结果公告" }),
      el("a", { class: "button-link", id: "record-download", rel: "noreferrer", download: "",
                href: record, text: "下载完整表决记录（.zip）" }));
  }

  // The meeting's rules that decide which ballot counts and what a blank one means, stated before
  // the owner submits: the same sentences as on the printed paper ballots (rules.statements of
  // GET /api/ballot/meeting, made by server/services/rule_statements.py).
  function rulesNote() {
    var statements = (state.meeting.rules && state.meeting.rules.statements) || [];
    if (!statements.length) return null;
    var list = el("dl", {});
    statements.forEach(function (r) {
      list.appendChild(el("dt", { text: r.title, "data-rule": r.key }));
      list.appendChild(el("dd", { text: r.text, "data-rule": r.key }));
    });
    return el("div", { class: "card rules", id: "rules-note" }, el("h3", { text: "本次表决的规则" }), list);
  }

  function submit() {
    var button = document.getElementById("submit-votes");
    if (button) { button.disabled = true; button.textContent = "正在提交…"; }
    api("POST", "/api/ballot/votes", { idempotency_key: state.idempotencyKey, votes: votesToSend() })
      .then(function (data) { state.idempotencyKey = null; showReceipts(data.receipts, false); })
      .catch(function (err) {
        if (sessionLost(err)) { saveToken(null); state.token = null; return redeem(null); }
        if (err.code === "already_voted") return showReceipts(null, true, err);
        ballotForm(err);
      });
  }

  function showReceipts(receipts, earlier, note) {
    var load = receipts ? Promise.resolve({ receipts: receipts }) : api("GET", "/api/ballot/receipts");
    load.then(function (data) {
      var titles = {};
      (state.meeting ? state.meeting.matters : []).forEach(function (m) { titles[m.matter_id] = m.title; });
      var kept = { cid: state.meeting.community_id, mid: state.meeting.meeting_id, title: state.meeting.title,
                   receipts: (data.receipts || []).map(function (r) {
                     return { matter_id: r.matter_id, title: titles[r.matter_id] || r.matter_id,
                              receipt: r.receipt, received_at: r.received_at };
                   }) };
      rememberReceipts(kept);
      showKeptReceipts(kept, earlier ? "您已经投过票，以下是您的回执码。" : "您的投票已提交，回执码如下。", note);
    }).catch(function (err) { show(errorBox(err)); });
  }

  // ------------------------------------------------------------------ receipts and their check
  // Receipts stay on this phone, so the owner can check them after the meeting closes, when
  // signing in is no longer possible, against the signed, published record.
  var receiptsKey = "evote.receipts." + code;
  function rememberReceipts(kept) {
    var ls = store("localStorage");
    if (ls) { try { ls.setItem(receiptsKey, JSON.stringify(kept)); } catch (e) { /* storage full: skip */ } }
  }
  function keptReceipts() {
    var ls = store("localStorage"), raw = ls && ls.getItem(receiptsKey);
    try { return raw ? JSON.parse(raw) : null; } catch (e) { return null; }
  }

  function showKeptReceipts(kept, headline, note) {
    if (kept.title) titleEl.textContent = kept.title;
    var items = kept.receipts.map(function (r) {
      return el("div", { class: "card receipt-item", "data-matter": r.matter_id },
        el("h3", { text: r.title }),
        el("p", { class: "small", text: "提交时间：" + beijingTime(r.received_at) }),
        el("p", { text: "回执码：" }), el("p", { class: "receipt", text: r.receipt }),
        el("p", { class: "hint receipt-check", text: "正在核对…" }));
    });
    show.apply(null, [note ? errorBox(note) : null,
      el("p", { class: "ok", id: "done", text: headline }),
      el("div", { class: "card" }, el("p", { class: "hint",
        text: "请截图或抄下回执码。表决结果公布后，本页会自动核对您的选票已被计入。" }))].concat(items));
    checkReceipts(kept, items);
  }

  function checkReceipts(kept, items) {
    function mark(item, text, ok) {
      var line = item.querySelector(".receipt-check");
      line.textContent = text;
      line.className = (ok ? "ok" : "hint") + " receipt-check";
    }
    var base = "/api/public/meetings/" + encodeURIComponent(kept.cid) + "/" + encodeURIComponent(kept.mid);
    if (!window.crypto || !crypto.subtle || !window.evoteMerkle) {
      items.forEach(function (item) { mark(item, "此浏览器无法核对，请在结果公告页输入回执码核对。", false); });
      return;
    }
    fetch(base + "/result", { cache: "no-store" }).then(function (resp) {
      if (!resp.ok) {
        items.forEach(function (item) { mark(item, "表决结果公布后，可在此核对您的选票是否已计入。", false); });
        return null;
      }
      return resp.json();
    }).then(function (published) {
      if (!published) return;
      app.appendChild(recordCard(kept.cid, kept.mid));
      // The root the committee signed, not merely the one the server reports beside the proof.
      var root = published.signed.payload.receipts.root;
      kept.receipts.forEach(function (r, i) {
        fetch(base + "/receipts/" + r.receipt + "/proof", { cache: "no-store" })
          .then(function (resp) { return resp.ok ? resp.json() : null; })
          .then(function (proof) { return proof ? window.evoteMerkle.proofReaches(r.receipt, proof, root) : false; })
          .then(function (ok) {
            mark(items[i], ok ? "您的选票已计入" : "没有在公布的记录中找到这张选票，请联系业委会或街道办。", ok);
          });
      });
    }).catch(function () {
      items.forEach(function (item) { mark(item, "网络不太顺畅，暂时无法核对。", false); });
    });
  }

  start();
})();

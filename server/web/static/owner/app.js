/* The owner's voting page: /b/{code} → confirm identity → vote → confirm → receipts.
 * Plain script, no build step (helpers in common.js, receipts and the closed meeting in receipts.js,
 * live updates in live.js).  The device id stays in localStorage (so this phone may sign in again
 * without the identity check); the ballot token only in sessionStorage. */
(function () {
  "use strict";
  var O = window.evoteOwner, el = O.el, show = O.show, api = O.api, state = O.state, code = O.code;
  var CHOICE_NAMES = { yes: "赞成", no: "反对", abstain: "弃权" };
  var liveLine = document.getElementById("live-line");

  function deviceId() {
    var ls = O.store("localStorage"), id = ls && ls.getItem("evote.device");
    if (!id) { id = "web-" + O.randomId(); if (ls) ls.setItem("evote.device", id); }
    return id;
  }
  var tokenKey = "evote.token." + code;
  function saveToken(t) { var ss = O.store("sessionStorage"); if (ss) { if (t) ss.setItem(tokenKey, t); else ss.removeItem(tokenKey); } }
  function loadToken() { var ss = O.store("sessionStorage"); return ss ? ss.getItem(tokenKey) : null; }
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
    if (!last4) show(el("p", { class: "hint", text: "正在核对…" }));
    api("POST", "/api/ballot/redeem", body).then(function (data) {
      state.token = data.token; saveToken(data.token);
      loadBallot();
    }).catch(function (err) {
      if (err.code === "identity_required") return identityForm(last4 ? err : errorShown);
      if (err.code === "identity_mismatch" || err.code === "validation_failed") return identityForm(err);
      if (err.code === "code_locked") return identityForm(err, true);
      if (err.code === "meeting_voided") return show(el("div", { class: "card voided", id: "voided" },
        el("h2", { text: "本次会议已宣布作废" }), el("p", { text: err.message })));
      // Voting is over: the meeting, its outcome and the results page — nothing to reissue any more.
      if (err.code === "meeting_closed") return O.showClosed(err.fields || {});
      var kept = O.keptReceipts();
      if (err.code === "code_invalid" && kept) {
        return O.showKeptReceipts(kept, "以下是您在本机保存的回执码。", err);
      }
      show(O.errorBox(err), el("div", { class: "card" },
        el("p", { class: "hint", text: "如果二维码遗失或无法使用，请联系业委会或筹备组补发。" })));
    });
  }

  // The last four characters of the phone or ID number: digits, or X as an ID number's last one.
  function identityForm(err, locked) {
    var input = el("input", { type: "text", id: "last4", inputmode: "numeric", maxlength: "4", autocomplete: "off",
                              autocapitalize: "characters", "aria-label": "后四位", "aria-describedby": "last4-feedback" });
    var feedback = el("p", { id: "last4-feedback", role: "status", class: "hint" });
    var submit = el("button", { class: "primary", type: "submit", id: "last4-submit", text: "确认身份" });
    var addX = el("button", { type: "button", id: "last4-x", class: "key-x", text: "输入 X（身份证末位）" });
    input.addEventListener("input", function () {
      var cleaned = input.value.toUpperCase().replace(/[^0-9X]/g, "").slice(0, 4);
      if (cleaned !== input.value) input.value = cleaned;
      feedback.textContent = ""; feedback.className = "hint";
    });
    addX.addEventListener("click", function () {
      if (input.value.length < 4) input.value = (input.value + "X").slice(0, 4);
      input.focus();
    });
    var form = el("form", { onsubmit: function (ev) {
        ev.preventDefault();
        var value = input.value.trim().toUpperCase();
        if (!/^[0-9X]{4}$/.test(value)) {
          feedback.className = "error";
          feedback.textContent = value.length < 4
            ? "请输入 4 位，现在只输入了 " + value.length + " 位。"
            : "只能输入数字，身份证末位可以是 X。";
          input.focus();
          return;
        }
        submit.disabled = true; submit.textContent = "正在核对…";
        feedback.className = "hint"; feedback.textContent = "正在核对，请稍候…";
        redeem(value);
      } },
      el("label", { for: "last4", text: "请输入您登记的手机号或身份证号的后四位" }), input, addX, feedback, submit);
    show(err ? O.errorBox(err) : null,
         el("div", { class: "card" }, el("h2", { text: "第一步：确认身份" }),
            el("p", { class: "hint", text: "为保护您的选票，请先核对身份。身份证最后一位是 X 的，请输入 X。" }),
            locked ? null : form));
    if (!locked) input.focus();
  }

  // ------------------------------------------------------------------ live updates
  function onLive(doc) {
    if (doc.turnout && doc.totals) {
      liveLine.hidden = false;
      liveLine.textContent = "目前已有 " + doc.turnout.persons + " 户参与表决（全体 " + doc.totals.persons + " 户）";
    }
    if (doc.voting_ended && ["ballot", "confirm", "waiting"].indexOf(state.view) >= 0) {
      O.stopLive();
      return O.showClosed(state.meeting);
    }
    if (doc.state === "open" && state.view === "waiting") loadBallot();
  }

  // ------------------------------------------------------------------ the ballot
  function loadBallot() {
    show(el("p", { class: "hint", text: "正在读取表决事项…" }));
    Promise.all([api("GET", "/api/ballot/meeting"), api("GET", "/api/ballot/status")]).then(function (res) {
      state.meeting = res[0]; state.status = res[1];
      O.titleEl.textContent = state.meeting.title;
      if (state.meeting.state === "voided") {
        return show(el("div", { class: "card voided", id: "voided" }, el("h2", { text: "本次会议已宣布作废" }),
          el("p", { text: "作废时间：" + O.beijingTime(state.meeting.voided_at) + "（北京时间）" }),
          el("p", { text: "作废理由：" + (state.meeting.void_reason || "") }),
          el("p", { class: "hint", text: "本次会议不再投票，也不计票、不公布结果。" })));
      }
      if (state.meeting.state !== "open" && state.meeting.state !== "noticed") {
        state.view = "closed";
        return O.showClosed(state.meeting);
      }
      O.startLive(onLive);
      if (state.meeting.state === "noticed") return notStarted();
      if (!state.meeting.matters.length) return show(el("div", { class: "card", id: "no-matters" },
        el("h2", { text: "本次会议没有需要您表决的事项" }),
        el("p", { class: "hint", text: "本次表决的事项只由部分楼栋的业主表决，您不在表决范围内。" })));
      if (todo().length === 0) { state.view = "receipts"; return O.showReceipts(true); }
      ballotForm();
    }).catch(function (err) {
      if (sessionLost(err)) { saveToken(null); state.token = null; return redeem(null); }
      show(O.errorBox(err), el("button", { text: "重试", onclick: loadBallot }));
    });
  }

  function todo() {
    var can = {};
    (state.status.matters || []).forEach(function (m) { can[m.matter_id] = m.can_vote; });
    return state.meeting.matters.filter(function (m) { return can[m.matter_id] !== false; });
  }

  function periodLine(id) {
    var m = state.meeting;
    if (!m.opens_at && !m.closes_at) return null;
    var ext = (m.extensions || []), last = ext[ext.length - 1];
    return el("p", { class: "period", id: id || "voting-period",
      text: "投票时间：" + O.period(m.opens_at, m.closes_at) + (last ? "（已延期，延期理由：" + last.reason + "）" : "") });
  }

  // Before voting opens: when it starts, and what will be voted on (read ahead).
  function notStarted() {
    state.view = "waiting";
    var m = state.meeting;
    show(el("div", { class: "card", id: "not-started" }, el("h2", { text: "投票尚未开始" }),
           el("p", { id: "opens-at", text: "投票开始时间：" + (m.opens_at ? O.beijingTime(m.opens_at) + "（北京时间）" : "另行通知") }),
           m.closes_at ? el("p", { id: "closes-at", text: "投票截止时间：" + O.beijingTime(m.closes_at) + "（北京时间）" }) : null,
           el("p", { class: "hint", text: "投票开始后，本页会自动显示选票；也可以到时再扫码打开。" })),
         attachmentsCard(),
         el("div", { class: "card", id: "matters-ahead" }, el("h3", { text: "本次表决的事项" }),
           el.apply(null, ["ol", {}].concat(m.matters.map(function (x) {
             return el("li", {}, x.title, el("br"), el("span", { class: "small", text: x.threshold_text || "" }));
           })))),
         meetingInfo());
  }

  // Attached documents (drafts owners vote on): shown when the server lists some, hidden otherwise
  // (also when it does not offer the list: 404).
  function attachmentsCard() {
    var card = el("div", { class: "card", id: "attachments", hidden: "" }, el("h3", { text: "会议文件（请先阅读）" }));
    var m = state.meeting;
    api("GET", "/api/ballot/attachments").then(function (data) {
      var list = (data && data.attachments) || [];
      if (!list.length) return;
      var ul = el("ul", { class: "files" });
      list.forEach(function (a) {
        var size = a.size >= 1048576 ? (a.size / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(a.size / 1024)) + " KB";
        ul.appendChild(el("li", {}, el("a", { class: "file-link", rel: "noreferrer", target: "_blank",
          "data-attachment": a.attachment_id,
          href: O.publicBase(m.community_id, m.meeting_id) + "/attachments/" + encodeURIComponent(a.attachment_id),
          text: a.title || a.filename }),
          el("span", { class: "small", text: "（" + (a.media_type === "application/pdf" ? "PDF" : "文本") + "，" + size + "）" })));
      });
      card.appendChild(ul);
      card.hidden = false;
    }).catch(function () { card.remove(); });
    return card;
  }

  // What the meeting's rules are and who will see how this unit voted, stated on the ballot itself.
  function meetingInfo() {
    var m = state.meeting;
    var statements = (m.rules && m.rules.statements) || [];
    var rules = el("details", { class: "rules-more", id: "ballot-rules" }, el("summary", { text: "本次表决的规则（点开查看）" }));
    var list = el("dl", {});
    statements.forEach(function (r) {
      list.appendChild(el("dt", { text: r.title })); list.appendChild(el("dd", { text: r.text }));
    });
    rules.appendChild(list);
    return el("div", { class: "card info", id: "meeting-info" }, el("h3", { text: "会议说明" }),
      m.quorum_text ? el("p", { id: "quorum-text", text: m.quorum_text }) : null,
      el("p", { id: "who-sees", text: "谁能看到您家的表决情况：本小区业主、业主大会筹备组/业委会工作人员和审计人员可以查阅每户的表决情况；" +
                                      "其他人只能看到汇总结果。" }),
      statements.length ? rules : null);
  }

  function answered(m) { return m.kind !== "resolution" || !!state.answers[m.matter_id]; }

  function ballotForm(err) {
    state.view = "ballot";
    var matters = todo();
    var hint = el("div", { id: "unanswered", role: "alert", hidden: "" });
    var next = el("button", { class: "primary", id: "to-confirm", text: "下一步：核对我的选择" });
    function refresh() {
      var missing = matters.filter(function (m) { return !answered(m); });
      next.className = "primary" + (missing.length ? " incomplete" : "");
      if (!hint.hidden && !missing.length) hint.hidden = true;
      cards.forEach(function (card, i) { if (answered(matters[i])) card.classList.remove("missing"); });
      return missing;
    }
    next.addEventListener("click", function () {
      var missing = refresh();
      if (!missing.length) return confirmPage();
      hint.hidden = false; hint.className = "error";
      hint.textContent = "还有 " + missing.length + " 项没有选择：" +
        missing.map(function (m) { return "“" + m.title + "”"; }).join("、") + "。请选好后再点下一步。";
      cards.forEach(function (card, i) { if (!answered(matters[i])) card.classList.add("missing"); });
      var first = cards[matters.indexOf(missing[0])];
      if (first && first.scrollIntoView) first.scrollIntoView({ block: "start" });
    });
    var cards = matters.map(function (m, i) {
      var card = el("section", { class: "card matter", "data-matter": m.matter_id },
        el("h2", { text: "第 " + (i + 1) + " 项：" + m.title }),
        m.scope ? el("p", { class: "scope", text: "本项仅由 " + m.scope.buildings.join("、") + " 楼栋的业主表决" }) : null,
        m.description ? el("p", { class: "hint", text: m.description }) : null,
        m.threshold_text ? el("p", { class: "threshold", text: m.threshold_text }) : null);
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
        var count = function () {
          counter.textContent = "最多选 " + m.seats + " 人，已选 " + picked.length + " 人";
          boxes.forEach(function (b) { b.disabled = !b.checked && picked.length >= m.seats; });
        };
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
    var v = state.meeting.voter;
    var intro = el("div", { class: "card" }, el("h2", { text: "第二步：投票" }),
      el("p", { class: "hint", text: (v && v.units && v.units.length ? "房号：" + v.units.join("、") + "。" : "") +
                                     "请逐项选择，选好后点最下面的按钮核对。" }),
      periodLine());
    show.apply(null, [err ? O.errorBox(err) : null, intro, attachmentsCard(), meetingInfo()].concat(cards, [hint, next]));
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
    state.view = "confirm";
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
    state.idempotencyKey = state.idempotencyKey || O.randomId();
    show(el("div", { class: "card" }, el("h2", { text: "第三步：核对后提交" }),
          el("p", { class: "hint", text: (state.meeting.allow_revision ? "投票截止前可以重新提交修改。"
                                                                       : "提交后不能修改。") + "请核对您的选择：" }), list),
         rulesNote(),
         privacyNote(),
         el("button", { class: "primary", id: "submit-votes", text: "确认提交", onclick: submit }),
         el("button", { text: "返回修改", onclick: function () { ballotForm(); } }));
  }

  // Who will be able to see how this unit voted: said again right before the owner submits.
  function privacyNote() {
    return el("div", { class: "card privacy", id: "privacy-note" },
      el("h3", { text: "谁能看到您家的表决情况" }),
      el("p", { text: "本小区业主、业主大会筹备组/业委会工作人员和审计人员可以查阅每户的表决情况；" +
                      "其他人只能看到汇总结果。" }));
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
      .then(function (data) {
        state.idempotencyKey = null; state.view = "receipts";
        var r = data.receipts || [];
        O.showReceipts(false, null, { ballot_receipt: data.ballot_receipt || null, received_at: data.received_at,
                                      channel: "electronic", matters: r.map(function (x) { return x.matter_id; }),
                                      receipts: r.map(function (x) { return x.receipt; }) });
      })
      .catch(function (err) {
        if (sessionLost(err)) { saveToken(null); state.token = null; return redeem(null); }
        if (err.code === "already_voted") { state.view = "receipts"; return O.showReceipts(true, err); }
        if (err.code === "voting_closed") { O.stopLive(); return O.showClosed(state.meeting, err); }
        ballotForm(err);
      });
  }

  start();
})();

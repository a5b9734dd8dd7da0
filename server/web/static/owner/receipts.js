/* The owner page's receipts and the meeting after its close.
 *
 * One short receipt per ballot (回执码, XXXXX-XXXXX) that a person can copy and read aloud; the
 * full per-matter receipts stay behind "完整回执".  The server keeps them for the voting subject
 * (GET /api/ballot/receipts: they survive a reissued code and a new phone), and this phone keeps a
 * copy in localStorage so it can check them after the close, when signing in is over, against the
 * signed, published record. */
(function () {
  "use strict";
  var O = window.evoteOwner, el = O.el, RC = window.evoteReceiptCode;
  var OUTCOMES = { passed: "通过", failed: "未通过", no_quorum: "未达参与表决法定比例，未作出决定",
                   elected: "已选出", runoff: "需另行选举" };

  // ------------------------------------------------------------------ kept on this phone
  var receiptsKey = "evote.receipts." + O.code;
  function remember(kept) {
    var ls = O.store("localStorage");
    if (ls) { try { ls.setItem(receiptsKey, JSON.stringify(kept)); } catch (e) { /* storage full: skip */ } }
  }
  O.keptReceipts = function () {
    var ls = O.store("localStorage"), raw = ls && ls.getItem(receiptsKey), kept;
    try { kept = raw ? JSON.parse(raw) : null; } catch (e) { return null; }
    if (kept && !kept.ballots && kept.receipts) {     // kept by an earlier version of this page: one per matter
      kept.ballots = kept.receipts.map(function (r) {
        return { ballot_receipt: null, received_at: r.received_at, titles: [r.title], receipts: [r.receipt] };
      });
    }
    return kept && kept.ballots && kept.ballots.length ? kept : null;
  };

  function keptFromServer(data) {
    var m = O.state.meeting;
    return { cid: m.community_id, mid: m.meeting_id, title: m.title, opens_at: m.opens_at, closes_at: m.closes_at,
             ballots: (data.ballots || []).map(function (b) {
               return { ballot_receipt: b.ballot_receipt, received_at: b.received_at, channel: b.channel,
                        titles: b.matters.map(function (id) { return O.titleOf(id) || "（本次表决事项）"; }),
                        receipts: b.receipts };
             }) };
  }

  // After a submission, or coming back: every ballot of this voting subject, from the server.
  O.showReceipts = function (earlier, note, fallback) {
    O.api("GET", "/api/ballot/receipts").then(function (data) {
      var kept = keptFromServer(data);
      remember(kept);
      showKept(kept, earlier ? "您已经投过票，以下是您的回执码。" : "您的投票已提交。", note);
    }).catch(function (err) {
      if (fallback) {
        var kept = keptFromServer({ ballots: [fallback] });
        remember(kept);
        return showKept(kept, "您的投票已提交。", note);
      }
      O.show(O.errorBox(err));
    });
  };

  function copyButton(text) {
    var button = el("button", { type: "button", class: "copy", text: "复制回执码" });
    button.addEventListener("click", function () {
      function done(ok) { button.textContent = ok ? "已复制" : "请长按回执码复制"; }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      } else done(false);
    });
    return button;
  }

  function ballotCard(b, i) {
    var card = el("div", { class: "card ballot-item", "data-ballot": b.ballot_receipt || "" });
    if (b.ballot_receipt) {
      card.appendChild(el("h3", { text: "回执码" }));
      card.appendChild(el("p", { class: "short-receipt", text: b.ballot_receipt }));
      card.appendChild(copyButton(b.ballot_receipt));
    } else {
      card.appendChild(el("h3", { text: b.channel === "paper" ? "纸质表决票" : "第 " + (i + 1) + " 次提交" }));
    }
    card.appendChild(el("p", { class: "small", text: "提交时间：" + O.beijingTime(b.received_at) + "（北京时间）" }));
    card.appendChild(el("p", { class: "small matters-covered", text: "包含事项：" + b.titles.join("、") }));
    if (b.ballot_receipt) {
      var full = el("details", { class: "full-receipts" }, el("summary", { text: "完整回执（64 位，供核验）" }));
      b.receipts.forEach(function (r) { full.appendChild(el("p", { class: "receipt", text: r })); });
      card.appendChild(full);
    } else {
      card.appendChild(el("p", { class: "small", text: "回执：" }));
      b.receipts.forEach(function (r) { card.appendChild(el("p", { class: "receipt", text: r })); });
    }
    card.appendChild(el("p", { class: "hint receipt-check", text: "正在核对…" }));
    return card;
  }

  function showKept(kept, headline, note) {
    if (kept.title) O.titleEl.textContent = kept.title;
    var items = kept.ballots.map(ballotCard);
    O.show.apply(null, [note ? O.errorBox(note) : null,
      el("p", { class: "ok", id: "done", text: headline }),
      el("div", { class: "card", id: "receipt-hint" }, el("p", { class: "hint",
        text: "请抄下或截图保存回执码（10 位字母和数字，可以念给家人听）。换手机或补发选票码后，重新登录仍能看到它。" +
              "表决结果公布后，本页会自动核对您的选票已被计入，也可以在结果公告页输入回执码核对。" }))]
      .concat(items));
    checkKept(kept, items);
  }
  O.showKeptReceipts = showKept;

  function mark(item, text, ok) {
    var line = item.querySelector(".receipt-check");
    line.textContent = text;
    line.className = (ok ? "ok" : "hint") + " receipt-check";
  }

  function fetchResult(cid, mid) {
    return fetch(O.publicBase(cid, mid) + "/result", { cache: "no-store" }).then(function (resp) {
      return resp.ok ? resp.json() : null;
    });
  }

  function checkBallot(base, b, root) {
    if (b.ballot_receipt) {
      return fetch(base + "/receipts/" + RC.normalize(b.ballot_receipt) + "/proof", { cache: "no-store" })
        .then(function (resp) { return resp.ok ? resp.json() : null; })
        .then(function (answer) { return answer ? RC.ballotProofHolds(b.ballot_receipt, answer, root) : false; });
    }
    return Promise.all(b.receipts.map(function (r) {
      return fetch(base + "/receipts/" + r + "/proof", { cache: "no-store" })
        .then(function (resp) { return resp.ok ? resp.json() : null; })
        .then(function (proof) { return proof ? window.evoteMerkle.proofReaches(r, proof, root) : false; });
    })).then(function (oks) { return oks.every(Boolean); });
  }

  function checkKept(kept, items, published) {
    if (!window.crypto || !crypto.subtle || !window.evoteMerkle) {
      items.forEach(function (item) { mark(item, "此浏览器无法核对，请在结果公告页输入回执码核对。", false); });
      return;
    }
    var base = O.publicBase(kept.cid, kept.mid);
    (published ? Promise.resolve(published) : fetchResult(kept.cid, kept.mid)).then(function (doc) {
      if (!doc) {
        items.forEach(function (item) { mark(item, "表决结果公布后，可在此核对您的选票是否已计入。", false); });
        return;
      }
      if (!published) O.app.appendChild(recordCard(kept.cid, kept.mid, kept));
      // The root the committee signed, not merely the one the server reports beside the proof.
      var root = doc.signed.payload.receipts.root;
      kept.ballots.forEach(function (b, i) {
        checkBallot(base, b, root).then(function (ok) {
          mark(items[i], ok ? "您的选票已计入" : "没有在公布的记录中找到这张选票，请联系业委会或街道办。", ok);
        });
      });
    }).catch(function () {
      items.forEach(function (item) { mark(item, "网络不太顺畅，暂时无法核对。", false); });
    });
  }

  // ------------------------------------------------------------------ after publication
  function resultsHref(cid, mid, kept) {
    var first = kept && kept.ballots.filter(function (b) { return b.ballot_receipt; })[0];
    return O.resultsPath(cid, mid) + "#code=" + encodeURIComponent(O.code) +
      (first ? "&receipt=" + encodeURIComponent(first.ballot_receipt) : "");
  }
  function recordCard(cid, mid, kept, withoutResultsLink) {
    var record = O.publicBase(cid, mid) + "/record.zip?code=" + encodeURIComponent(O.code);
    return el("div", { class: "card", id: "record-card" },
      el("h3", { text: withoutResultsLink ? "完整表决记录" : "表决结果已公布" }),
      el("p", { class: "hint", text: "您可以查看结果公告，并凭本选票码下载完整表决记录。记录中有每户的表决情况，" +
                                     "只供本小区业主、工作人员和审计人员查阅，请勿随意转发。" }),
      withoutResultsLink ? null : el("a", { class: "button-link", id: "results-link", rel: "noreferrer",
                                            href: resultsHref(cid, mid, kept), text: "查看表决结果公告" }),
      el("a", { class: "button-link", id: "record-download", rel: "noreferrer", download: "",
                href: record, text: "下载完整表决记录（.zip）" }));
  }

  function outcomeList(doc) {
    var titles = {}, names = {};
    (doc.meeting.matters || []).forEach(function (m) {
      titles[m.id] = m.title;
      (m.candidates || []).forEach(function (c) { names[c.id] = c.name; });
    });
    var list = el("dl", { class: "outcomes" });
    doc.signed.payload.result.matters.forEach(function (m) {
      var words = OUTCOMES[m.outcome] || m.outcome;
      if (m.kind === "election" && m.elected && m.elected.length) {
        words += "：" + m.elected.map(function (id) { return names[id] || id; }).join("、");
      }
      list.appendChild(el("dt", { text: titles[m.id] || "（表决事项）" }));
      list.appendChild(el("dd", { class: "outcome " + m.outcome, "data-outcome": m.outcome, text: words }));
    });
    return list;
  }

  // A short receipt written down (or from another phone), checked against the published record.
  function checkForm(cid, mid, root) {
    var input = el("input", { type: "text", id: "check-code", autocomplete: "off", autocapitalize: "characters",
                              maxlength: "16", "aria-label": "回执码", placeholder: "XXXXX-XXXXX" });
    var out = el("p", { id: "check-code-result", role: "status" });
    var form = el("form", { class: "card", id: "check-form", onsubmit: function (ev) {
        ev.preventDefault();
        var code = RC.normalize(input.value);
        if (!code) { out.className = "error"; out.textContent = "回执码是 10 位字母和数字，如 7K3M9-QX2HB，请核对。"; return; }
        out.className = "hint"; out.textContent = "正在核对…";
        var b = { ballot_receipt: RC.format(code), receipts: [] };
        checkBallot(O.publicBase(cid, mid), b, root).then(function (ok) {
          out.className = ok ? "ok" : "error";
          out.textContent = ok ? "回执码 " + RC.format(code) + "：您的选票已计入" : "没有找到这个回执码，请核对后重试。";
        });
      } },
      el("label", { for: "check-code", text: "核对抄下的回执码" }), input,
      el("button", { type: "submit", text: "核对" }), out);
    return form;
  }

  // The meeting once voting is over: what it was, its outcome once published, the results page,
  // and the receipts this phone kept.  `info`: community_id, meeting_id, title, opens_at, closes_at.
  O.showClosed = function (info, note) {
    var kept = O.keptReceipts();
    var cid = info.community_id || (kept && kept.cid), mid = info.meeting_id || (kept && kept.mid);
    var title = info.title || (kept && kept.title) || "";
    if (title) O.titleEl.textContent = title;
    var head = el("div", { class: "card", id: "closed" }, el("h2", { text: "本次会议投票已经结束" }),
      el("p", { text: "会议：" + title }),
      info.closes_at ? el("p", { id: "closed-period", text: "投票时间：" + O.period(info.opens_at, info.closes_at) }) : null);
    var outcome = el("div", { class: "card", id: "outcome" }, el("p", { class: "hint", text: "正在读取表决结果…" }));
    var items = kept ? kept.ballots.map(ballotCard) : [];
    O.show.apply(null, [note ? O.errorBox(note) : null, head, outcome].concat(
      items.length ? [el("p", { class: "hint", id: "kept-note", text: "以下是您在本机保存的回执码：" })] : [], items));
    fetchResult(cid, mid).then(function (doc) {
      outcome.textContent = "";
      if (!doc) {
        outcome.appendChild(el("h3", { text: "表决结果" }));
        outcome.appendChild(el("p", { class: "hint", id: "not-published",
          text: "正在计票，结果经业委会/筹备组签名公布后，打开本页即可看到，并可核对您的回执码。" }));
        items.forEach(function (item) { mark(item, "表决结果公布后，可在此核对您的选票是否已计入。", false); });
        return;
      }
      outcome.appendChild(el("h3", { text: doc.status === "final" ? "表决结果（最终结果）" : "表决结果（初步结果，异议期内）" }));
      outcome.appendChild(outcomeList(doc));
      outcome.appendChild(el("a", { class: "button-link", id: "results-link", rel: "noreferrer",
                                    href: resultsHref(cid, mid, kept), text: "查看表决结果公告" }));
      O.app.appendChild(checkForm(cid, mid, doc.signed.payload.receipts.root));
      O.app.appendChild(recordCard(cid, mid, kept, true));
      if (kept) checkKept(kept, items, doc);
    }).catch(function () {
      outcome.textContent = "";
      outcome.appendChild(el("p", { class: "hint", text: "网络不太顺畅，暂时无法读取结果，请稍后刷新本页。" }));
    });
  };
})();

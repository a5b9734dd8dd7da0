/* WeChat reminders on the owner's page (docs/notifications.md): fills any element with
 * id "notify-optin" that the page shows, once per appearance.  The owner ticks the messages they
 * want (WeChat's subscriptions are one-time: one message per tick) and the choice is recorded with
 * POST /api/ballot/notifications.  Only owners who signed in through the mini program can be
 * reached; others are told so.  Plain script, no build step, nothing from the internet. */
(function () {
  "use strict";

  // the ballot token the page keeps for this code (app.js: "evote.token." + code, sessionStorage only)
  var code = decodeURIComponent((location.pathname.match(/^\/b\/([^/?#]*)/) || [])[1] || "").trim();
  function token() {
    try { return window.sessionStorage.getItem("evote.token." + code); } catch (e) { return null; }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function call(method, body) {
    var headers = { "Authorization": "Bearer " + token() };
    if (body) headers["Content-Type"] = "application/json";
    return fetch("/api/ballot/notifications", { method: method, headers: headers,
                                                body: body ? JSON.stringify(body) : undefined })
      .then(function (resp) {
        return resp.json().catch(function () { return null; }).then(function (data) {
          if (!resp.ok) throw new Error((data && data.error && data.error.message) || "暂时无法保存，请稍后再试");
          return data;
        });
      });
  }

  var STATE_TEXT = { waiting: "已订阅", queued: "正在发送", sent: "已发送", given_up: "未能送达", withdrawn: "", none: "" };

  function render(box, data, note) {
    box.textContent = "";
    if (!data.templates.length) { box.hidden = true; return; }
    box.hidden = false;
    box.appendChild(el("h2", {}, "微信提醒"));
    if (!data.wechat_bound) {
      box.appendChild(el("p", { class: "hint" },
        "在微信小程序中打开选票并确认身份后，可以订阅投票开始、截止前提醒和结果公布等微信通知。"));
      return;
    }
    box.appendChild(el("p", { class: "hint" }, "勾选想收到的微信通知（每项通知一次），再点“保存提醒设置”。"));
    var list = el("div", { class: "notify-list" });
    data.templates.forEach(function (t) {
      var id = "notify-" + t.kind;
      var row = el("label", { class: "notify-row", for: id });
      var box1 = el("input", { type: "checkbox", id: id, value: t.kind });
      box1.checked = t.state === "waiting" || t.state === "queued";
      row.appendChild(box1);
      var words = el("span", {});
      words.appendChild(el("strong", {}, t.title));
      words.appendChild(document.createTextNode("：" + t.description));
      if (STATE_TEXT[t.state]) words.appendChild(el("span", { class: "notify-state" }, "（" + STATE_TEXT[t.state] + "）"));
      row.appendChild(words);
      list.appendChild(row);
    });
    box.appendChild(list);
    var save = el("button", { type: "button", class: "primary", id: "notify-save" }, "保存提醒设置");
    var message = el("p", { class: note && note.error ? "error" : "hint", role: "status", id: "notify-message" },
                     note ? note.text : "");
    save.addEventListener("click", function () {
      var accepted = [], declined = [];
      data.templates.forEach(function (t) {
        (document.getElementById("notify-" + t.kind).checked ? accepted : declined).push(t.kind);
      });
      save.disabled = true;
      call("POST", { accepted: accepted, declined: declined }).then(function (fresh) {
        render(box, fresh, { text: accepted.length ? "已保存：到时会通过微信通知您。" : "已取消全部微信提醒。" });
      }).catch(function (err) {
        save.disabled = false;
        message.className = "error";
        message.textContent = err.message;
      });
    });
    box.appendChild(save);
    box.appendChild(message);
  }

  function mount(box) {
    box.setAttribute("data-mounted", "1");
    box.classList.add("card");
    call("GET").then(function (data) { render(box, data); }).catch(function () { box.hidden = true; });
  }

  // Shown once the owner is signed in (the page keeps the token); the page redraws #app as it goes.
  function look() {
    var box = document.getElementById("notify-optin");
    if (box && !box.getAttribute("data-mounted") && token()) mount(box);
  }
  new MutationObserver(look).observe(document.documentElement, { childList: true, subtree: true });
  look();
})();

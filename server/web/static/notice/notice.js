/* The community's public notices: /p/{community}.  Shows the preparatory group's posted list (with an
 * objection form) and the register's public posting (per building, no names), where an owner sees
 * their own record after their room and the last four characters of their phone or ID number, and
 * asks for a correction.  Plain script, no build step; every refusal shows the server's message. */
(function () {
  "use strict";

  var community = decodeURIComponent((location.pathname.match(/^\/p\/([^/?#]+)/) || [])[1] || "");
  var base = "/api/public/communities/" + encodeURIComponent(community);

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    var children = Array.prototype.slice.call(arguments, 2);
    children.forEach(function add(c) {
      if (c == null) return;
      if (Array.isArray(c)) c.forEach(add);
      else node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function call(method, path, body) {
    return fetch(base + path, { method: method, headers: body ? { "Content-Type": "application/json" } : {},
                                body: body ? JSON.stringify(body) : undefined })
      .catch(function () { throw new Error("网络不通，请稍后再试"); })
      .then(function (resp) {
        return resp.json().catch(function () { return null; }).then(function (data) {
          if (!resp.ok) {
            var err = new Error((data && data.error && data.error.message) || "暂时无法完成，请稍后再试");
            err.status = resp.status;
            throw err;
          }
          return data;
        });
      });
  }

  var DAY = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "long", day: "numeric" });
  function day(iso) { return iso ? DAY.format(new Date(iso)) : "—"; }

  function message(box, text, ok) {
    box.className = ok ? "ok" : "error";
    box.setAttribute("role", ok ? "status" : "alert");
    box.textContent = text;
  }

  function field(label, input) { return [el("label", { for: input.id, text: label }), input]; }

  function form(id, fields, button, onSubmit) {
    var out = el("p", { id: id + "-message" });
    var f = el("form", { class: "stack", id: id });
    fields.forEach(function (pair) { pair.forEach(function (n) { f.appendChild(n); }); });
    var submit = el("button", { type: "submit", class: "primary", id: id + "-submit", text: button });
    f.appendChild(submit);
    f.appendChild(out);
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      submit.disabled = true;
      onSubmit(out).catch(function (err) { message(out, err.message); })
        .then(function () { submit.disabled = false; });
    });
    return f;
  }

  function showGroup(g) {
    var box = document.getElementById("prep-group");
    var states = { posted: "公示中", formed: "已成立", rejected: "异议成立，将重新组建" };
    box.appendChild(el("h2", { text: "业主大会筹备组成员名单公示" }));
    box.appendChild(el("p", {}, "公示期：" + day(g.posted_from) + " 至 " + day(g.posted_until) + "（" + (states[g.state] || g.state) + "）"));
    var rows = g.members.map(function (m) {
      return el("tr", {}, el("td", { text: m.name }), el("td", { text: m.side_name }), el("td", { text: m.unit_label || "" }),
                el("td", { text: m.leader ? "组长" : "成员" }));
    });
    box.appendChild(el("table", { class: "members", id: "members" },
      el("thead", {}, el("tr", {}, el("th", { text: "姓名" }), el("th", { text: "身份" }), el("th", { text: "房号" }), el("th", { text: "职务" }))),
      el("tbody", {}, rows)));
    if (g.state === "posted") {
      var name = el("input", { id: "objection-name", autocomplete: "name", maxlength: "50" });
      var text = el("textarea", { id: "objection-text", rows: "3", maxlength: "2000" });
      box.appendChild(el("h3", { text: "对成员名单有异议？" }));
      box.appendChild(el("p", { class: "hint", text: "请在公示期内提出，街道办事处将协调处理并答复。" }));
      box.appendChild(form("objection", [field("您的姓名", name), field("异议内容", text)], "提交异议", function (out) {
        return call("POST", "/prep-group/objections", { name: name.value.trim(), text: text.value.trim() })
          .then(function (r) { message(out, r.message + "（编号 " + r.objection_no + "）", true); text.value = ""; });
      }));
    }
    box.hidden = false;
  }

  function showRecord(box, record, identity) {
    var old = document.getElementById("my-record");
    if (old) old.remove();
    var card = el("div", { id: "my-record" }, el("h3", { text: record.name + "，您名下的房屋" }));
    record.units.forEach(function (u) {
      card.appendChild(el("p", {}, u.unit_id + "（" + u.building + " 栋，" + u.kind + "）：专有面积 " + u.area +
        " m²，来源：" + u.area_source + (u.co_owners.length ? "；共有人：" + u.co_owners.join("、") : "")));
    });
    record.corrections.forEach(function (c) {
      var states = { open: "待处理", accepted: "已更正", refused: "不予更正" };
      card.appendChild(el("p", { class: "hint" }, "更正申请 " + c.correction_no + "（" + states[c.status] + "）：" + c.text +
        (c.reason ? "。答复：" + c.reason : "")));
    });
    var text = el("textarea", { id: "correction-text", rows: "3", maxlength: "2000" });
    card.appendChild(form("correction", [field("如有错误，请写明需要更正的内容", text)], "申请更正", function (out) {
      return call("POST", "/register-posting/corrections", { unit_id: identity.unit_id, last4: identity.last4, text: text.value.trim() })
        .then(function (r) { message(out, r.message, true); text.value = ""; });
    }));
    box.appendChild(card);
  }

  function showRegister(p) {
    var box = document.getElementById("register");
    box.appendChild(el("h2", { text: "业主名册公示" }));
    box.appendChild(el("p", {}, "公示期：" + day(p.starts_at) + " 至 " + day(p.ends_at) + (p.running ? "（公示中）" : "（已结束）")));
    box.appendChild(el("p", { class: "hint", text: "以下按楼栋列出各房屋的专有面积及其来源，不含姓名。" }));
    p.buildings.forEach(function (b) {
      var rows = b.units.map(function (u) {
        return el("tr", {}, el("td", { text: u.unit_id }), el("td", { text: u.kind }), el("td", { text: u.area + " m²" }), el("td", { text: u.area_source }));
      });
      box.appendChild(el("details", { class: "building" }, el("summary", { text: b.building + " 栋：" + b.count + " 套，合计 " + b.area + " m²" }),
        el("table", { class: "units" }, el("tbody", {}, rows))));
    });
    var unit = el("input", { id: "lookup-unit", autocomplete: "off", maxlength: "64" });
    var last4 = el("input", { id: "lookup-last4", inputmode: "numeric", maxlength: "4", autocomplete: "off" });
    box.appendChild(el("h3", { text: "查看我的登记信息" }));
    box.appendChild(form("lookup", [field("房号（如 1-101）", unit), field("登记的手机号或身份证号后四位", last4)], "查看", function (out) {
      var identity = { unit_id: unit.value.trim(), last4: last4.value.trim().toUpperCase() };
      return call("POST", "/register-posting/my-record", identity).then(function (record) {
        out.textContent = "";
        out.className = "";
        showRecord(box, record, identity);
      });
    }));
    box.hidden = false;
  }

  Promise.all([
    call("GET", "/prep-group").catch(function (err) { if (err.status === 404) return null; throw err; }),
    call("GET", "/register-posting").catch(function (err) { if (err.status === 404) return null; throw err; }),
  ]).then(function (res) {
    document.getElementById("loading").remove();
    var name = (res[0] && res[0].community_name) || (res[1] && res[1].community_name) || community;
    document.getElementById("community-name").textContent = name;
    document.title = name + " · 小区公示";
    if (res[0]) showGroup(res[0]);
    if (res[1]) showRegister(res[1]);
    if (!res[0] && !res[1]) document.getElementById("nothing").hidden = false;
  }).catch(function (err) {
    var box = document.getElementById("loading");
    message(box, err.message);
  });
})();

// 下载完整会议记录: only the community's owners (with their ballot code), staff and auditors may.
// The code is sent in the X-Ballot-Code header (not in the address), the server's answer is shown
// in plain Chinese, and the archive is saved from memory.  Without JavaScript the form still works
// (GET …/record.zip?code=…).  An owner coming from their ballot page arrives with #code=… in the
// address: the box is filled in and the code is removed from the address bar.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);
  var form = document.getElementById("record-form");
  var input = document.getElementById("record-code");
  var result = document.getElementById("record-result");
  if (!form || !input || !window.fetch) return;

  function show(text, ok) {
    result.textContent = text;
    result.className = ok ? "ok" : "bad";
  }

  var fromHash = /(?:^#|&)code=([^&]*)/.exec(location.hash || "");
  if (fromHash) {
    input.value = decodeURIComponent(fromHash[1]);
    if (window.history && history.replaceState) history.replaceState(null, "", location.pathname + location.search);
    show("已填入您的选票码，点“下载”即可。", true);
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var code = input.value.replace(/[\s-]/g, "").toUpperCase();
    if (!code) { show("请输入选票上印的选票码。", false); input.focus(); return; }
    show("正在核对选票码……", true);
    var url = "/api/public/meetings/" + encodeURIComponent(config.cid) + "/" +
      encodeURIComponent(config.mid) + "/record.zip";
    var resp;
    try {
      resp = await fetch(url, { headers: { "X-Ballot-Code": code }, cache: "no-store", referrerPolicy: "no-referrer" });
    } catch (e) { show("网络错误，请稍后再试。", false); return; }
    if (!resp.ok) {
      var message = "无法下载，请核对选票码后重试。";
      try { message = (await resp.json()).error.message || message; } catch (e) { /* keep default */ }
      show(message, false);
      return;
    }
    var blob = await resp.blob();
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = config.cid + "-" + config.mid + ".zip";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 60000);
    show("已开始下载。记录中有每户的表决情况，请妥善保管，不要随意转发。", true);
  });
})();

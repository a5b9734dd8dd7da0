// 查验我的选票: fetch the inclusion proof of a receipt — a ballot's short one (XXXXX-XXXXX) or a
// full one (64 hex) — and check it here, in the browser, against the Merkle root printed on this
// page (the tree checks are in merkle.js, the short code's in receipt_code.js).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);

  function show(text, ok) {
    var el = document.getElementById("check-result");
    el.textContent = text;
    el.className = ok ? "ok" : "bad";
  }

  async function check() {
    var typed = document.getElementById("receipt").value;
    var short = window.evoteReceiptCode.normalize(typed);
    var receipt = short || typed.replace(/\s+/g, "").toLowerCase();
    if (!short && !/^[0-9a-f]{64}$/.test(receipt)) {
      show("回执码应为 10 位字母和数字（如 7K3M9-QX2HB），请核对。", false);
      return;
    }
    if (!window.crypto || !crypto.subtle) { show("此浏览器不支持查验，请换用新版浏览器。", false); return; }
    show("正在查验……", true);
    var url = "/api/public/meetings/" + encodeURIComponent(config.cid) + "/" +
      encodeURIComponent(config.mid) + "/receipts/" + receipt + "/proof";
    var resp;
    try { resp = await fetch(url); } catch (e) { show("网络错误，请稍后再试。", false); return; }
    if (!resp.ok) {
      var message = "没有找到这个回执码，请核对后重试。";
      try { message = (await resp.json()).error.message || message; } catch (e) { /* keep default */ }
      show(message, false);
      return;
    }
    var proof = await resp.json();
    if (short) {
      var n = (proof.receipts || []).length;
      if (await window.evoteReceiptCode.ballotProofHolds(short, proof, config.root)) {
        show("您的选票已计入（回执码 " + window.evoteReceiptCode.format(short) + "，本次提交的 " + n +
             " 个事项都在公布的记录中，共 " + proof.tree_size + " 张选票）。", true);
      } else {
        show("查验未通过：证明与公布的 Merkle 根不符，请联系街道办。", false);
      }
      return;
    }
    if (await window.evoteMerkle.proofReaches(receipt, proof, config.root)) {
      show("您的选票已计入（第 " + (proof.leaf_index + 1) + " 号，共 " + proof.tree_size + " 张）。", true);
    } else {
      show("查验未通过：证明与公布的 Merkle 根不符，请联系街道办。", false);
    }
  }

  // The owner page links here with the short receipt in the #fragment (never sent to the server).
  var fragment = (location.hash.match(/[#&]receipt=([^&]*)/) || [])[1];
  if (fragment && window.evoteReceiptCode.normalize(decodeURIComponent(fragment))) {
    document.getElementById("receipt").value = window.evoteReceiptCode.format(
      window.evoteReceiptCode.normalize(decodeURIComponent(fragment)));
  }

  var button = document.getElementById("check-button");
  if (button) button.addEventListener("click", check);
})();

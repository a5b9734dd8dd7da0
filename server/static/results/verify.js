// 查验我的选票: fetch the inclusion proof of a receipt and check it here, in the browser,
// against the Merkle root printed on this page (RFC 6962 hashes, RFC 9162 §2.1.3.2 check).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);

  function hexToBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }
  function bytesToHex(bytes) {
    return Array.prototype.map.call(new Uint8Array(bytes), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function concat(prefix, a, b) {
    var out = new Uint8Array(1 + a.length + (b ? b.length : 0));
    out[0] = prefix; out.set(a, 1); if (b) out.set(b, 1 + a.length);
    return out;
  }
  function sha256(data) {
    return crypto.subtle.digest("SHA-256", data).then(function (d) { return new Uint8Array(d); });
  }

  // RFC 9162 §2.1.3.2: the root a proof leads to, or null if it is malformed.
  async function rootFromProof(leaf, index, size, proof) {
    if (index < 0 || index >= size) return null;
    var fn = index, sn = size - 1;
    var r = await sha256(concat(0, leaf));
    for (var i = 0; i < proof.length; i++) {
      var p = proof[i];
      if (sn === 0) return null;
      if ((fn & 1) === 1 || fn === sn) {
        r = await sha256(concat(1, p, r));
        if ((fn & 1) === 0) {
          while ((fn & 1) === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await sha256(concat(1, r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }
  window.evoteRootFromProof = rootFromProof;

  function show(text, ok) {
    var el = document.getElementById("check-result");
    el.textContent = text;
    el.className = ok ? "ok" : "bad";
  }

  async function check() {
    var receipt = document.getElementById("receipt").value.replace(/\s+/g, "").toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(receipt)) { show("回执码应为 64 位数字和字母（0-9、a-f），请核对。", false); return; }
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
    var root = await rootFromProof(hexToBytes(receipt), proof.leaf_index, proof.tree_size,
      proof.proof.map(hexToBytes));
    if (root && bytesToHex(root) === config.root) {
      show("您的选票已计入（第 " + (proof.leaf_index + 1) + " 号，共 " + proof.tree_size + " 张）。", true);
    } else {
      show("查验未通过：证明与公布的 Merkle 根不符，请联系街道办。", false);
    }
  }

  var button = document.getElementById("check-button");
  if (button) button.addEventListener("click", check);
})();

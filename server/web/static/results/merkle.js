// RFC 6962 / RFC 9162 receipt-tree checks in the browser (WebCrypto SHA-256), shared by the
// public results page and the owner's voting page.
(function () {
  "use strict";

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

  // Whether `proof` (the /receipts/{receipt}/proof answer) leads from `receipt` (hex) to `root` (hex).
  async function proofReaches(receipt, proof, root) {
    var reached = await rootFromProof(hexToBytes(receipt), proof.leaf_index, proof.tree_size,
      proof.proof.map(hexToBytes));
    return reached !== null && bytesToHex(reached) === root;
  }

  window.evoteMerkle = { hexToBytes: hexToBytes, bytesToHex: bytesToHex, rootFromProof: rootFromProof,
                         proofReaches: proofReaches };
  window.evoteRootFromProof = rootFromProof;
})();
